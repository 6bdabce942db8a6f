/**
 * Where deploy's inputs come from. Under one_vmm_ssh the deployment document arrives on stdin
 * and its argument is the node-side path R/deployment.<seq>; under one_vmm_sh (agentless) the
 * argument is the front-end file <var>/<vid>/deployment.<seq> and stdin is empty. The driver
 * configuration (vmm_ssh_ovz.conf) is found as every reader finds it (one/defaults_file.ts).
 */
import type { CommandContext } from "../../cli/context.ts";
import { InvalidInputError } from "../../cli/errors.ts";
import { type DriverConfig, parseDriverConfig } from "../../one/config.ts";
import { readDefaultsFile } from "../../one/defaults_file.ts";
import { MAX_TEMPLATE_BYTES } from "../../one/template.ts";

export interface DeploymentInput {
  xml: string;
  /** Where the node keeps its copy: $VM_DIR/<vid>/images/deployment.<seq>. */
  nodePath: string;
  /** VM_DIR on the node (oned's trailing slash removed). */
  vmDir: string;
  /** VM id from the path. */
  vmid: number;
}

const NODE_PATH = /^(\/.*?)\/+(\d+)\/+images\/+deployment\.(\d+)$/;
const FRONTEND_PATH = /^(\/.*?)\/+(\d+)\/+deployment\.(\d+)$/;

function checkPath(path: string, what: string) {
  if (!path.startsWith("/") || path.split("/").some((s) => s === "..") || /[\0\n]/.test(path)) {
    throw new InvalidInputError(
      `${what} ${JSON.stringify(path)} must be an absolute path without ..`,
    );
  }
}

export async function readDeploymentInput(
  ctx: CommandContext,
  arg: string,
): Promise<DeploymentInput> {
  if (ctx.mode === "agentless") {
    checkPath(arg, "deployment file");
    const m = FRONTEND_PATH.exec(arg) ?? NODE_PATH.exec(arg);
    if (!m) {
      throw new InvalidInputError(
        `deployment file ${arg} is not of the form <var>/<vid>/deployment.<seq>`,
      );
    }
    const vmDir = await frontEndVmDir(ctx);
    const xml = await readLimited(() => Deno.readFile(arg), `deployment file ${arg}`);
    return {
      xml,
      vmDir,
      vmid: Number(m[2]),
      nodePath: `${vmDir}/${m[2]}/images/deployment.${m[3]}`,
    };
  }
  checkPath(arg, "deployment file");
  const m = NODE_PATH.exec(arg);
  if (!m) {
    throw new InvalidInputError(
      `deployment file ${arg} is not of the form $VM_DIR/<vid>/images/deployment.<seq>`,
    );
  }
  const xml = await readLimited(() => ctx.io.readStdin(), "deployment document on stdin");
  return { xml, vmDir: m[1].replace(/\/+$/, ""), vmid: Number(m[2]), nodePath: arg };
}

async function readLimited(read: () => Promise<Uint8Array>, what: string): Promise<string> {
  const bytes = await read().catch((e) => {
    throw new InvalidInputError(`cannot read ${what}: ${(e as Error).message}`);
  });
  if (bytes.length === 0) throw new InvalidInputError(`empty ${what}`);
  if (bytes.length > MAX_TEMPLATE_BYTES) {
    throw new InvalidInputError(
      `${what} is ${bytes.length} bytes, over the ${MAX_TEMPLATE_BYTES} limit`,
    );
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new InvalidInputError(`${what} is not valid UTF-8`);
  }
}

/** VM_DIR as oned dumped it to $ONE_LOCATION/var/config (or ONEVZ_VM_DIR). */
export async function frontEndVmDir(ctx: CommandContext): Promise<string> {
  const explicit = ctx.env("ONEVZ_VM_DIR");
  if (explicit) return explicit.replace(/\/+$/, "");
  const loc = ctx.env("ONE_LOCATION");
  const file = loc ? `${loc}/var/config` : "/var/lib/one/config";
  const text = await Deno.readTextFile(file).catch(() => "");
  const m = /^VM_DIR=(.*)$/m.exec(text);
  if (!m) {
    throw new InvalidInputError(`VM_DIR not found in ${file}: set ONEVZ_VM_DIR for agentless mode`);
  }
  return m[1].trim().replace(/\/+$/, "");
}

/** vmm_ssh_ovz.conf from ONEVZ_DEFAULTS or the remotes tree; built-in defaults when absent. */
export async function loadDriverConfig(ctx: CommandContext): Promise<DriverConfig> {
  const hypervisor = ctx.mode === "agentless" ? "ovz_fe" : "ovz";
  const { file, text } = await readDefaultsFile(ctx.env, ctx.remotesDir, hypervisor);
  return parseDriverConfig(text, file ?? "vmm_ssh_ovz.conf");
}
