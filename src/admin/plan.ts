/**
 * `onevz plan <template.xml> [--vswap|--ubc] [--vmdir DIR] [--defaults FILE]`: the dry run
 * of deploy. Parses and validates the template, merges the defaults file, and prints every
 * vzctl call (shell-quoted, after a `# why` comment) and the file work, touching nothing.
 */
import { readFile } from "node:fs/promises";
import type { CommandContext } from "../cli/context.ts";
import { InvalidInputError, OnevzError, shellQuote, UsageError } from "../cli/errors.ts";
import { parseDriverConfig } from "../one/config.ts";
import { applyDefaults } from "../one/defaults.ts";
import { toSpec } from "../one/spec.ts";
import { parseTemplateXml } from "../one/template.ts";
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
export function renderPlan(plan: DeployPlan, header: string[]): string {
  const out: string[] = header.map((h) => `# ${h}`);
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
        out.push(`#   file: append to ${s.path}:`, ...indent(s.line, "#     | "));
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
  const xml = await readText(file, "template");
  if (xml === null) throw new InvalidInputError(`plan: template file ${file} does not exist`);
  let configText: string | null = null;
  let configName = "built-in defaults";
  if (typeof ctx.flags.defaults === "string") {
    configText = await readText(ctx.flags.defaults, "defaults file");
    if (configText === null) {
      throw new InvalidInputError(`plan: defaults file ${ctx.flags.defaults} does not exist`);
    }
    configName = ctx.flags.defaults;
  } else if (ctx.remotesDir) {
    const p = `${ctx.remotesDir}/vmm/ovz/vmm_ssh_ovz.conf`;
    configText = await readText(p, "defaults file");
    if (configText !== null) configName = p;
  }
  const config = parseDriverConfig(configText, configName);
  const doc = applyDefaults(parseTemplateXml(xml), config.defaults);
  const spec = toSpec(doc, config);
  const source = spec.osDisk.source ?? "";
  const ext = ARCHIVE_EXTS.slice().reverse().find((e) => source.endsWith(e)) ??
    (/\.tgz$/.test(source) ? ".tar.gz" : ".tar.gz");
  const p = planDeploy(spec, {
    flavour,
    vmDir,
    templateCacheDir: DEFAULT_TEMPLATE_CACHE,
    templateFileExt: ext,
    layout: config.layout, // as on vzctl 4.x (deploy omits --layout on 3.0.x)
  });
  ctx.io.out(renderPlan(p, [
    `onevz plan for VM ${spec.vmid} (${spec.name}): CTID ${spec.ctid}, ${flavour} node, VM_DIR ${vmDir}`,
    `defaults: ${configName}; template archive extension assumed ${ext} (deploy reads the image's magic bytes)`,
    "nothing was run; deploy would do the following, in order:",
  ]));
  return 0;
}
