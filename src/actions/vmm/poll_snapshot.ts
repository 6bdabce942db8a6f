/**
 * Agentless poll snapshot (README §13): one read of a node per polling window instead of
 * several ssh round trips per VM.
 *
 * oned polls every VM of a host in turn. The first agentless poll of a host fetches, in one
 * ssh round trip, what every running container's poll needs (the kernel's tables and the
 * containers' configs, cut down on the node to the rows poll reads) and keeps it on the
 * front-end, in the 0700 per-user directory of the ssh control sockets. Later polls of that
 * host answer from it without ssh until the window ends:
 *  - the window is ONEVZ_POLL_WINDOW seconds, never longer than oned's VM_POLLING_INTERVAL
 *    (from oned's configuration dump) when that is known; default that interval, else 60 s;
 *    ONEVZ_POLL_WINDOW=0 turns the snapshot off (every poll reads the node itself);
 *  - every other VMM action onevz runs on a host marks the host's snapshot stale before and
 *    after it runs (markHostsChanged, from main.ts), so a poll never answers from a read
 *    older than the last action;
 *  - the snapshot only ever answers for a container the kernel listed as running: anything
 *    else (not in the snapshot, stopped, gone) is read from the node directly, so `d` always
 *    comes from a direct check;
 *  - one fetch per host at a time (flock on a lock file): polls arriving meanwhile wait and
 *    use its result; the snapshot file is written under a temporary name and renamed, so a
 *    reader sees a whole snapshot or none;
 *  - CPU: each container's vestat row from the host's previous read is kept in the snapshot,
 *    so USEDCPU is the use between the host's last two reads, with no per-VM sample written
 *    over ssh.
 * The state decision and the values stay poll.ts's: this module only hands it the same
 * PollFiles a direct read would give, for one running container.
 */
import type { CommandContext } from "../../cli/context.ts";
import type { Host } from "../../host/host.ts";
import { sharedControlDir } from "../../host/ssh.ts";
import { netifHostNames, parseVeinfo, parseVenetstat, parseVzConf } from "../../ovz/parsers.ts";
import type { PollFiles } from "./poll.ts";

/** Window when neither ONEVZ_POLL_WINDOW nor oned's VM_POLLING_INTERVAL says otherwise, s. */
export const DEFAULT_WINDOW_SECONDS = 60;
/** A fetch that takes longer is abandoned (the poll then reads the node directly). */
const FETCH_TIMEOUT_MS = 60_000;
const FORMAT = "onevz-poll-snapshot 1";

/**
 * Runs on the node (POSIX sh; the only values passed in are positional: the sysroot). One
 * privileged `tail` of the kernel's tables and every CTID.conf, cut down by awk, running as
 * the login user, to what poll reads: CTID.conf's VE_PRIVATE, VE_ROOT, NETIF and IP_ADDRESS
 * lines, the beancounter rows poll reads (physpages, privvmpages) with each block's id row;
 * blanks squeezed.
 */
const NODE_SCRIPT = `P=$1
if [ "$(id -u)" = 0 ]; then S=; else S="sudo -n"; fi
if [ -e "$P/proc/vz/vswap" ] || [ -L "$P/proc/vz/vswap" ]; then K=vswap; else K=ubc; fi
B=$P/proc/bc/resources
[ -e "$B" ] || B=$P/proc/user_beancounters
echo "${FORMAT} kernel=$K"
$S tail -v -n +1 -- "$P/proc/vz/veinfo" "$P/proc/vz/vestat" "$P/proc/vz/venetstat" \\
  "$P/proc/net/dev" "$B" "$P"/etc/vz/conf/[0-9]*.conf | awk '
/^==> .* <==$/ { f = $0; print; next }
f ~ /\\/etc\\/vz\\/conf\\/[0-9]+\\.conf <==$/ {
  if ($0 ~ /^(VE_PRIVATE|VE_ROOT|NETIF|IP_ADDRESS)=/) print
  next
}
f ~ /(\\/bc\\/resources|\\/user_beancounters) <==$/ {
  if ($0 ~ /^[ \\t]*[0-9]+:/ || $0 ~ /^[ \\t]*(physpages|privvmpages)[ \\t]/) { gsub(/[ \\t]+/, " "); print }
  next
}
NF > 0 { gsub(/[ \\t]+/, " "); print }'
echo "${FORMAT} end"
`;

/** One running container's part of a snapshot: poll's PollFiles, cut to its own rows. */
interface SnapshotEntry {
  conf: string;
  beancounters: string;
  vestat: string;
  venetstat: string;
  netDev: string;
  /** Its vestat row at the host's previous read ("" when that read did not list it). */
  previousVestat: string;
}

