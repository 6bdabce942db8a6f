/**
 * The per-container lock: a directory R/.onevz.lock holding an `owner` record, on the node,
 * made and removed with fixed shell scripts so that it works the same locally and over ssh
 * (agentless mode manipulates it from the front-end).
 *
 * Every step is one rename(2), which is atomic:
 *  - take: a candidate directory R/.onevz.lock.new-<nonce> with the owner record already in it
 *    is renamed to R/.onevz.lock (`mv -T` fails while another lock exists), so a lock never
 *    exists without its owner;
 *  - break a stale lock: rename R/.onevz.lock to R/.onevz.lock.broken-<its nonce>. That name
 *    is a tombstone kept until R goes: a second process that judged the same lock stale finds
 *    the tombstone there, its rename fails, and it can never move the lock that replaced the
 *    stale one. After the rename the tombstone's owner is checked to be the one judged;
 *  - release: rename the lock to R/.onevz.lock.released-<nonce>, check that it is ours and
 *    remove it (a lock that is not ours is put back).
 *
 * Stale means: the owner ran on this machine in this boot (same boot id) and its pid is gone
 * or now belongs to another process (start time in /proc/<pid>/stat differs); or it ran on
 * this machine before the last reboot (same host name, other boot id); or, for an owner this
 * machine cannot check, it is older than `staleMinutes`.
 */
import { OnevzError } from "../cli/errors.ts";
import type { Host } from "../host/host.ts";

export const LOCK_NAME = ".onevz.lock";

export interface LockOptions {
  /** Give up waiting for a busy lock after this long (default 60 s). */
  waitMs?: number;
  /** Consider a lock of an owner this machine cannot check abandoned after this (default 60). */
  staleMinutes?: number;
  /** Poll interval while waiting (default 500 ms). */
  pollMs?: number;
  /** Told when a stale lock was broken (one line, for stderr). */
  onBroken?: (message: string) => void;
}

interface LockOwner {
  pid: number;
  host: string;
  action: string;
  /** ms since the epoch when the lock was taken. */
  since: number;
  /** Random per lock; names the tombstone of this lock when it is broken. */
  nonce?: string;
  /** /proc/sys/kernel/random/boot_id of the owner's machine. */
  bootId?: string;
  /** Field 22 of the owner's /proc/<pid>/stat (start time in clock ticks since boot). */
  startTicks?: string;
}

export type Unlock = () => Promise<void>;

// Fixed scripts; every value arrives as a positional parameter.
const TAKE = 'c=$1; l=$2; mkdir -- "$c" || exit 3; ' +
  'if ! cat > "$c/owner"; then rm -rf -- "$c"; exit 3; fi; ' +
  'if mv -T -- "$c" "$l" 2>/dev/null; then exit 0; fi; ' +
  'rm -rf -- "$c"; cat -- "$l/owner" 2>/dev/null; exit 1';
const BREAK = 'l=$1; t=$2; mv -T -- "$l" "$t" 2>/dev/null || exit 1; ' +
  ': > "$t/.broken"; cat -- "$t/owner" 2>/dev/null; exit 0';
const PUT_BACK = 't=$1; l=$2; rm -f -- "$t/.broken"; mv -T -- "$t" "$l"';
const RELEASE = 'l=$1; r=$2; n=$3; mv -T -- "$l" "$r" 2>/dev/null || exit 0; ' +
  'if grep -qF -- "$n" "$r/owner" 2>/dev/null; then rm -rf -- "$r"; exit 0; fi; ' +
  'mv -T -- "$r" "$l" 2>/dev/null; exit 4';

