/**
 * The two caches of OS images on a node, and how they stay bounded.
 *
 * - The image cache, `$VM_DIR/.onevz-cache/<sha256>` (tm-clone fills it; the driver's user owns
 *   it). Each entry is read-only (0444) and has a record `<sha256>.verified` holding the
 *   entry's fingerprint (inode, size, mtime, ctime) taken when its content was last checked
 *   against its name; the record's mtime is the entry's last use.
 * - onevz's OS templates in `$TEMPLATE/cache`, `<name>-onevz-<digest12>.<ext>` (deploy places
 *   them, root owns the directory): a hard link to the VM's R/disk.N (so to the cache entry),
 *   or a copy across file systems. The digest makes the name unique to the content, so one
 *   tenant's image never takes another's name, nor the name of the administrator's own
 *   templates; vzctl still finds the distribution from the name's prefix, since it strips
 *   `-suffix` parts until a dists/<prefix>.conf exists.
 *
 * Both are pruned when they grow (tm-clone after sending a new entry, deploy after placing a
 * new template): entries older than the age bound, then the least recently used until the size
 * bound holds — never an entry a VM directory still links (`R/disk.N` with the same inode),
 * never one used in the last CACHE_GRACE_MINUTES (a clone or deploy in progress may be about
 * to link it), never the one the action itself uses.
 */
import type { CacheLimits } from "../one/config.ts";
import type { Host } from "../host/host.ts";
import { type FileStat, parseStatLine, STAT_PRINTF } from "../host/files.ts";

/** Name of the node-side image cache, directly under VM_DIR. */
export const CACHE_DIR_NAME = ".onevz-cache";
export const RECORD_SUFFIX = ".verified";
/** Entries used this recently are never pruned (seconds; CACHE_GRACE_MINUTES overrides it). */
export const GRACE_SECONDS = 600;
/** Temporary files of an interrupted transfer are removed after this long (seconds). */
export const STALE_TEMP_SECONDS = 86400;

export const DIGEST = /^[0-9a-f]{64}$/;
/** onevz's OS template file names in $TEMPLATE/cache. */
export const PLACED_TEMPLATE = /^(.+)-onevz-([0-9a-f]{12})(\.tar(?:\.gz|\.bz2|\.xz)?)$/;

/**
 * The name under which deploy places an OS image in $TEMPLATE/cache (without extension): the
 * template's name, then `-onevz-` and the first 12 hex digits of the image's sha256.
 */
export function placedTemplateName(name: string, sha256: string): string {
  return `${name}-onevz-${sha256.slice(0, 12)}`;
}

export function imageCacheDir(vmDir: string): string {
  return `${vmDir.replace(/\/+$/, "")}/${CACHE_DIR_NAME}`;
}

/** One prunable entry of either cache. */
export interface CacheItem {
  name: string;
  size: number;
  ino: string;
  /** Seconds since the epoch (node clock). */
  lastUse: number;
  /** A VM directory links it (R/disk.N shares its inode). */
  inUse: boolean;
  /** Everything to remove with it (the entry, its record). */
  paths: string[];
}

export interface CacheListing {
  dir: string;
  /** The node's clock when listed. */
  now: number;
  items: CacheItem[];
  /** Leftovers to remove whatever the bounds: stale temporary files, records without entry. */
  junk: string[];
  /** Entries or records other users could write (never trusted; reported by doctor). */
  unsafe: string[];
}

/** Which items to remove, oldest first: the age bound, then the size bound. Pure. */
export function chooseEvictions(
  listing: Pick<CacheListing, "items" | "now">,
  limits: CacheLimits,
  keep: ReadonlySet<string> = new Set(),
): CacheItem[] {
  const grace = limits.graceSeconds ?? GRACE_SECONDS;
  const removable = listing.items
    .filter((i) => !i.inUse && !keep.has(i.name) && listing.now - i.lastUse >= grace)
    .sort((a, b) => a.lastUse - b.lastUse || a.name.localeCompare(b.name));
  const out: CacheItem[] = [];
  const gone = new Set<string>();
  if (limits.maxAgeDays !== undefined) {
    for (const i of removable) {
      if (listing.now - i.lastUse > limits.maxAgeDays * 86400) {
        out.push(i);
        gone.add(i.name);
      }
    }
  }
  if (limits.maxBytes !== undefined) {
    let total = listing.items.filter((i) => !gone.has(i.name)).reduce((s, i) => s + i.size, 0);
    for (const i of removable) {
      if (total <= limits.maxBytes) break;
      if (gone.has(i.name)) continue;
      out.push(i);
      gone.add(i.name);
      total -= i.size;
    }
  }
  return out;
}

/** Total size and counts of a listing (doctor, logs). */
export function cacheSummary(l: CacheListing) {
  const bytes = l.items.reduce((s, i) => s + i.size, 0);
  const inUse = l.items.filter((i) => i.inUse).length;
  return { entries: l.items.length, bytes, inUse };
}

/** "1.5 GB" style (binary units, as the limits are given). */
export function formatBytes(n: number): string {
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} bytes` : `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

/**
 * One listing command (as the login user): the node's clock, the inodes every VM directory's
 * R/disk.N holds, and lstat of each entry of `dir`. Fixed script; paths are its parameters.
 */
