/**
 * `onevz plan <template> [--vswap|--ubc] [--vmdir DIR] [--defaults FILE] [--vmid N]
 * [--network NAME:KEY=VALUE,…]`: the dry run of deploy. Reads the template in OpenNebula
 * syntax (what `onevm create` takes: oned's part — VMID, leases, image disks, CONTEXT
 * variables — is done as src/one/oned.ts describes, saying what it assumed) or as XML (a
 * deployment file or `onevm show -x`), merges the defaults file deploy would use, validates,
 * and prints the warnings deploy would print and every vzctl call (shell-quoted, after a
 * `# why` comment) and the file work, touching nothing.
 */
import { readFile } from "node:fs/promises";
import type { CommandContext } from "../cli/context.ts";
import { InvalidInputError, OnevzError, shellQuote, UsageError } from "../cli/errors.ts";
import { parseDriverConfig } from "../one/config.ts";
import { applyDefaults } from "../one/defaults.ts";
import { readDefaultsFile } from "../one/defaults_file.ts";
import { lintTemplate } from "../one/lint.ts";
import { parseNetworkOptions, prepareLikeOned } from "../one/oned.ts";
import { toSpec } from "../one/spec.ts";
import { parseTemplate } from "../one/template_syntax.ts";
import { ARCHIVE_EXTS } from "../ovz/archive.ts";
import { type DeployPlan, planDeploy } from "../ovz/plan.ts";

export const DEFAULT_VM_DIR = "/vz/one/vm";
export const DEFAULT_TEMPLATE_CACHE = "/vz/template/cache";

async function readText(path: string, what: string): Promise<string | null> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ENOENT") return null;
    throw new OnevzError(
      `plan: cannot read ${what} ${path}: ${(e as Error).message.split("\n")[0]}`,
    );
  }
}

function indent(text: string, prefix: string): string[] {
  return text.replace(/\n$/, "").split("\n").map((l) => prefix + l);
}

/** Render a plan for people: commands shell-quoted, file work as comments. */
export function renderPlan(
  plan: DeployPlan,
  header: string[],
  extra: { assumptions?: string[]; warnings?: string[] } = {},
): string {
  const out: string[] = header.map((h) => `# ${h}`);
  const warnings = extra.warnings ?? plan.warnings;
  if (warnings.length) {
    out.push(
      "#",
      "# warnings (deploy prints these on stderr and goes on):",
      ...warnings.map((w) => `#   ${w}`),
    );
  }
  if (extra.assumptions?.length) {
    out.push(
      "#",
      "# assumed (only oned knows these; the options named give the real values):",
      ...extra.assumptions.map((a) => `#   ${a}`),
    );
  }
  if (plan.notes.length) {
    out.push("#", "# mapping rules applied:", ...plan.notes.map((n) => `#   ${n}`));
  }
  for (const s of plan.steps) {
    out.push("", `# ${s.why}`);
    switch (s.kind) {
      case "run":
        out.push(s.argv.map(shellQuote).join(" "));
        break;
      case "place-template":
        out.push(`#   file: copy ${s.from} -> ${s.to}`);
        break;
      case "copy-dir":
        out.push(`#   file: copy directory ${s.from}/ -> ${s.to}/`);
        break;
      case "write-file":
        out.push(
          `#   file: write ${s.path}${s.ifAbsent ? " (if absent)" : ""}:`,
          ...indent(s.content, "#     | "),
        );
        break;
      case "append-line":
        out.push(`#   file: add to ${s.path}:`, ...indent(s.line, "#     | "));
        break;
      case "put-block":
        out.push(
          `#   file: put in ${s.path} (replacing an earlier block of onevz's):`,
          ...indent(`${s.begin}\n${s.text}${s.end}`, "#     | "),
        );
        break;
      case "append-config":
        out.push(`#   file: append to ${s.path}:`, ...indent(s.text, "#     | "));
        break;
    }
  }
  return out.join("\n") + "\n";
}

