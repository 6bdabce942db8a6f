/**
 * tm-clone <src> <host:dst> [size]: put the image on the node (TM CLONE; LN does the same).
 *
 * Images go through a content-addressed cache on each node, `$VM_DIR/.onevz-cache/<sha256>`
 * (see src/ovz/caches.ts):
 *   1. the front-end hashes the source (cached in `<src>.sha256`, keyed by size and mtime);
 *   2. one command on the node creates the directories and reports the cache entry, its
 *      verification record and every directory on the way. Directories anyone but root or
 *      the driver's user could write are refused (someone could swap the files below);
 *   3. a hit is used only when the entry provably has not changed since it was checked: its
 *      inode, size, mtime and ctime equal the record. Otherwise the node hashes it again
 *      (sha256sum), and an entry that no longer matches its name, or one other users could
 *      write (older onevz versions left them 0666), is dropped and the image sent again;
 *   4. on a miss the bytes are streamed to a temporary name in the cache (`dd` on the node),
 *      made read-only (0444), checked with `sha256sum` on the node and renamed into the cache;
 *   5. the target is hard-linked from the entry (copied across file systems) to a temporary
 *      name and renamed into place, so it only ever appears whole; a target that already IS
 *      the entry (a prolog run again) is left as it is; the record is renewed after the link
 *      (a new link changes the ctime).
 * After a miss the cache is pruned to the bounds of the defaults file (never an entry a VM
 * directory links). Writers of `disk.<i>` on the node (shutdown's SAVE) must replace the file
 * by rename, never rewrite it in place: it is read-only and shares its inode with the cache.
 */