const LISTING_SCRIPT = [
  "date +%s",
  'find -P "$1" -mindepth 3 -maxdepth 3 -name "disk.*" -printf "V %i\\n" 2>/dev/null',
  '[ -z "$2" ] || find -P "$2" -mindepth 1 -maxdepth 1 -printf "S ' + STAT_PRINTF +
  '" 2>/dev/null',
  "true",
].join("\n");

async function listDir(host: Host, vmDir: string, dir: string, privileged: boolean) {
  const r = await host.run(["sh", "-c", LISTING_SCRIPT, "sh", vmDir, privileged ? "" : dir]);
  const lines = r.stdout.split("\n");
  const now = Number(lines[0]);
  const linked = new Set<string>();
  let stats: FileStat[] = [];
  for (const l of lines.slice(1)) {
    if (l.startsWith("V ")) linked.add(l.slice(2));
    else if (l.startsWith("S ")) {
      const st = parseStatLine(l.slice(2));
      if (st) stats.push(st);
    }
  }
  if (privileged) {
    // $TEMPLATE/cache belongs to root: list it through sudo (find is among the rules).
    const p = await host.run(
      ["find", "-P", dir, "-mindepth", "1", "-maxdepth", "1", "-printf", STAT_PRINTF],
      { privileged: true, check: false },
    );
    stats = p.stdout.split("\n").map(parseStatLine).filter((s): s is FileStat => !!s);
  }
  return { now: Number.isFinite(now) ? now : Math.floor(Date.now() / 1000), linked, stats };
}

const seconds = (t: string) => Math.floor(Number(t));
const base = (p: string) => p.slice(p.lastIndexOf("/") + 1);
const unsafeMode = (st: FileStat) => (st.mode & 0o022) !== 0;

/** The image cache of a node (as the driver's user). */
export async function listImageCache(host: Host, vmDir: string): Promise<CacheListing> {
  const dir = imageCacheDir(vmDir);
  const { now, linked, stats } = await listDir(host, vmDir, dir, false);
  const byName = new Map(stats.map((s) => [base(s.path), s]));
  const items: CacheItem[] = [];
  const junk: string[] = [];
  const unsafe: string[] = [];
  for (const [name, st] of byName) {
    if (DIGEST.test(name)) {
      const rec = byName.get(name + RECORD_SUFFIX);
      if (st.type !== "file" || unsafeMode(st) || (rec && unsafeMode(rec))) unsafe.push(st.path);
      if (st.type !== "file") continue;
      items.push({
        name,
        size: st.size,
        ino: st.ino,
        lastUse: seconds(rec?.mtime ?? st.ctime),
        inUse: linked.has(st.ino),
        paths: rec ? [st.path, rec.path] : [st.path],
      });
    } else if (name.endsWith(RECORD_SUFFIX) && DIGEST.test(name.slice(0, -RECORD_SUFFIX.length))) {
      if (
        !byName.has(name.slice(0, -RECORD_SUFFIX.length)) && now - seconds(st.mtime) > GRACE_SECONDS
      ) {
        junk.push(st.path);
      }
    } else if (name.includes(".onevz-tmp-") && now - seconds(st.mtime) > STALE_TEMP_SECONDS) {
      junk.push(st.path);
    }
  }
  return { dir, now, items, junk, unsafe };
}

/** onevz's OS templates in $TEMPLATE/cache (the administrator's own files are not listed). */
export async function listTemplateCache(
  host: Host,
  vmDir: string,
  templateCacheDir: string,
): Promise<CacheListing> {
  const { now, linked, stats } = await listDir(host, vmDir, templateCacheDir, true);
  const items: CacheItem[] = [];
  const junk: string[] = [];
  const unsafe: string[] = [];
  for (const st of stats) {
    const name = base(st.path);
    if (PLACED_TEMPLATE.test(name)) {
      if (st.type !== "file" || unsafeMode(st)) unsafe.push(st.path);
      if (st.type !== "file") continue;
      // ctime moves whenever a link to the image is made or removed: the last use.
      items.push({
        name,
        size: st.size,
        ino: st.ino,
        lastUse: seconds(st.ctime),
        inUse: linked.has(st.ino),
        paths: [st.path],
      });
    } else if (name.includes("-onevz-") && name.includes(".onevz-tmp-")) {
      if (now - seconds(st.mtime) > STALE_TEMP_SECONDS) junk.push(st.path);
    }
  }
  return { dir: templateCacheDir, now, items, junk, unsafe };
}

/** Remove what the bounds say; returns what was removed. Errors are the caller's to report. */
export async function pruneCache(
  host: Host,
  listing: CacheListing,
  limits: CacheLimits,
  opts: { keep?: ReadonlySet<string>; privileged: boolean },
): Promise<{ removed: CacheItem[]; junk: string[] }> {
  const removed = chooseEvictions(listing, limits, opts.keep);
  const paths = [...removed.flatMap((i) => i.paths), ...listing.junk];
  if (paths.length > 0) {
    await host.run(["rm", "-f", "--", ...paths], { privileged: opts.privileged });
  }
  return { removed, junk: listing.junk };
}