export default async function plan(ctx: CommandContext): Promise<number> {
  const [file] = ctx.args;
  if (ctx.flags.vswap && ctx.flags.ubc) {
    throw new UsageError("plan: give --vswap or --ubc, not both");
  }
  const flavour = ctx.flags.vswap ? "vswap" : "ubc";
  const vmDir = typeof ctx.flags.vmdir === "string" ? ctx.flags.vmdir : DEFAULT_VM_DIR;
  if (!vmDir.startsWith("/")) throw new UsageError("plan: --vmdir must be an absolute path");
  let vmid: number | undefined;
  if (typeof ctx.flags.vmid === "string") {
    if (!/^[0-9]{1,10}$/.test(ctx.flags.vmid)) throw new UsageError("plan: --vmid takes a VM id");
    vmid = Number(ctx.flags.vmid);
  }
  const networkFlags = ctx.flags.network;
  let networks: Record<string, Record<string, string>>;
  try {
    networks = parseNetworkOptions(
      Array.isArray(networkFlags)
        ? networkFlags
        : typeof networkFlags === "string"
        ? [networkFlags]
        : [],
    );
  } catch (e) {
    throw new UsageError(`plan: ${(e as Error).message}`);
  }
  const text = await readText(file, "template");
  if (text === null) throw new InvalidInputError(`plan: template file ${file} does not exist`);

  let configText: string | null = null;
  let configName = "built-in defaults";
  if (typeof ctx.flags.defaults === "string") {
    configText = await readText(ctx.flags.defaults, "defaults file");
    if (configText === null) {
      throw new InvalidInputError(`plan: defaults file ${ctx.flags.defaults} does not exist`);
    }
    configName = ctx.flags.defaults;
  } else {
    // The file deploy uses (one/defaults_file.ts), so the plan shows what deploy will do.
    const found = await readDefaultsFile(ctx.env, ctx.remotesDir);
    configText = found.text;
    configName = found.file ?? `built-in defaults (none at ${found.tried.join(", ")})`;
  }
  const config = parseDriverConfig(configText, configName);

  const { doc: written, syntax } = parseTemplate(text, file);
  const warnings = [...config.warnings, ...lintTemplate(written)];
  let assumptions: string[] = [];
  let doc = written;
  if (syntax === "template") {
    const prepared = prepareLikeOned(written, { vmid, networks, nicModel: config.nicModel });
    ({ doc, assumptions } = prepared);
    warnings.push(...prepared.warnings);
  } else if (!doc.attributes.has("VMID") && doc.vmId === undefined) {
    // A deployment file always has VMID; a hand-written XML template may not.
    doc.attributes.set("VMID", [String(vmid ?? 0)]);
    if (vmid === undefined) {
      assumptions.push("VMID: not in the document; plan assumed 0 (give --vmid N)");
    }
  }
  const spec = toSpec(applyDefaults(doc, config.defaults), config);
  const source = spec.osDisk.source ?? "";
  const ext = ARCHIVE_EXTS.slice().reverse().find((e) => source.endsWith(e)) ?? ".tar.gz";
  const p = planDeploy(spec, {
    flavour,
    vmDir,
    templateCacheDir: DEFAULT_TEMPLATE_CACHE,
    templateFileExt: ext,
    layout: config.layout, // as on vzctl 4.x (deploy omits --layout on 3.0.x)
  });
  ctx.io.out(renderPlan(p, [
    `onevz plan for VM ${spec.vmid} (${spec.name}): CTID ${spec.ctid}, ${flavour} node, VM_DIR ${vmDir}`,
    `template: ${file} (${
      syntax === "xml"
        ? "XML, as oned passes it"
        : "OpenNebula template syntax, as onevm create reads it"
    })`,
    `defaults: ${configName}`,
    `template archive extension assumed ${ext} (deploy reads the image's magic bytes)`,
    "nothing was run; deploy would do the following, in order:",
  ], { assumptions, warnings: [...warnings, ...p.warnings] }));
  return 0;
}
