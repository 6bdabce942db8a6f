/**
 * tm-delete <host:path>: TM DELETE (epilog, delete, failure paths). Removes the path on the node
 * with `rm -rf` (through sudo: a cancelled container may leave root-owned files in R), but only
 * when the path lies strictly inside VM_DIR: never VM_DIR itself, its cache, `.`/`..` tricks or
 * anything else on the node. A container registered on the node (its CTID.conf) whose private
 * area lies in the path is destroyed first with vzctl when shutdown left it for the epilog;
 * any other such container makes the delete fail instead of taking its files. A path already
 * gone is success (a retried TRANSFER).
 */
import type { CommandContext } from "../../cli/context.ts";
import { OnevzError } from "../../cli/errors.ts";
import type { Host } from "../../host/host.ts";
import { squeezeSlashes } from "../../host/posix_path.ts";
import {
  type ContainerInfo,
  containersUsing,
  findContainer,
  readMark,
  SHUTDOWN_MARK,
  type ShutdownMark,
  vzctlStatus,
  withContainerLock,
} from "../../ovz/container.ts";
import {
  CACHE_DIR_NAME,
  closeHosts,
  configuredVmDir,
  hostFor,
  parseTmArg,
  runTm,
  type TmLog,
} from "./common.ts";

const P = { privileged: true } as const;

/** Why `path` may not be deleted, or undefined when it is strictly inside `vmDir`. */
export function deleteRefusal(path: string, vmDir: string): string | undefined {
  if (!path.startsWith("/")) return `'${path}' is not an absolute path`;
  if (/[\n\r\0]/.test(path)) return "the path contains a control character";
  const segs = path.split("/");
  if (segs.some((s) => s === ".." || s === ".")) return `'${path}' contains '.' or '..' segments`;
  const root = squeezeSlashes(vmDir);
  const p = squeezeSlashes(path);
  if (root === "/" || !root.startsWith("/")) return `VM_DIR '${vmDir}' is not usable`;
  if (!p.startsWith(root + "/") || p === root) {
    return `'${path}' is not inside VM_DIR ${root}`;
  }
  const first = p.slice(root.length + 1).split("/")[0];
  if (first === CACHE_DIR_NAME) return `'${path}' is the node image cache, not a VM directory`;
  return undefined;
}

export default function (ctx: CommandContext): Promise<number> {
  return runTm(ctx, "tm-delete", async (log) => {
    const arg = parseTmArg(ctx.args[0]);
    const vmDir = await configuredVmDir(ctx.env);
    if (!vmDir) {
      throw new OnevzError(
        "VM_DIR is unknown (no VM_DIR= in $ONE_LOCATION/var/config or /var/lib/one/config, " +
          "ONEVZ_VM_DIR unset): refusing to delete anything",
      );
    }
    const refusal = deleteRefusal(arg.path, vmDir);
    if (refusal) throw new OnevzError(`refusing to delete: ${refusal}`);
    const path = squeezeSlashes(arg.path);
    const node = hostFor(arg);
    try {
      if (!(await node.exists(path, P))) {
        log(`${path} does not exist on ${node.name}: already deleted`);
        return;
      }
      const waitS = Number(ctx.env("ONEVZ_DELETE_WAIT") ?? "30");
      for (const ct of await containersUsing(node, path)) {
        await retire(node, ct, path, Number.isFinite(waitS) ? waitS : 30, log);
      }
      log(`Deleting ${path}`);
      await node.run(["rm", "-rf", "--", path], P);
      log(`Executed "rm -rf ${path}" on ${node.name}.`);
    } finally {
      await closeHosts(node);
    }
  });
}

/**
 * A container registered on the node keeps its private area in the path to delete. Destroy
 * it when onevz's shutdown left it for this epilog (or its files are already gone); wait a
 * while for a cancel that oned sends beside this DELETE (`onevm delete`); refuse otherwise:
 * the container's files would go with the directory.
 */
async function retire(node: Host, ct: ContainerInfo, path: string, waitS: number, log: TmLog) {
  const deadline = Date.now() + waitS * 1000;
  for (;;) {
    const state = await withContainerLock(node, ct.imagesDir, "tm-delete", async () => {
      const now = await findContainer(node, ct.ctid);
      if (!now || squeezeSlashes(now.privateDir) !== squeezeSlashes(ct.privateDir)) return "gone";
      const st = await vzctlStatus(node, ct.ctid);
      if (!st) throw new OnevzError(`cannot read the state of container ${ct.ctid}`);
      const mark = await readMark<ShutdownMark>(node, ct.imagesDir, SHUTDOWN_MARK);
      if (!st.running && !st.mounted && (mark?.ctid === ct.ctid || !st.exists)) {
        await node.run(["vzctl", "--quiet", "destroy", String(ct.ctid)], P);
        log(`Destroyed container ${ct.ctid} (${st.exists ? "shut down" : "its files gone"})`);
        return "destroyed";
      }
      return st.running ? "running" : st.mounted ? "mounted" : "stopped, not shut down by onevz";
    });
    if (state === "gone" || state === "destroyed") return;
    if (Date.now() >= deadline) {
      throw new OnevzError(
        `refusing to delete ${path}: it holds the private area of container ${ct.ctid} ` +
          `(${state}), which is registered on ${node.name}; shut the VM down or cancel it ` +
          `first (or, if its files are to go, 'vzctl destroy ${ct.ctid}' on ${node.name})`,
      );
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}