interface SnapshotHeader {
  format: string;
  /** Which node this is (name, ssh config, sysroot, ssh program): see snapshotKey. */
  identity: string;
  /** When the read started (ms since the epoch): anything changed before it is in it. */
  readAt: number;
  expiresAt: number;
  vswap: boolean;
}

interface Place {
  identity: string;
  snapshot: string;
  lock: string;
  /** Holds the time of the last action on the host: a snapshot read before it is stale. */
  changed: string;
}

/** The window in seconds (0: off), from ONEVZ_POLL_WINDOW; undefined when unset. */
export function windowSetting(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  const n = Number(value);
  return Number.isFinite(n) && n >= 0 ? Math.min(n, 86400) : undefined;
}

/** What identifies the node behind a host name: another ssh config or sysroot is another node. */
function placeOf(ctx: CommandContext, hostName: string): Place | undefined {
  const dir = sharedControlDir();
  if (!dir) return undefined; // no private directory: no snapshot (never a shared one)
  const identity = JSON.stringify([
    hostName,
    ctx.env("ONEVZ_SSH_CONFIG") ?? "",
    ctx.env("ONEVZ_NODE_SYSROOT") ?? "",
    ctx.env("ONEVZ_SSH") ?? "",
  ]);
  const safe = hostName.replace(/[^A-Za-z0-9_.-]/g, (c) => `%${c.charCodeAt(0).toString(16)}`);
  const base = `${dir}/poll-${safe}-${fnv1a(identity)}`;
  return {
    identity,
    snapshot: `${base}.snapshot`,
    lock: `${base}.lock`,
    changed: `${base}.changed`,
  };
}

/** 32-bit FNV-1a, hex: a short, stable file-name part (the full identity is checked inside). */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

function readText(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
}

function parseHeader(text: string | null): SnapshotHeader | undefined {
  if (text === null) return undefined;
  const eol = text.indexOf("\n");
  try {
    const h = JSON.parse(eol < 0 ? text : text.slice(0, eol)) as SnapshotHeader;
    return h.format === FORMAT ? h : undefined;
  } catch {
    return undefined;
  }
}

/** The snapshot answers now: same node, inside its window, read after the last action. */
function isFresh(
  h: SnapshotHeader | undefined,
  place: Place,
  windowSeconds: number | undefined,
): boolean {
  if (!h || h.identity !== place.identity) return false;
  const now = Date.now();
  if (now < h.readAt || now >= h.expiresAt) return false;
  if (windowSeconds !== undefined && now >= h.readAt + windowSeconds * 1000) return false;
  const changed = Number(readText(place.changed) ?? "0");
  return !(changed >= h.readAt); // also stale when the mark cannot be read as a time
}

function entryOf(text: string, ctid: number): SnapshotEntry | undefined {
  const key = `\n${ctid} `;
  const at = text.indexOf(key);
  if (at < 0) return undefined;
  const end = text.indexOf("\n", at + key.length);
  try {
    return JSON.parse(text.slice(at + key.length, end < 0 ? text.length : end));
  } catch {
    return undefined;
  }
}

function filesOf(entry: SnapshotEntry, vswap: boolean): PollFiles {
  return {
    conf: entry.conf,
    // The snapshot lists only containers the kernel shows running: an observable OpenVZ kernel.
    kernel: true,
    running: true,
    beancounters: entry.beancounters,
    ownBeancounters: false,
    vswap,
    vestat: entry.vestat,
    venetstat: entry.venetstat,
    netDev: entry.netDev,
    previousVestat: entry.previousVestat,
  };
}

/**
 * PollFiles for a container the host's snapshot lists as running, fetching the snapshot first
 * when there is no fresh one; undefined when the snapshot is off, cannot be had, or does not
 * list the container as running (poll then reads the node itself).
 */
export async function snapshotPollFiles(
  ctx: CommandContext,
  ctid: number,
): Promise<PollFiles | undefined> {
  const windowSeconds = windowSetting(ctx.env("ONEVZ_POLL_WINDOW"));
  if (windowSeconds === 0) return undefined;
  const place = placeOf(ctx, ctx.host.name);
  if (!place) return undefined;
  let text = readText(place.snapshot);
  let header = parseHeader(text);
  if (!isFresh(header, place, windowSeconds)) {
    const fetched = await fetchOnce(ctx, place, windowSeconds);
    if (!fetched) return undefined;
    [text, header] = fetched;
  }
  const entry = entryOf(text!, ctid);
  return entry ? filesOf(entry, header!.vswap) : undefined;
}

