/**
 * tm-delete <host:path>: TM DELETE (epilog, delete, failure paths). Removes the path on the node
 * with `rm -rf` (through sudo: a cancelled container may leave root-owned files in R), but only
 * when the path lies strictly inside VM_DIR: never VM_DIR itself, its cache, `.`/`..` tricks or
 * anything else on the node.
 */
import type { CommandContext } from "../../cli/context.ts";
import { OnevzError } from "../../cli/errors.ts";
import {
  CACHE_DIR_NAME,
  closeHosts,
  configuredVmDir,
  hostFor,
  normalizePath,
  parseTmArg,
  runTm,
} from "./common.ts";

/** Why `path` may not be deleted, or undefined when it is strictly inside `vmDir`. */
export function deleteRefusal(path: string, vmDir: string): string | undefined {
  if (!path.startsWith("/")) return `'${path}' is not an absolute path`;
  if (/[\n\r\0]/.test(path)) return "the path contains a control character";
  const segs = path.split("/");
  if (segs.some((s) => s === ".." || s === ".")) return `'${path}' contains '.' or '..' segments`;
  const root = normalizePath(vmDir);
  const p = normalizePath(path);
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
    const path = normalizePath(arg.path);
    const node = hostFor(arg);
    try {
      log(`Deleting ${path}`);
      await node.run(["rm", "-rf", "--", path], { privileged: true });
      log(`Executed "rm -rf ${path}" on ${node.name}.`);
    } finally {
      await closeHosts(node);
    }
  });
}
