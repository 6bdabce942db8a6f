/**
 * tm-context <context.sh> [files…] <host:R/disk.N>: TM CONTEXT. Instead of an ISO image (no
 * mkisofs), the node gets a DIRECTORY R/disk.N holding context.sh and each FILES entry by its
 * basename; deploy copies it into the container. The directory is unpacked under a temporary
 * name and renamed into place. Only regular files are accepted and basenames must be unique.
 */
import { basename, dirname } from "../../host/posix_path.ts";
import type { CommandContext } from "../../cli/context.ts";
import { OnevzError } from "../../cli/errors.ts";
import { LocalHost } from "../../host/local.ts";
import {
  closeHosts,
  hostFor,
  nodeJoin,
  parseTmArg,
  pipe,
  requireAbsolute,
  runTm,
  tarExtract,
  tempName,
} from "./common.ts";

/** Validate the sources: regular front-end files with distinct basenames. */
export async function contextSources(args: string[]): Promise<string[]> {
  const seen = new Map<string, string>();
  const paths: string[] = [];
  for (const a of args) {
    const arg = parseTmArg(a);
    if (!arg.local) throw new OnevzError(`context file ${a} is not on this front-end`);
    const path = requireAbsolute(arg.path, "context file");
    let st: Deno.FileInfo;
    try {
      st = await Deno.stat(path);
    } catch {
      throw new OnevzError(`context file ${path} does not exist`);
    }
    if (!st.isFile) throw new OnevzError(`context file ${path} is not a regular file`);
    const name = basename(path);
    const prev = seen.get(name);
    if (prev) {
      throw new OnevzError(`two context files share the name '${name}': ${prev} and ${path}`);
    }
    seen.set(name, path);
    paths.push(path);
  }
  return paths;
}

/** tar argv packing each file under its basename (`-C dir ./name`, safe for names like -x). */
export function contextTar(paths: string[]): string[] {
  const argv = ["tar", "--owner=0", "--group=0", "--mode=u+rw,go+r", "-cf", "-"];
  for (const p of paths) argv.push("-C", dirname(p), `./${basename(p)}`);
  return argv;
}

export default function (ctx: CommandContext): Promise<number> {
  return runTm(ctx, "tm-context", async (log) => {
    const dstArg = ctx.args[ctx.args.length - 1];
    const sources = await contextSources(ctx.args.slice(0, -1));
    const dst = parseTmArg(dstArg);
    const dstPath = requireAbsolute(dst.path, "destination");
    const node = hostFor(dst);
    try {
      log(`Creating directory ${nodeJoin(dstPath, "..")}`);
      await node.mkdirp(nodeJoin(dstPath, ".."));
      const stage = tempName(dstPath);
      await node.mkdirp(stage);
      try {
        const { bytes } = await pipe(
          { host: new LocalHost({ name: "front-end", useSudo: false }), argv: contextTar(sources) },
          { host: node, argv: [...tarExtract(stage).filter((a) => a !== "-p"), "--no-same-owner"] },
        );
        if (await node.exists(dstPath)) await node.remove(dstPath, { recursive: true });
        await node.rename(stage, dstPath);
        log(`Placed ${sources.length} file(s) (${bytes} bytes) in ${node.name}:${dstPath}`);
      } catch (e) {
        await node.run(["rm", "-rf", "--", stage], { check: false });
        throw e;
      }
    } finally {
      await closeHosts(node);
    }
  });
}