import type { CommandContext } from "../../cli/context.ts";
import { OnevzError } from "../../cli/errors.ts";
import type { Host } from "../../host/host.ts";
import { dirProblem, fileProblem, fingerprint, pathFacts } from "../../host/files.ts";
import { formatBytes, listImageCache, pruneCache, RECORD_SUFFIX } from "../../ovz/caches.ts";
import {
  CACHE_DIR_NAME,
  closeHosts,
  hostFor,
  loadFrontEndConfig,
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
 * The node side, one constant script whose values are its positional parameters.
 *   commit TMP DEST DIGEST: make TMP read-only, check its sha256, rename it to DEST.
 *   place MODE ENTRY RECORD TARGET LINKTMP DIGEST EXPECT: with MODE trust, the entry must
 *     still have fingerprint EXPECT; with verify, it is hashed again (and removed when it no
 *     longer matches DIGEST); fresh: it was just committed. Then TARGET is linked from it
 *     (unless it already is the entry) and the record renewed; an entry pruned by another
 *     clone once TARGET is linked needs no record (TARGET holds its bytes).
 *   commit-place TMP ENTRY DIGEST RECORD TARGET LINKTMP: both, one round trip.
 * The last line says what happened: committed, mismatch <sum>, placed, same, vanished
 * (pruned meanwhile), changed (written since checked), corrupt (dropped).
 */
export const NODE_SCRIPT = [
  "fp() { find -P \"$1\" -maxdepth 0 -printf '%i %s %T@ %C@\\n' 2>/dev/null; }",
  "record() {",
  '  f=$(fp "$1") && [ -n "$f" ] && printf "%s\\n" "$f" > "$2.$$" && mv -f -- "$2.$$" "$2" ||',
  '    { rm -f -- "$2.$$"; return 1; }',
  "}",
  "commit() {",
  '  chmod 0444 -- "$1" || return 1',
  '  sum=$(sha256sum -- "$1") || { rm -f -- "$1"; return 1; }',
  "  sum=${sum%% *}",
  '  if [ "$sum" != "$3" ]; then rm -f -- "$1"; echo "mismatch $sum"; return 3; fi',
  '  mv -f -T -- "$1" "$2" || { rm -f -- "$1"; return 1; }',
  "  echo committed",
  "}",
  "place() {",
  '  now=$(fp "$2")',
  '  [ -n "$now" ] || { echo vanished; return 0; }',
  "  case $1 in",
  "  verify)",
  '    sum=$(sha256sum -- "$2") || { echo vanished; return 0; }',
  "    sum=${sum%% *}",
  '    [ "$(fp "$2")" = "$now" ] || { echo changed; return 0; }',
  '    if [ "$sum" != "$6" ]; then rm -f -- "$2" "$3"; echo corrupt; return 0; fi',
  "    echo verified ;;",
  '  trust) [ "$now" = "$7" ] || { echo changed; return 0; } ;;',
  "  esac",
  "  done=placed",
  '  if [ "$4" -ef "$2" ]; then',
  "    done=same",
  '  elif why=$(ln -- "$2" "$5" 2>&1); then',
  '    mv -f -T -- "$5" "$4" || { rm -f -- "$5"; return 1; }',
  '  elif [ -e "$2" ]; then',
  '    echo "copied: $why" | tr "\\n" " "; echo',
  '    cp -- "$2" "$5" && chmod 0444 -- "$5" || { rm -f -- "$5"; return 1; }',
  '    mv -f -T -- "$5" "$4" || { rm -f -- "$5"; return 1; }',
  "  else",
  "    echo vanished; return 0",
  "  fi",
  '  if ! record "$2" "$3"; then',
  // Pruned by another clone right after TARGET was linked: TARGET holds the bytes already.
  '    [ -e "$2" ] || { echo "$done"; return 0; }',
  '    echo "cannot write $3, the record of $2" >&2; return 1',
  "  fi",
  '  echo "$done"',
  "}",
  "case $1 in",
  'commit) shift; commit "$@" ;;',
  'place) shift; place "$@" ;;',
  'commit-place) commit "$2" "$3" "$4" && place fresh "$3" "$5" "$6" "$7" "$4" "" ;;',
  "esac",
  "rc=$?; [ $rc = 3 ] && exit 0; exit $rc",
].join("\n");

type Outcome =
  | "committed"
  | "mismatch"
  | "placed"
  | "same"
  | "vanished"
  | "changed"
  | "corrupt"
  | "verified";

async function nodeScript(node: Host, args: string[], log: TmLog) {
  const r = await node.run(["sh", "-c", NODE_SCRIPT, "sh", ...args], { check: false });
  if (r.status !== 0) {
    const why = r.stderr.trim().split("\n").slice(-2).join(" / ") || "no message";
    throw new OnevzError(
      `${args[0]} of ${args[2]} on ${node.name} failed (exit ${r.status}): ${why}`,
    );
  }
  const lines = r.stdout.split("\n").filter((l) => l !== "");
  const copied = lines.find((l) => l.startsWith("copied: "));
  if (copied) {
    log(`hard link failed (${copied.slice(8).trim() || "no message"}), copying instead`);
  }
  const last = lines.at(-1) ?? "";
  const word = last.split(" ")[0] as Outcome;
  return { word, last, verified: lines.includes("verified") };
}

/** Stream a front-end file to a temporary name on the node (dd), for `commit`. */
async function send(node: Host, file: string, tmp: string): Promise<number> {
  try {
    const { bytes } = await pipe({ file }, {
      host: node,
      argv: ["dd", `of=${tmp}`, "bs=1M", "status=none"],
    });
    return bytes;
  } catch (e) {
    await node.run(["rm", "-f", "--", tmp], { check: false });
    throw e;
  }
}

function mismatch(file: string, node: Host, digest: string, last: string) {
  return new OnevzError(
    `checksum mismatch after sending ${file} to ${node.name}: expected ${digest}, got ${
      last.split(" ")[1] ?? "nothing"
    }`,
  );
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
      const facts = await pathFacts(node, { make: [dstDir], dirs: [dstDir] });
      const bad = dirProblem(dstDir, facts, dstPath);
      if (bad) throw new OnevzError(`refusing to place the image: ${bad}`);
      const tmp = tempName(dstPath);
      const bytes = await send(node, srcPath, tmp);
      const c = await nodeScript(node, ["commit", tmp, dstPath, digest], log);
      if (c.word !== "committed") throw mismatch(srcPath, node, digest, c.last);
      log(`sent ${bytes} bytes to ${node.name}:${dstPath} (sha256 verified)`);
      return;
    }
    await viaCache(ctx, node, { srcPath, digest, dstDir, dstPath, vmDir: layout.vmDir }, log);
    log(`Placed ${node.name}:${dstPath}`);
  } finally {
    await closeHosts(node);
  }
}