/** Fetch under the host's lock, unless the poll that held it before us just did. */
async function fetchOnce(
  ctx: CommandContext,
  place: Place,
  windowSeconds: number | undefined,
): Promise<[string, SnapshotHeader] | undefined> {
  let lock: Deno.FsFile;
  try {
    lock = Deno.openSync(place.lock, { read: true, write: true, create: true, mode: 0o600 });
  } catch {
    return undefined;
  }
  try {
    await lock.lock(true);
    const previous = readText(place.snapshot);
    const header = parseHeader(previous);
    if (isFresh(header, place, windowSeconds)) return [previous!, header!];
    const readAt = Date.now();
    const output = await readNode(ctx.host);
    if (output === undefined) return undefined;
    const interval = pollingInterval(ctx);
    const window = Math.min(
      windowSeconds ?? interval ?? DEFAULT_WINDOW_SECONDS,
      interval ?? Infinity,
    );
    const built: SnapshotHeader = {
      format: FORMAT,
      identity: place.identity,
      readAt,
      expiresAt: readAt + window * 1000,
      vswap: output.vswap,
    };
    // The previous read of this node, even when stale: its vestat rows are the CPU samples.
    const earlier = header?.identity === place.identity ? previous! : "";
    const text = buildSnapshot(built, output, earlier);
    writePrivate(place.snapshot, text);
    try {
      // The mark exists from the first fetch on, so a fresh-check never meets a missing file.
      Deno.writeTextFileSync(place.changed, "0", { createNew: true, mode: 0o600 });
    } catch { /* already there */ }
    return [text, built];
  } catch {
    return undefined;
  } finally {
    lock.close(); // releases the lock
  }
}

/** VM_POLLING_INTERVAL from oned's configuration dump, when it can be read. */
function pollingInterval(ctx: CommandContext): number | undefined {
  const loc = ctx.env("ONE_LOCATION");
  const text = readText(loc ? `${loc}/var/config` : "/var/lib/one/config");
  const m = text === null ? null : /^\s*VM_POLLING_INTERVAL\s*=\s*"?(\d+)"?\s*$/m.exec(text);
  return m && Number(m[1]) > 0 ? Number(m[1]) : undefined;
}

function writePrivate(path: string, text: string) {
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    Deno.writeTextFileSync(tmp, text, { mode: 0o600 });
    Deno.renameSync(tmp, path);
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch { /* never written */ }
    throw e;
  }
}

// ------------------------------------------------------------------------ reading the node

interface NodeTables {
  vswap: boolean;
  veinfo: string;
  vestat: string;
  venetstat: string;
  netDev: string;
  beancounters: string;
  /** CTID → its CTID.conf lines poll reads. */
  confs: Map<number, string>;
}

/** One ssh round trip; undefined when the read was refused, cut short or not understood. */
async function readNode(host: Host): Promise<NodeTables | undefined> {
  const r = await host.run(["sh", "-c", NODE_SCRIPT, "onevz-poll-snapshot", host.sysroot], {
    check: false,
    timeoutMs: FETCH_TIMEOUT_MS,
  });
  // Only files that are not there may be missing (no venetstat module, no container yet).
  const complaint = r.stderr.split("\n").some((l) =>
    l.trim() !== "" && !/No such file or directory/.test(l)
  );
  if (complaint) return undefined;
  return parseNodeOutput(r.stdout, host.sysroot);
}

/** Split the node script's output into its tables. Exported for its unit test. */
export function parseNodeOutput(out: string, sysroot: string): NodeTables | undefined {
  const lines = out.split("\n");
  const first = /^onevz-poll-snapshot 1 kernel=(vswap|ubc)$/.exec(lines[0] ?? "");
  if (!first || !lines.includes(`${FORMAT} end`)) return undefined; // cut short
  const root = sysroot.replace(/\/+$/, "");
  const files = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of lines.slice(1)) {
    if (line === `${FORMAT} end`) break;
    const h = /^==> (.*) <==$/.exec(line);
    if (h) {
      files.set(h[1], current = []);
    } else if (current) {
      current.push(line);
    }
  }
  const text = (path: string) => (files.get(`${root}${path}`) ?? []).join("\n");
  const confs = new Map<number, string>();
  const confPath = /\/etc\/vz\/conf\/(\d+)\.conf$/;
  for (const [path, body] of files) {
    const m = confPath.exec(path);
    if (m && path === `${root}/etc/vz/conf/${m[1]}.conf`) confs.set(Number(m[1]), body.join("\n"));
  }
  return {
    vswap: first[1] === "vswap",
    veinfo: text("/proc/vz/veinfo"),
    vestat: text("/proc/vz/vestat"),
    venetstat: text("/proc/vz/venetstat"),
    netDev: text("/proc/net/dev"),
    beancounters: text("/proc/bc/resources") || text("/proc/user_beancounters"),
    confs,
  };
}