function readLocal(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

/** Start time (clock ticks since boot) and state of a local process, from /proc/<pid>/stat. */
function processStart(pid: number | "self"): { ticks: string; zombie: boolean } | undefined {
  const stat = readLocal(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
  if (fields.length < 20) return undefined;
  return { ticks: fields[19], zombie: fields[0] === "Z" || fields[0] === "X" };
}

const bootId = (): string | undefined =>
  readLocal("/proc/sys/kernel/random/boot_id")?.trim() || undefined;

/** The record of this process as a lock owner. */
function ownerRecord(action: string): LockOwner {
  return {
    pid: Deno.pid,
    host: Deno.hostname(),
    action,
    since: Date.now(),
    nonce: crypto.randomUUID().replaceAll("-", ""),
    bootId: bootId(),
    startTicks: processStart("self")?.ticks,
  };
}

function parseOwner(text: string | null | undefined): LockOwner | undefined {
  if (!text) return undefined;
  try {
    const o = JSON.parse(text) as LockOwner;
    return Number.isInteger(o.pid) && typeof o.host === "string" ? o : undefined;
  } catch {
    return undefined;
  }
}

/** Why the owner's lock is abandoned, or undefined when it may still be held. */
function staleReason(
  owner: LockOwner,
  staleMinutes: number,
  now = Date.now(),
): string | undefined {
  const myBoot = bootId();
  if (owner.bootId && myBoot && owner.bootId === myBoot) {
    const p = processStart(owner.pid);
    if (!p || p.zombie) return `its process ${owner.pid} is gone`;
    if (owner.startTicks !== undefined && p.ticks !== owner.startTicks) {
      return `pid ${owner.pid} now belongs to another process`;
    }
    return undefined;
  }
  if (owner.host === Deno.hostname()) {
    if (owner.bootId && myBoot) return `${owner.host} has rebooted since`;
    // An owner from before boot ids were recorded: the pid, and the boot time.
    const p = processStart(owner.pid);
    if (!p || p.zombie) return `its process ${owner.pid} is gone`;
    const btime = Number(/^btime (\d+)$/m.exec(readLocal("/proc/stat") ?? "")?.[1]);
    if (btime && owner.since < btime * 1000) return `${owner.host} has rebooted since`;
    return undefined;
  }
  return now - owner.since > staleMinutes * 60_000
    ? `it is older than ${staleMinutes} minutes`
    : undefined;
}

function describeOwner(o: LockOwner | undefined): string {
  if (!o) return "owner unknown";
  return `${o.action} by pid ${o.pid} on ${o.host} since ${new Date(o.since).toISOString()}`;
}

const sh = (host: Host, script: string, args: string[], stdin?: string) =>
  host.run(["sh", "-c", script, "onevz-lock", ...args], { check: false, stdin });

/** Seconds since the epoch of the lock directory's last change (owner-less locks). */
async function lockAgeMinutes(host: Host, dir: string): Promise<number | undefined> {
  const r = await host.run(["stat", "-c", "%Y", "--", dir], { check: false });
  const s = Number(r.stdout.trim());
  return r.status === 0 && Number.isFinite(s) ? (Date.now() - s * 1000) / 60_000 : undefined;
}

/**
 * Move a stale lock out of the way (see the module comment). Returns a note for the caller,
 * or undefined when somebody else broke or replaced it first.
 */
async function breakStale(
  host: Host,
  dir: string,
  owner: LockOwner | undefined,
  why: string,
): Promise<string | undefined> {
  const id = owner?.nonce ?? (owner ? `legacy-${owner.pid}-${owner.since}` : undefined);
  const tomb = `${dir}.broken-${id ?? crypto.randomUUID().slice(0, 8)}`;
  const r = await sh(host, BREAK, [dir, tomb]);
  if (r.status !== 0) return undefined;
  const moved = parseOwner(r.stdout);
  const same = owner === undefined ? moved === undefined : moved !== undefined &&
    moved.pid === owner.pid && moved.since === owner.since && moved.nonce === owner.nonce;
  if (!same) {
    // The lock judged stale was replaced meanwhile: give the new one back untouched.
    await sh(host, PUT_BACK, [tomb, dir]);
    return undefined;
  }
  return `broke the lock of an interrupted ${describeOwner(owner)} (${why})`;
}

/** Take the container's lock (R/.onevz.lock); returns the function that releases it. */
export async function lockContainer(
  host: Host,
  imagesDir: string,
  action: string,
  opts: LockOptions = {},
): Promise<Unlock> {
  const dir = `${imagesDir}/${LOCK_NAME}`;
  // Without an images directory there are no driver files to protect (vzctl has its own lock).
  if (!(await host.isDirectory(imagesDir))) return () => Promise.resolve();
  const me = ownerRecord(action);
  const record = JSON.stringify(me) + "\n";
  const candidate = `${dir}.new-${me.nonce}`;
  const deadline = Date.now() + (opts.waitMs ?? 60_000);
  const staleMinutes = opts.staleMinutes ?? 60;
  for (;;) {
    const r = await sh(host, TAKE, [candidate, dir], record);
    if (r.status === 0) break;
    if (r.status !== 1 || !(await host.isDirectory(imagesDir))) {
      throw new OnevzError(
        `cannot lock ${imagesDir}: ${r.stderr.trim() || "no such directory"}`,
      );
    }
    const owner = parseOwner(r.stdout);
    let why = owner ? staleReason(owner, staleMinutes) : undefined;
    if (!owner && (await host.isDirectory(dir))) {
      const age = await lockAgeMinutes(host, dir);
      if (age !== undefined && age > staleMinutes) why = `it has no owner record`;
    }
    if (why) {
      const broken = await breakStale(host, dir, owner, why);
      if (broken) opts.onBroken?.(broken);
      continue;
    }
    if (Date.now() >= deadline) {
      throw new OnevzError(
        `container in ${imagesDir} is busy: ${describeOwner(owner)} holds ${dir}`,
      );
    }
    await new Promise((res) => setTimeout(res, opts.pollMs ?? 500));
  }
  return async () => {
    await sh(host, RELEASE, [dir, `${dir}.released-${me.nonce}`, me.nonce!]).catch(() => {});
  };
}

/** Run `fn` holding the container's lock. */
export async function withContainerLock<T>(
  host: Host,
  imagesDir: string,
  action: string,
  fn: () => Promise<T>,
  opts: LockOptions = {},
): Promise<T> {
  const unlock = await lockContainer(host, imagesDir, action, opts);
  try {
    return await fn();
  } finally {
    await unlock();
  }
}
