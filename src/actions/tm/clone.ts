/**
 * tm-clone <src> <host:dst> [size]: put the image on the node (TM CLONE; LN does the same).
 *
 * Images go through a content-addressed cache on each node, `$VM_DIR/.onevz-cache/<sha256>`:
 *   1. the front-end hashes the source (cached in `<src>.sha256`, keyed by size and mtime);
 *   2. if the node already holds that digest, the final file is hard-linked (or copied when
 *      on another device) from the cache: no image bytes cross the network, and the whole
 *      repeat clone is one command on the node;
 *   3. otherwise the bytes are streamed to a temporary name in the cache (`dd` on the node),
 *      checked with `sha256sum` on the node, renamed into the cache, then linked.
 * The final name only ever appears by rename, so a broken transfer leaves nothing under it.
 * Writers of `disk.<i>` on the node (shutdown's SAVE) must replace the file by rename, never
 * rewrite it in place, since it may share its inode with the cache entry.
 */
import type { CommandContext } from "../../cli/context.ts";
import { OnevzError } from "../../cli/errors.ts";
import type { Host } from "../../host/host.ts";
import {
  CACHE_DIR_NAME,
  closeHosts,
  hostFor,
  nodeJoin,
  parseTmArg,
  pipe,
  requireAbsolute,
  runTm,
  splitVmPath,
  tempName,
  type TmLog,
} from "./common.ts";

/** sha256 of a front-end file, reusing `<file>.sha256` when size and mtime still match. */
export async function fileDigest(path: string, log?: TmLog): Promise<string> {
  const st = await Deno.stat(path);
  if (!st.isFile) throw new OnevzError(`source '${path}' is not a regular file`);
  const key = `${st.size} ${st.mtime?.getTime() ?? 0}`;
  const sidecar = `${path}.sha256`;
  try {
    const text = (await Deno.readTextFile(sidecar)).trim();
    const m = /^(\d+ -?\d+) ([0-9a-f]{64})$/.exec(text);
    if (m && m[1] === key) return m[2];
  } catch { /* no sidecar yet */ }
  const { createHash } = await import("node:crypto"); // only when the digest must be computed
  const hash = createHash("sha256");
  const f = await Deno.open(path, { read: true });
  for await (const chunk of f.readable) hash.update(chunk);
  const digest = hash.digest("hex");
  try {
    const tmp = `${sidecar}.onevz-tmp-${crypto.randomUUID().slice(0, 8)}`;
    await Deno.writeTextFile(tmp, `${key} ${digest}\n`);
    await Deno.rename(tmp, sidecar);
  } catch {
    log?.(`could not record the digest beside ${path} (read-only repository?)`);
  }
  return digest;
}

/**
 * Place the target from the node cache in one command on the node (one ssh round trip):
 * create the destination and cache directories and, when the cache holds the image, link it
 * (or copy it when a hard link fails) to a temporary name and rename that to the target, so
 * it only ever appears whole. Prints `miss`, or `hit` (after `copied: <why>` for a copy). Used
 * for every clone: a repeat clone is this command alone. The script is a constant; paths
 * travel as its positional parameters, quoted like every other argument.
 */
const PLACE_IF_CACHED = [
  'mkdir -p -- "$1" "$2" || exit 1',
  '[ -e "$3" ] || { echo miss; exit 0; }',
  'if ! why=$(ln -f -- "$3" "$5" 2>&1); then',
  '  echo "copied: $why" | tr "\n" " "; echo',
  '  cp --sparse=always -- "$3" "$5" || { rm -f -- "$5"; exit 1; }',
  "fi",
  'chmod a+rw -- "$5" 2>/dev/null',
  'mv -f -- "$5" "$4" || { rm -f -- "$5"; exit 1; }',
  "echo hit",
].join("\n");

async function placeIfCached(
  node: Host,
  p: { dstDir: string; cacheDir: string; cached: string; target: string },
  log: TmLog,
): Promise<boolean> {
  const argv = ["sh", "-c", PLACE_IF_CACHED, "sh", p.dstDir, p.cacheDir, p.cached, p.target];
  const r = await node.run([...argv, tempName(p.target)]);
  const copied = /^copied: (.*)$/m.exec(r.stdout);
  if (copied) log(`hard link failed (${copied[1].trim() || "no message"}), copying instead`);
  return /^hit$/m.test(r.stdout);
}

/** Stream a front-end file to `dest` on the node, verifying its digest there. */
async function sendVerified(
  node: Host,
  file: string,
  digest: string,
  dest: string,
  log: TmLog,
): Promise<number> {
  const tmp = tempName(dest);
  try {
    const { bytes } = await pipe({ file }, {
      host: node,
      argv: ["dd", `of=${tmp}`, "bs=1M", "status=none"],
    });
    const sum = await node.run(["sha256sum", "--", tmp]);
    const got = sum.stdout.trim().split(/\s+/)[0];
    if (got !== digest) {
      throw new OnevzError(
        `checksum mismatch after sending ${file} to ${node.name}: expected ${digest}, got ${got}`,
      );
    }
    await node.rename(tmp, dest);
    log(`sent ${bytes} bytes to ${node.name}:${dest} (sha256 verified)`);
    return bytes;
  } catch (e) {
    await node.run(["rm", "-f", "--", tmp], { check: false });
    throw e;
  }
}

export async function clone(ctx: CommandContext, log: TmLog): Promise<void> {
  const [srcArg, dstArg] = ctx.args;
  const src = parseTmArg(srcArg);
  const dst = parseTmArg(dstArg);
  if (/^(https?|ftp):\/\//.test(srcArg)) {
    throw new OnevzError(`URL sources are not supported (${srcArg}): register the image first`);
  }
  if (!src.local) {
    throw new OnevzError(
      `source ${srcArg} is not on this front-end; the ssh transfer manager clones front-end images`,
    );
  }
  const srcPath = requireAbsolute(src.path, "source");
  const dstPath = requireAbsolute(dst.path, "destination");
  const node = hostFor(dst);
  try {
    const digest = await fileDigest(srcPath, log).catch((e) => {
      throw e instanceof OnevzError ? e : new OnevzError(`cannot read source ${srcPath}: ${e}`);
    });
    const dstDir = nodeJoin(dstPath, "..");
    log(`DST: ${dstPath}`);
    log(`Creating directory ${dstDir}`);
    log(`Cloning ${srcPath} (sha256 ${digest})`);
    const layout = splitVmPath(dstPath);
    if (!layout) {
      log(`${dstPath} is not under $VM_DIR/<vid>/images: copying without the node cache`);
      await node.mkdirp(dstDir);
      await sendVerified(node, srcPath, digest, dstPath, log);
      return;
    }
    const cacheDir = nodeJoin(layout.vmDir, CACHE_DIR_NAME);
    const cached = nodeJoin(cacheDir, digest);
    const place = { dstDir, cacheDir, cached, target: dstPath };
    if (await placeIfCached(node, place, log)) {
      log(`cache hit on ${node.name}: ${cached} (0 image bytes sent)`);
    } else {
      log(`cache miss on ${node.name}: sending the image`);
      await sendVerified(node, srcPath, digest, cached, log);
      await node.run(["chmod", "a+r", "--", cached], { check: false });
      if (!(await placeIfCached(node, place, log))) {
        throw new OnevzError(`${cached} vanished from ${node.name}'s cache while cloning`);
      }
    }
    log(`Placed ${node.name}:${dstPath}`);
  } finally {
    await closeHosts(node);
  }
}

export default function (ctx: CommandContext): Promise<number> {
  return runTm(ctx, "tm-clone", (log) => clone(ctx, log));
}
