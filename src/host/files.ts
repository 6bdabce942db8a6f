/**
 * File facts and safe file access on any Host, as fixed commands (find, dd, sha256sum) that
 * work the same locally, through sudo and over ssh:
 *   - statPaths: lstat of many paths in one `find -P … -maxdepth 0 -printf` (never follows a
 *     link, never opens a file, so a FIFO or a device cannot block or leak anything);
 *   - readRegular: read a file only when it is a regular file, bounded, without following a
 *     link and without blocking (O_NOFOLLOW|O_NONBLOCK), and refused when it changed between
 *     the check and the read;
 *   - pathFacts / dirProblem: whether every directory on a path belongs to root or the driver's
 *     user and is closed to everyone else, so that nobody else can replace what lies below.
 */
import { CommandError, OnevzError } from "../cli/errors.ts";
import type { Host } from "./host.ts";

export type FileType =
  | "file"
  | "directory"
  | "symlink"
  | "fifo"
  | "char-device"
  | "block-device"
  | "socket"
  | "other";

/** What lstat says about one path (times and inode as find prints them: compared, not parsed). */
export interface FileStat {
  path: string;
  type: FileType;
  /** Permission bits including setuid/setgid/sticky (find %m). */
  mode: number;
  uid: number;
  ino: string;
  size: number;
  mtime: string;
  ctime: string;
  nlink: number;
}

const TYPES: Record<string, FileType> = {
  f: "file",
  d: "directory",
  l: "symlink",
  p: "fifo",
  c: "char-device",
  b: "block-device",
  s: "socket",
};

