/**
 * The VMM driver configuration, vmm_ssh_ovz.conf: OpenNebula template syntax whose
 * `ONEVZ = [ CTID_OFFSET, CONTEXT_DIR, NIC_MODEL, RAW_ALLOW, RAW_LOOSEN, LAYOUT,
 * FIREWALL_CUSTOM ]` vector holds onevz's own settings (RAW_ALLOW/RAW_LOOSEN:
 * src/ovz/raw_policy.ts); every
 * other attribute is a default merged into each VM template (see applyDefaults).
 */
import { z } from "zod";
import { InvalidInputError } from "../cli/errors.ts";
import { parseRawAllow, parseRawLoosen, type RawPolicy } from "../ovz/raw_policy.ts";
import { DEFAULT_CTID_OFFSET, MAX_CTID } from "./ctid.ts";
import { lintTemplate, suggest } from "./lint.ts";
import { parseTemplateText } from "./template_syntax.ts";
import { cloneDoc, emptyDoc, type TemplateDoc, vectors } from "./template.ts";

export type NicModel = "venet" | "veth";

export interface DriverConfig {
  /** CTID = VMID + ctidOffset. */
  ctidOffset: number;
  /** Directory inside the container that receives context.sh and the FILES (default /mnt). */
  contextDir: string;
  /** Network device type for NICs without MODEL=veth|venet. */
  nicModel: NicModel;
  /** What RAW may do beyond the safe defaults (ONEVZ/RAW_ALLOW, ONEVZ/RAW_LOOSEN). */
  rawPolicy: RawPolicy;
  /** Template defaults (the file without the ONEVZ vector). */
  defaults: TemplateDoc;
  /** Mistakes in the file that do not stop a deploy (misspelt names), each with its fix. */
  warnings: string[];
  // -- vzfw: container layout and firewall settings --
  /** Private area layout vzctl 4.x creates: simfs (a directory, the default) or ploop. */
  layout: Layout;
  /** Templates may carry `[CUSTOM]` iptables lines in CONTEXT/FIREWALL (node-wide!). */
  firewallCustom: boolean;
}

export type Layout = "simfs" | "ploop";
export const DEFAULT_LAYOUT: Layout = "simfs";

export const DEFAULT_CONTEXT_DIR = "/mnt";
export const DEFAULT_NIC_MODEL: NicModel = "venet";

const settingsSchema = z.object({
  CTID_OFFSET: z.string()
    .regex(/^[0-9]{1,10}$/, "must be an integer")
    .transform(Number)
    .refine((n) => n >= 101 && n < MAX_CTID, "must be between 101 and 2147483643")
    .default(String(DEFAULT_CTID_OFFSET) as never),
  CONTEXT_DIR: z.string()
    .regex(/^(\/[A-Za-z0-9._-]+)+$/, "must be an absolute path of plain names")
    .refine((p) => !p.split("/").some((s) => s === "." || s === ".."), "must not contain . or ..")
    .default(DEFAULT_CONTEXT_DIR),
  NIC_MODEL: z.string().transform((s) => s.toLowerCase()).pipe(
    z.enum(["venet", "veth"], "must be venet or veth"),
  ).default(DEFAULT_NIC_MODEL),
  RAW_ALLOW: z.string().default(""),
  RAW_LOOSEN: z.string().default(""),
  // -- vzfw --
  LAYOUT: z.string().transform((s) => s.toLowerCase()).pipe(
    z.enum(["simfs", "ploop"], "must be simfs or ploop"),
  ).default(DEFAULT_LAYOUT),
  FIREWALL_CUSTOM: z.string().transform((s) => s.toLowerCase()).pipe(
    z.enum(["yes", "no"], "must be yes or no"),
  ).default("no"),
}).loose();

/** Parse vmm_ssh_ovz.conf text (null: the file is missing, all built-in defaults). */
export function parseDriverConfig(text: string | null, file = "vmm_ssh_ovz.conf"): DriverConfig {
  const doc = text === null ? emptyDoc() : parseTemplateText(text, file);
  const onevz = vectors(doc, "ONEVZ");
  if (doc.attributes.has("ONEVZ") && onevz.length === 0) {
    throw new InvalidInputError(`${file}: ONEVZ must be a vector: ONEVZ = [ CTID_OFFSET = … ]`);
  }
  const settings = onevz[0] ?? {};
  const r = settingsSchema.safeParse(settings);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new InvalidInputError(
      `${file}: ONEVZ/${issue.path.join("/")}: ${issue.message}`,
    );
  }
  const setting = <T>(name: string, parse: (text: string) => T, text: string): T => {
    try {
      return parse(text);
    } catch (e) {
      if (e instanceof RangeError) {
        throw new InvalidInputError(`${file}: ONEVZ/${name}: ${e.message}`);
      }
      throw e;
    }
  };
  const rawPolicy: RawPolicy = {
    allow: setting("RAW_ALLOW", parseRawAllow, r.data.RAW_ALLOW),
    loosen: setting("RAW_LOOSEN", parseRawLoosen, r.data.RAW_LOOSEN),
  };
  const defaults = cloneDoc(doc);
  defaults.attributes.delete("ONEVZ");
  const known = Object.keys(settingsSchema.shape);
  const warnings = Object.keys(settings).flatMap((key) => {
    const near = known.includes(key) ? undefined : suggest(key, known);
    return near
      ? [`${file}: ONEVZ/${key} is not an onevz setting: did you mean ONEVZ/${near}?`]
      : [];
  });
  warnings.push(...lintTemplate(defaults, file));
  const ctidOffset = typeof r.data.CTID_OFFSET === "number"
    ? r.data.CTID_OFFSET
    : Number(r.data.CTID_OFFSET);
  return {
    ctidOffset,
    contextDir: r.data.CONTEXT_DIR,
    nicModel: r.data.NIC_MODEL as NicModel,
    rawPolicy,
    defaults,
    warnings,
    layout: r.data.LAYOUT as Layout,
    firewallCustom: r.data.FIREWALL_CUSTOM === "yes",
  };
}
