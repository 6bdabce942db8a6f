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
 * The state decision and the values stay poll.ts's: when the node is read, each running
 * container's answer is worked out by poll.ts's own functions from the same PollFiles a direct
 * read would give; poll_window.ts reads the answers back (main.ts answers from there first).
 */
import type { CommandContext } from "../../cli/context.ts";
import type { Host } from "../../host/host.ts";
import { writeFileAtomicSync } from "../../host/local.ts";
import { confPathFor, describeContainer } from "../../ovz/container.ts";
import { netifHostNames, parseVeinfo, parseVenetstat, parseVzConf } from "../../ovz/parsers.ts";
import { type PollFiles, runningReply } from "./poll_answer.ts";
import {
  entryOf,
  FORMAT,
  freshSnapshot,
  parseHeader,
  type Place,
  placeOf,
  readText,
  type SnapshotEntry,
  type SnapshotHeader,
  windowSetting,
} from "./poll_window.ts";

/** Window when neither ONEVZ_POLL_WINDOW nor oned's VM_POLLING_INTERVAL says otherwise, s. */
export const DEFAULT_WINDOW_SECONDS = 60;
/** A fetch that takes longer is abandoned (the poll then reads the node directly). */
const FETCH_TIMEOUT_MS = 60_000;
/** Begins and ends the node script's output (a cut-short read lacks the end). */
const NODE_MARK = "onevz-poll-snapshot 1";

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
echo "${NODE_MARK} kernel=$K"
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
echo "${NODE_MARK} end"
`;

/**
 * The answer for a container the host's snapshot lists as running, fetching the snapshot
 * first when there is no fresh one; undefined when the snapshot is off, cannot be had, or
 * does not list the container as running (poll then reads the node itself).
 */
export async function snapshotAnswer(
  ctx: CommandContext,
  ctid: number,
): Promise<SnapshotEntry | undefined> {
  const windowSeconds = windowSetting(ctx.env("ONEVZ_POLL_WINDOW"));
  if (windowSeconds === 0) return undefined;
  const place = placeOf(ctx.env, ctx.host.name);
  if (!place) return undefined;
  const text = freshSnapshot(place, windowSeconds) ??
    await fetchOnce(ctx, place, windowSeconds);
  return text === undefined ? undefined : entryOf(text, ctid);
}

/** Fetch under the host's lock, unless the poll that held it before us just did. */
async function fetchOnce(
  ctx: CommandContext,
  place: Place,
  windowSeconds: number | undefined,
): Promise<string | undefined> {
  let lock: Deno.FsFile;
  try {
    lock = Deno.openSync(place.lock, { read: true, write: true, create: true, mode: 0o600 });
  } catch {
    return undefined;
  }
  try {
    await lock.lock(true);
    const fresh = freshSnapshot(place, windowSeconds);
    if (fresh !== undefined) return fresh;
    const previous = readText(place.snapshot);
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
    };
    // The previous read of this node, even when stale: its vestat rows are the CPU samples.
    const earlier = parseHeader(previous)?.identity === place.identity ? previous! : "";
    const text = buildSnapshot(ctx.host, built, output, earlier);
    writeFileAtomicSync(place.snapshot, text, 0o600);
    try {
      // The mark exists from the first fetch on, so a fresh-check never meets a missing file.
      Deno.writeTextFileSync(place.changed, "0", { createNew: true, mode: 0o600 });
    } catch { /* already there */ }
    return text;
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
  if (!first || !lines.includes(`${NODE_MARK} end`)) return undefined; // cut short
  const root = sysroot.replace(/\/+$/, "");
  const files = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of lines.slice(1)) {
    if (line === `${NODE_MARK} end`) break;
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

/**
 * The snapshot file (poll_window.ts): a header line, then one `<ctid> <json>` line per running
 * container, holding poll's answer for it as poll.ts works it out from these tables. A
 * container whose answer cannot be worked out (its config unreadable as one) is left out: its
 * poll then reads the node and says why.
 */
function buildSnapshot(
  host: Host,
  header: SnapshotHeader,
  t: NodeTables,
  previous: string,
): string {
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
    const files: PollFiles = {
      conf,
      // Listed by the kernel as running: an observable OpenVZ kernel.
      kernel: true,
      running: true,
      beancounters: bc.get(ctid) ?? "",
      ownBeancounters: false,
      vswap: t.vswap,
      vestat: vestat.get(ctid) ?? "",
      venetstat: venetSums(venetstat.get(ctid), ctid),
      netDev: veths.map((v) => netDev.get(v)).filter((l) => l !== undefined).join("\n"),
    };
    let answer;
    try {
      const ct = describeContainer(ctid, confPathFor(host, ctid), conf);
      // After a restart its uptime went back: the CPU figure is then the average since start.
      answer = runningReply(ct, files, before.get(ctid) ?? "");
    } catch {
      continue;
    }
    const entry: SnapshotEntry = { ...answer, vestat: files.vestat ?? "" };
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
      place = placeOf(ctx.env, name);
    } catch {
      continue;
    }
    if (!place) continue;
    try {
      writeFileAtomicSync(place.changed, String(Date.now()), 0o600);
    } catch {
      // No mark could be written: then no snapshot may stay either.
      try {
        Deno.removeSync(place.snapshot);
      } catch { /* none */ }
    }
  }
}