/** The type of a file node:fs stat'ed (fstat of an open descriptor: never a symlink). */
export function fileTypeOf(st: {
  isFile(): boolean;
  isDirectory(): boolean;
  isFIFO(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
  isSocket(): boolean;
}): FileType {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "directory";
  if (st.isFIFO()) return "fifo";
  if (st.isCharacterDevice()) return "char-device";
  if (st.isBlockDevice()) return "block-device";
  if (st.isSocket()) return "socket";
  return "other";
}

/** How a type reads in a message: "is a FIFO (named pipe)". */
export function describeType(t: FileType): string {
  return {
    file: "a regular file",
    directory: "a directory",
    symlink: "a symbolic link",
    fifo: "a FIFO (named pipe)",
    "char-device": "a character device",
    "block-device": "a block device",
    socket: "a socket",
    other: "not a regular file",
  }[t];
}

/** find -printf format of one stat line (the path last: it may hold blanks). */
export const STAT_PRINTF = "%y %m %U %i %s %T@ %C@ %n %p\\n";

/** Parse one STAT_PRINTF line (without the newline); undefined when it is not one. */
export function parseStatLine(line: string): FileStat | undefined {
  const m = /^(\S) ([0-7]+) (\d+) (\d+) (\d+) (\S+) (\S+) (\d+) (\/.*)$/.exec(line);
  if (!m) return undefined;
  return {
    type: TYPES[m[1]] ?? "other",
    mode: parseInt(m[2], 8),
    uid: Number(m[3]),
    ino: m[4],
    size: Number(m[5]),
    mtime: m[6],
    ctime: m[7],
    nlink: Number(m[8]),
    path: m[9],
  };
}

/** Inode, size, mtime and ctime: any write, chmod, link or rename changes one of them. */
export function fingerprint(st: FileStat): string {
  return `${st.ino} ${st.size} ${st.mtime} ${st.ctime}`;
}

function checkPaths(paths: readonly string[]) {
  for (const p of paths) {
    if (!p.startsWith("/") || /[\n\r\0]/.test(p)) {
      throw new OnevzError(`internal error: cannot examine path ${JSON.stringify(p)}`);
    }
  }
}

/**
 * lstat of every path in one command; null for a path that does not exist. A path that
 * cannot be examined for another reason (permission denied) is an error, never "missing".
 */
export async function statPaths(
  host: Host,
  paths: readonly string[],
  opts: { privileged?: boolean } = {},
): Promise<Map<string, FileStat | null>> {
  checkPaths(paths);
  const out = new Map<string, FileStat | null>(paths.map((p) => [p, null]));
  if (paths.length === 0) return out;
  const argv = ["find", "-P", ...paths, "-maxdepth", "0", "-printf", STAT_PRINTF];
  const r = await host.run(argv, { ...opts, check: false });
  for (const line of r.stdout.split("\n")) {
    const st = parseStatLine(line);
    if (st && out.has(st.path)) out.set(st.path, st);
  }
  if (r.status !== 0) {
    const unexplained = r.stderr.split("\n").filter((l) =>
      l.trim() !== "" && !/No such file or directory|Not a directory/.test(l)
    );
    if (unexplained.length > 0) {
      throw new CommandError(host.name, argv, r.status, r.stdout, r.stderr);
    }
  }
  return out;
}

/** Why `st` may not be read or written as a regular file (undefined: it may). */
export function notRegular(path: string, st: FileStat | null): string | undefined {
  if (!st || st.type === "file") return undefined;
  return `${path} is ${describeType(st.type)}, not a regular file`;
}

/**
 * The contents of a regular file, at most `maxBytes`, or null when it does not exist.
 * Anything else (FIFO, device, socket, directory, symbolic link) is refused without being
 * opened; a file larger than the bound is refused; a file that changed between the check and
 * the read (swapped for another) is refused. The read itself is `dd iflag=nofollow,nonblock`,
 * so even a file swapped in at that instant is never followed or waited on.
 */
async function readRegular(
  host: Host,
  path: string,
  opts: { privileged?: boolean; maxBytes: number; what?: string; head?: boolean },
): Promise<Uint8Array | null> {
  const what = opts.what ?? path;
  const direct = host.readRegularDirect(path, opts.maxBytes, opts);
  if (direct !== undefined) return await direct;
  const before = (await statPaths(host, [path], opts)).get(path)!;
  if (before === null) return null;
  const refusal = notRegular(what, before);
  if (refusal) throw new OnevzError(`${refusal}: refusing to read it`);
  if (before.size > opts.maxBytes && !opts.head) {
    throw new OnevzError(`${what} is ${before.size} bytes, over the ${opts.maxBytes} byte limit`);
  }
  const r = await host.run(
    [
      "dd",
      `if=${path}`,
      "iflag=nofollow,nonblock",
      `bs=${opts.maxBytes + (opts.head ? 0 : 1)}`,
      "count=1",
    ],
    { ...opts, check: false },
  );
  const after = (await statPaths(host, [path], opts)).get(path) ?? null;
  if (r.status !== 0 || !after || fingerprint(after) !== fingerprint(before)) {
    throw new OnevzError(`${what} changed while it was read: refusing it`);
  }
  const bytes = r.bytes ?? new TextEncoder().encode(r.stdout);
  if (bytes.length !== Math.min(before.size, opts.head ? opts.maxBytes : before.size)) {
    throw new OnevzError(`${what} changed while it was read: refusing it`);
  }
  return bytes;
}

/** The first `n` bytes of a regular file (readRegular's checks); a missing file is an error. */
export async function readRegularHead(
  host: Host,
  path: string,
  n: number,
  opts: { privileged?: boolean } = {},
): Promise<Uint8Array> {
  const bytes = await readRegular(host, path, { ...opts, maxBytes: n, head: true });
  if (bytes === null) throw new OnevzError(`${path} does not exist`);
  return bytes;
}

/** Like readRegular, as text. */
export async function readRegularText(
  host: Host,
  path: string,
  opts: { privileged?: boolean; maxBytes: number; what?: string },
): Promise<string | null> {
  const bytes = await readRegular(host, path, opts);
  return bytes === null ? null : new TextDecoder().decode(bytes);
}

/** "/a/b/c" → ["/", "/a", "/a/b", "/a/b/c"]. */
function ancestors(path: string): string[] {
  const parts = path.split("/").filter((p) => p !== "");
  const out = ["/"];
  for (let i = 1; i <= parts.length; i++) out.push("/" + parts.slice(0, i).join("/"));
  return out;
}

/** What pathFacts learnt on a host. */
export interface PathFacts {
  /** uid of the login that ran the command (the driver's user). */
  uid: number;
  /** lstat of each directory on the asked paths (and on their resolved forms), by path. */
  stats: Map<string, FileStat | null>;
  /** `readlink -f` of each asked directory that differs from it. */
  real: Map<string, string>;
  /** First line of each asked record file that exists. */
  lines: Map<string, string>;
  /** Entries of each listed directory (as find's %h prints the directory). */
  entries: Map<string, { ino: string; size: number; name: string }[]>;
}

/**
 * One `sh -c` on the host (as the login user, no sudo), with few processes (it runs before
 * every clone): mkdir -p of `make`, the first line of each of `lines` (small record files, read
 * by the shell itself), the entries of each of `list` (inode, size, name), then ONE `find -P`
 * that lstats every path after the `--`: the directories from / down to each of `dirs` and
 * each of `files`. When a symbolic link lies on such a path, a second command resolves it
 * (`readlink -f`) and the resolved path is examined too. The script is a constant; paths
 * travel as its positional parameters.
 */
const FACTS_SCRIPT = [
  'echo "U $(id -u)"',
  'while [ $# -gt 0 ] && [ "$1" != -- ]; do',
  "  a=$1; shift",
  "  case $a in",
  '  K:*) mkdir -p -- "${a#K:}" || exit 1 ;;',
  '  C:*) if IFS= read -r l < "${a#C:}"; then printf "C %s\\n%s\\n" "${a#C:}" "$l"; fi 2>/dev/null ;;',
  '  N:*) find -P "${a#N:}" -mindepth 1 -maxdepth 1 -printf "N %h %i %s %f\\n" 2>/dev/null ;;',
  "  esac",
  "done",
  "shift",
  '[ $# -eq 0 ] || find -P "$@" -maxdepth 0 -printf "S ' + STAT_PRINTF + '" 2>/dev/null',
  "exit 0",
].join("\n");

const REAL_SCRIPT = 'for p; do printf "%s\\n" "$(readlink -f -- "$p")"; done';

export interface PathFactsRequest {
  /** Directories to create first (mkdir -p). */
  make?: string[];
  /** Directories whose whole path is examined (see dirProblem). */
  dirs?: string[];
  /** Paths to lstat. */
  files?: string[];
  /** Small files whose first line is read (records). */
  lines?: string[];
  /** Directories whose entries are listed (inode, size, name). */
  list?: string[];
}

function failed(host: Host, what: string, r: { status: number; stderr: string }) {
  return new OnevzError(
    `examining ${what} on ${host.name} failed (exit ${r.status}): ${
      r.stderr.trim().split("\n").slice(-2).join(" / ") || "no message"
    }`,
  );
}

export async function pathFacts(host: Host, o: PathFactsRequest): Promise<PathFacts> {
  const dirs = o.dirs ?? [];
  const paths = [...new Set([...dirs.flatMap(ancestors), ...(o.files ?? [])])];
  const ops: [string, string[]][] = [["K", o.make ?? []], ["C", o.lines ?? []], [
    "N",
    o.list ?? [],
  ]];
  checkPaths([...ops.flatMap(([, ps]) => ps), ...paths]);
  const argv = ["sh", "-c", FACTS_SCRIPT, "sh"];
  for (const [op, ps] of ops) for (const p of ps) argv.push(`${op}:${p}`);
  argv.push("--", ...paths);
  const r = await host.run(argv, { check: false });
  const what = [...(o.make ?? []), ...dirs, ...(o.files ?? [])].join(", ");
  if (r.status !== 0) throw failed(host, what, r);
  const facts: PathFacts = {
    uid: -1,
    stats: new Map(),
    real: new Map(),
    lines: new Map(),
    entries: new Map(),
  };
  const out = r.stdout.split("\n");
  for (let i = 0; i < out.length; i++) {
    const line = out[i];
    if (line.startsWith("U ")) facts.uid = Number(line.slice(2));
    else if (line.startsWith("S ")) {
      const st = parseStatLine(line.slice(2));
      if (st) facts.stats.set(st.path, st);
    } else if (line.startsWith("C ") && i + 1 < out.length) {
      facts.lines.set(line.slice(2), out[++i]);
    } else if (line.startsWith("N ")) {
      const m = /^N (\/.*?) (\d+) (\d+) ([^/]+)$/.exec(line);
      if (!m) continue;
      const list = facts.entries.get(m[1]) ?? [];
      list.push({ ino: m[2], size: Number(m[3]), name: m[4] });
      facts.entries.set(m[1], list);
    }
  }
  if (!Number.isInteger(facts.uid) || facts.uid < 0) {
    throw new OnevzError(`cannot tell the login user on ${host.name} (id -u printed nothing)`);
  }
  // A link on the way: examine where it leads as well (rare, so a second command).
  const linked = dirs.filter((d) =>
    ancestors(d).some((p) => facts.stats.get(p)?.type === "symlink")
  );
  if (linked.length > 0) {
    const rr = await host.run(["sh", "-c", REAL_SCRIPT, "sh", ...linked], { check: false });
    if (rr.status !== 0) throw failed(host, linked.join(", "), rr);
    const reals = rr.stdout.split("\n");
    const more: string[] = [];
    linked.forEach((d, i) => {
      const real = reals[i];
      if (real && real.startsWith("/") && real !== d) {
        facts.real.set(d, real);
        more.push(...ancestors(real));
      }
    });
    for (const [p, st] of await statPaths(host, [...new Set(more)])) {
      if (st) facts.stats.set(p, st);
    }
  }
  return facts;
}

/**
 * Why files under `dir` could be replaced by someone other than root or the driver's user
 * (undefined when they cannot): every directory from / down to `dir`, and down its resolved
 * form, must exist, be a directory owned by root, the driver or the owner of /, and be
 * writable by nobody else —
 * except that a sticky directory above (like /tmp) is fine, since only an entry's owner may
 * rename or remove it there. Pure.
 */
export function dirProblem(dir: string, facts: PathFacts, what: string): string | undefined {
  return unsafeDir(dir, facts, what)?.message;
}

/** dirProblem, with the directory at fault and its owner (for the fix a report prints). */
export function unsafeDir(
  dir: string,
  facts: PathFacts,
  what: string,
): { path: string; uid?: number; writable: boolean; message: string } | undefined {
  // Whoever owns / controls every path anyway (in a user namespace, / shows as the overflow
  // uid): trusting that owner too adds no one.
  const trusted = new Set([0, facts.uid, facts.stats.get("/")?.uid ?? 0]);
  const chains = [ancestors(dir)];
  const real = facts.real.get(dir);
  if (real) chains.push(ancestors(real));
  for (const chain of chains) {
    for (const [i, p] of chain.entries()) {
      const last = i === chain.length - 1;
      const st = facts.stats.get(p);
      const at = `${p} (on the path of ${what})`;
      if (!st) {
        return { path: p, writable: false, message: `${at} does not exist or cannot be examined` };
      }
      if (st.type === "symlink" && chain !== chains[1] && real) continue; // checked resolved
      if (st.type !== "directory") {
        return { path: p, uid: st.uid, writable: false, message: `${at} is not a directory` };
      }
      if (!trusted.has(st.uid)) {
        return {
          path: p,
          uid: st.uid,
          writable: false,
          message:
            `${at} belongs to uid ${st.uid}: only root or the driver's user (uid ${facts.uid}) may own it`,
        };
      }
      const open = st.mode & 0o022;
      if (open && !(st.mode & 0o1000 && !last)) {
        const who = open & 0o002 ? "every user" : "its group";
        return {
          path: p,
          uid: st.uid,
          writable: true,
          message: `${at} is writable by ${who} (mode ${
            (st.mode & 0o7777).toString(8).padStart(4, "0")
          }): run chmod go-w ${p}`,
        };
      }
    }
  }
  return undefined;
}

/** Why a file must not be trusted (undefined: a regular file only its owner, root or the driver may write). */
export function fileProblem(
  st: FileStat,
  facts: { uid: number },
  what: string,
): string | undefined {
  if (st.type !== "file") return `${what} is ${describeType(st.type)}, not a regular file`;
  if (st.uid !== 0 && st.uid !== facts.uid) {
    return `${what} belongs to uid ${st.uid}, not to root or the driver's user (uid ${facts.uid})`;
  }
  if (st.mode & 0o022) {
    return `${what} is writable by other users (mode ${
      (st.mode & 0o7777).toString(8).padStart(4, "0")
    }): a local account could have changed it`;
  }
  return undefined;
}
