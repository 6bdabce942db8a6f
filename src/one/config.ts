/**
 * The VMM driver configuration, vmm_ssh_ovz.conf: OpenNebula template syntax whose
 * `ONEVZ = [ CTID_OFFSET, CONTEXT_DIR, NIC_MODEL, RAW_ALLOW, RAW_LOOSEN, LAYOUT,
 * FIREWALL_CUSTOM, CONTEXT_FILES_DIRS, IMAGE_CACHE_MAX_SIZE, … ]` vector holds onevz's own
 * settings (RAW_ALLOW/RAW_LOOSEN: src/ovz/raw_policy.ts); every
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
  /**
   * Front-end directories whose files CONTEXT/FILES may name (tm-context); undefined: the
   * built-in default (see contextFilesDirs in src/actions/tm/context.ts).
   */
  contextFilesDirs?: string[];
  /** Bounds of the node image cache and of onevz's entries in $TEMPLATE/cache. */
  caches: { image: CacheLimits; template: CacheLimits };
}

export type Layout = "simfs" | "ploop";
export const DEFAULT_LAYOUT: Layout = "simfs";

/** Size and age bounds of a cache (undefined: no bound). */
export interface CacheLimits {
  maxBytes?: number;
  maxAgeDays?: number;
  /** Entries used this recently are never pruned (default 600 s: a clone may be linking it). */
  graceSeconds?: number;
}

export const DEFAULT_CACHE_MAX_SIZE = "20G";
export const DEFAULT_CACHE_MAX_AGE = "30";
export const DEFAULT_CACHE_GRACE_MINUTES = "10";

const SIZE_UNITS: Record<string, number> = {
  "": 2 ** 20,
  K: 2 ** 10,
  M: 2 ** 20,
  G: 2 ** 30,
  T: 2 ** 40,
};

/** "20G", "512M", "64K", "800" (MB) or "unlimited" → bytes (undefined: no bound). */
export function parseCacheSize(v: string): number | undefined {
  if (/^unlimited$/i.test(v)) return undefined;
  const m = /^(\d{1,9})\s*([KMGT]?)B?$/i.exec(v.trim());
  if (!m) throw new Error("must be a size like 20G, 512M or unlimited");
  return Number(m[1]) * SIZE_UNITS[m[2].toUpperCase()];
}

/** "30" (days) or "unlimited". */
export function parseCacheAge(v: string): number | undefined {
  if (/^unlimited$/i.test(v)) return undefined;
  if (!/^\d{1,5}$/.test(v.trim())) throw new Error("must be a number of days or unlimited");
  return Number(v);
}

const cacheSize = z.string().refine((v) => {
  try {
    parseCacheSize(v);
    return true;
  } catch {
    return false;
  }
}, "must be a size like 20G, 512M, 64K (plain numbers are MB) or unlimited");
const cacheAge = z.string().regex(
  /^(\d{1,5}|unlimited)$/i,
  "must be a number of days or unlimited",
);

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
  CONTEXT_FILES_DIRS: z.string()
    .refine(
      (v) => v.trim().split(/\s+/).every((p) => /^\/[^\0\n\r]*$/.test(p)),
      "must be absolute directory paths separated by blanks",
    )
    .optional(),
  IMAGE_CACHE_MAX_SIZE: cacheSize.default(DEFAULT_CACHE_MAX_SIZE),
  IMAGE_CACHE_MAX_AGE: cacheAge.default(DEFAULT_CACHE_MAX_AGE),
  TEMPLATE_CACHE_MAX_SIZE: cacheSize.default(DEFAULT_CACHE_MAX_SIZE),
  TEMPLATE_CACHE_MAX_AGE: cacheAge.default(DEFAULT_CACHE_MAX_AGE),
  CACHE_GRACE_MINUTES: z.string().regex(/^\d{1,5}$/, "must be a number of minutes")
    .default(DEFAULT_CACHE_GRACE_MINUTES),
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
    contextFilesDirs: r.data.CONTEXT_FILES_DIRS?.trim().split(/\s+/).filter((p) => p !== ""),
    caches: {
      image: {
        maxBytes: parseCacheSize(r.data.IMAGE_CACHE_MAX_SIZE),
        maxAgeDays: parseCacheAge(r.data.IMAGE_CACHE_MAX_AGE),
        graceSeconds: Number(r.data.CACHE_GRACE_MINUTES) * 60,
      },
      template: {
        maxBytes: parseCacheSize(r.data.TEMPLATE_CACHE_MAX_SIZE),
        maxAgeDays: parseCacheAge(r.data.TEMPLATE_CACHE_MAX_AGE),
        graceSeconds: Number(r.data.CACHE_GRACE_MINUTES) * 60,
      },
    },
  };
}
