/**
 * The agentless poll snapshot's file and its read side (README §13; the fetch is
 * poll_snapshot.ts). Where a host's snapshot lives, whether it still answers, and a running
 * container's answer in it. The answer was worked out by poll.ts when the node was read, so
 * reading it needs none of poll's modules: main.ts answers a poll from here before it builds
 * a host, which is most of what an agentless poll costs (one start per VM per interval).
 *
 * The file: a header line (JSON), then one `<ctid> <json>` line per container the kernel
 * listed as running. It is written under a temporary name and renamed, so a reader sees a
 * whole snapshot or none.
 */
import { isValidHostName, sharedControlDir } from "../../host/control_dir.ts";
import { parseCtid } from "../../one/ctid.ts";

export const FORMAT = "onevz-poll-snapshot 2";

/** One running container's part of a snapshot. */
export interface SnapshotEntry {
  /** poll's stdout line for it (`STATE=a USEDMEMORY=…`), without the newline. */
  reply: string;
  /** poll's stderr notes for it (values clamped for oned), each a whole line. */
  notes: string[];
  /** Its vestat row at this read: the CPU sample the next read measures from. */
  vestat: string;
}

export interface SnapshotHeader {
  format: string;
  /** Which node this is (name, ssh config, sysroot, ssh program): see placeOf. */
  identity: string;
  /** When the read started (ms since the epoch): anything changed before it is in it. */
  readAt: number;
  expiresAt: number;
}

export interface Place {
  identity: string;
  snapshot: string;
  lock: string;
  /** Holds the time of the last action on the host: a snapshot read before it is stale. */
  changed: string;
}

type Env = (name: string) => string | undefined;

/** The window in seconds (0: off), from ONEVZ_POLL_WINDOW; undefined when unset. */
export function windowSetting(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  const n = Number(value);
  return Number.isFinite(n) && n >= 0 ? Math.min(n, 86400) : undefined;
}

/** What identifies the node behind a host name: another ssh config or sysroot is another node. */
export function placeOf(env: Env, hostName: string): Place | undefined {
  const dir = sharedControlDir();
  if (!dir) return undefined; // no private directory: no snapshot (never a shared one)
  const identity = JSON.stringify([
    hostName,
    env("ONEVZ_SSH_CONFIG") ?? "",
    env("ONEVZ_NODE_SYSROOT") ?? "",
    env("ONEVZ_SSH") ?? "",
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

export function readText(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
}

export function parseHeader(text: string | null): SnapshotHeader | undefined {
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
export function isFresh(
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

/** The snapshot's text when it answers now, else undefined. */
export function freshSnapshot(place: Place, windowSeconds: number | undefined) {
  const text = readText(place.snapshot);
  return isFresh(parseHeader(text), place, windowSeconds) ? text! : undefined;
}

/** A running container's entry in a snapshot's text. */
export function entryOf(text: string, ctid: number): SnapshotEntry | undefined {
  const key = `\n${ctid} `;
  const at = text.indexOf(key);
  if (at < 0) return undefined;
  const end = text.indexOf("\n", at + key.length);
  try {
    const e = JSON.parse(text.slice(at + key.length, end < 0 ? text.length : end));
    return typeof e?.reply === "string" && Array.isArray(e.notes) ? e : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The answer for a container the host's fresh snapshot lists as running; undefined for
 * anything else (off, no fresh snapshot, not listed): poll then does the whole work, which
 * reads the node for whatever the snapshot cannot say.
 */
export function answerInWindow(
  env: Env,
  hostName: string,
  ctid: number,
): SnapshotEntry | undefined {
  const windowSeconds = windowSetting(env("ONEVZ_POLL_WINDOW"));
  if (windowSeconds === 0) return undefined;
  const place = placeOf(env, hostName);
  const text = place && freshSnapshot(place, windowSeconds);
  return text ? entryOf(text, ctid) : undefined;
}

/**
 * The same for an agentless poll's arguments as one_vmm_sh passes them (`<host> <deploy_id>`),
 * checked as poll checks them; undefined for anything else, which poll then handles itself.
 */
export function answerForArgs(env: Env, args: readonly string[]): SnapshotEntry | undefined {
  if (env("ONEVZ_MODE") !== "agentless" || args.length !== 2) return undefined;
  const [hostName, deployId] = args;
  const ctid = parseCtid(deployId);
  if (!isValidHostName(hostName) || ctid === undefined) return undefined;
  return answerInWindow(env, hostName, ctid);
}