async function viaCache(
  ctx: CommandContext,
  node: Host,
  p: { srcPath: string; digest: string; dstDir: string; dstPath: string; vmDir: string },
  log: TmLog,
) {
  const cacheDir = nodeJoin(p.vmDir, CACHE_DIR_NAME);
  const entry = nodeJoin(cacheDir, p.digest);
  const record = entry + RECORD_SUFFIX;
  const facts = await pathFacts(node, {
    make: [p.dstDir, cacheDir],
    dirs: [p.dstDir, cacheDir],
    files: [entry],
    lines: [record],
  });
  for (const [dir, what] of [[cacheDir, "the node image cache"], [p.dstDir, p.dstPath]]) {
    const bad = dirProblem(dir, facts, what);
    if (bad) throw new OnevzError(`refusing to place the image on ${node.name}: ${bad}`);
  }
  const place = (mode: string, expect = "") =>
    nodeScript(node, [
      "place",
      mode,
      entry,
      record,
      p.dstPath,
      tempName(p.dstPath),
      p.digest,
      expect,
    ], log);

  const st = facts.stats.get(entry);
  let outcome: Outcome = "vanished";
  if (st) {
    const untrusted = fileProblem(st, facts, `cache entry ${entry}`);
    if (untrusted) {
      log(`${untrusted}: dropping it and sending the image again`);
      await node.run(["rm", "-f", "--", entry, record]);
    } else {
      const recorded = facts.lines.get(record);
      const trusted = recorded === fingerprint(st);
      let r = await place(trusted ? "trust" : "verify", recorded);
      if (r.word === "changed") r = await place("verify");
      outcome = r.word;
      if (outcome === "placed" || outcome === "same") {
        const how = r.verified ? "verified again with sha256sum" : "unchanged since verified";
        log(`cache hit on ${node.name}: ${entry} (${how}; 0 image bytes sent)`);
        if (outcome === "same") log(`${p.dstPath} already is that image: left as it is`);
        return;
      }
      if (outcome === "corrupt") log(`cache entry ${entry} no longer matches its digest: dropped`);
      if (outcome === "changed") log(`cache entry ${entry} kept changing: sending the image`);
    }
  }
  // A miss (or an entry pruned between the check and the link): send, check, link.
  for (let attempt = 0; attempt < 3; attempt++) {
    log(`cache miss on ${node.name}: sending the image`);
    const tmp = tempName(entry);
    const bytes = await send(node, p.srcPath, tmp);
    const r = await nodeScript(
      node,
      ["commit-place", tmp, entry, p.digest, record, p.dstPath, tempName(p.dstPath)],
      log,
    );
    if (r.word === "mismatch") throw mismatch(p.srcPath, node, p.digest, r.last);
    if (r.word === "placed" || r.word === "same") {
      log(`sent ${bytes} bytes to ${node.name}:${entry} (sha256 verified)`);
      await pruneAfterInsert(ctx, node, p.vmDir, p.digest, log);
      return;
    }
  }
  throw new OnevzError(
    `${entry} vanished from ${node.name}'s cache three times while cloning (pruned each time)`,
  );
}

/** Bound the cache after it grew; a failure here never fails the clone (it is only logged). */
async function pruneAfterInsert(
  ctx: CommandContext,
  node: Host,
  vmDir: string,
  digest: string,
  log: TmLog,
) {
  try {
    const { config } = await loadFrontEndConfig(ctx);
    const listing = await listImageCache(node, vmDir);
    const { removed, junk } = await pruneCache(node, listing, config.caches.image, {
      keep: new Set([digest]),
      privileged: false,
    });
    if (removed.length || junk.length) {
      const freed = removed.reduce((s, i) => s + i.size, 0);
      log(
        `pruned the image cache on ${node.name}: ${removed.length} unused entr${
          removed.length === 1 ? "y" : "ies"
        } (${formatBytes(freed)}), ${junk.length} leftover file(s)`,
      );
    }
  } catch (e) {
    log(`could not prune the image cache on ${node.name}: ${(e as Error).message}`);
  }
}

export default function (ctx: CommandContext): Promise<number> {
  return runTm(ctx, "tm-clone", (log) => clone(ctx, log));
}