/** Lines of a table keyed by the container id that starts them. */
function rowsById(text: string): Map<number, string> {
  const rows = new Map<number, string>();
  for (const line of text.split("\n")) {
    const m = /^\s*(\d+)\s/.exec(line);
    if (m) rows.set(Number(m[1]), line);
  }
  return rows;
}

/** Beancounter blocks keyed by id (`<id>:` row and the rows up to the next one). */
function blocksById(text: string): Map<number, string> {
  const blocks = new Map<number, string>();
  let id: number | undefined;
  let rows: string[] = [];
  const flush = () => id !== undefined && blocks.set(id, rows.join("\n"));
  for (const line of text.split("\n")) {
    const m = /^\s*(\d+):/.exec(line);
    if (m) {
      flush();
      id = Number(m[1]);
      rows = [];
    }
    if (id !== undefined) rows.push(line);
  }
  flush();
  return blocks;
}

/** Each container's vestat row in a previous snapshot (one pass, not one search per CT). */
function previousRows(previous: string): Map<number, string> {
  const rows = new Map<number, string>();
  for (const line of previous.split("\n").slice(1)) {
    const sp = line.indexOf(" ");
    if (sp <= 0) continue;
    try {
      const e = JSON.parse(line.slice(sp + 1)) as SnapshotEntry;
      if (typeof e.vestat === "string") rows.set(Number(line.slice(0, sp)), e.vestat);
    } catch { /* not an entry */ }
  }
  return rows;
}

/** A venetstat row as one class holding the sums of its 16 (what poll adds up), or "". */
function venetSums(row: string | undefined, ctid: number): string {
  const c = row === undefined ? undefined : parseVenetstat(row).get(ctid);
  return c ? `${ctid} ${c.rxBytes}/${c.txBytes}` : "";
}

/** The snapshot file: a header line, then one `<ctid> <json>` line per running container. */
function buildSnapshot(header: SnapshotHeader, t: NodeTables, previous: string): string {
  const vestat = rowsById(t.vestat);
  const venetstat = rowsById(t.venetstat);
  const bc = blocksById(t.beancounters);
  const netDev = new Map<string, string>();
  for (const line of t.netDev.split("\n")) {
    const m = /^\s*([^:\s]+):/.exec(line);
    if (m) netDev.set(m[1], line);
  }
  const before = previousRows(previous);
  const out = [JSON.stringify(header)];
  for (const ctid of parseVeinfo(t.veinfo).keys()) {
    const conf = t.confs.get(ctid);
    if (ctid === 0 || conf === undefined) continue;
    const veths = netifHostNames(parseVzConf(conf).NETIF);
    const entry: SnapshotEntry = {
      conf,
      beancounters: bc.get(ctid) ?? "",
      vestat: vestat.get(ctid) ?? "",
      venetstat: venetSums(venetstat.get(ctid), ctid),
      netDev: veths.map((v) => netDev.get(v)).filter((l) => l !== undefined).join("\n"),
      // After a restart its uptime went back: cpuPercent then reports the average since start.
      previousVestat: before.get(ctid) ?? "",
    };
    out.push(`${ctid} ${JSON.stringify(entry)}`);
  }
  return out.join("\n") + "\n";
}

// ------------------------------------------------------------------------ after an action

/**
 * Mark the snapshots of the hosts a VMM action touches as stale (the host, and a migration's
 * destination). Called before and after the action, so that neither a poll during it nor a
 * read that started before it ended can answer afterwards.
 */
export function markHostsChanged(ctx: CommandContext, action: string): void {
  const hosts = [ctx.host.name];
  if (action === "migrate" && ctx.args[1]) hosts.push(ctx.args[1]);
  for (const name of hosts) {
    let place: Place | undefined;
    try {
      place = placeOf(ctx, name);
    } catch {
      continue;
    }
    if (!place) continue;
    try {
      writePrivate(place.changed, String(Date.now()));
    } catch {
      // No mark could be written: then no snapshot may stay either.
      try {
        Deno.removeSync(place.snapshot);
      } catch { /* none */ }
    }
  }
}
