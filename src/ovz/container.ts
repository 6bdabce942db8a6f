/**
 * Locating a container on a node and serialising actions on it.
 *
 * Everything the driver knows about a deployed container hangs off its vzctl config:
 * `/etc/vz/conf/<CTID>.conf` → VE_PRIVATE = R/private → R = $VM_DIR/<vid>/images (the VM's
 * images directory) → the latest R/deployment.<seq>. Nothing else is stored on the node
 * except the files listed in docs (records beside the checkpoint, R/ctid.conf, the poll sample
 * and the lock directory).
 */
import { OnevzError } from "../cli/errors.ts";
import type { Host } from "../host/host.ts";
import { dirname } from "../host/posix_path.ts";
import { expandVeid, parseVzConf } from "./parsers.ts";

export interface ContainerInfo {
  ctid: number;
  /** Config path as read (inside the host's sysroot). */
  confPath: string;
  /** Raw text of the config (copied beside the checkpoint by save). */
  confText: string;
  conf: Record<string, string>;
  /** VE_PRIVATE with $VEID expanded. */
  privateDir: string;
  /** VE_ROOT with $VEID expanded ("" when unset). */
  rootDir: string;
  /** R = dirname(VE_PRIVATE): the VM's images directory. */
  imagesDir: string;
  /** VM id taken from R (`…/<vid>/images`), when R has that shape. */
  vmid?: number;
}

export function confPathFor(host: Host, ctid: number): string {
  return host.sysPath(`/etc/vz/conf/${ctid}.conf`);
}

/** `…/<vid>/images[/]` → vid. */
export function vmidFromImagesDir(dir: string): number | undefined {
  const m = /\/(\d+)\/+images\/*$/.exec(dir);
  return m ? Number(m[1]) : undefined;
}

/** Build the container description from a config text (no I/O). */
export function describeContainer(
  ctid: number,
  confPath: string,
  confText: string,
): ContainerInfo {
  const conf = parseVzConf(confText);
  const privateDir = expandVeid(conf.VE_PRIVATE ?? "", ctid).replace(/\/+$/, "");
  if (!privateDir.startsWith("/")) {
    throw new OnevzError(`${confPath}: VE_PRIVATE is not an absolute path`);
  }
  const imagesDir = dirname(privateDir);
  return {
    ctid,
    confPath,
    confText,
    conf,
    privateDir,
    rootDir: expandVeid(conf.VE_ROOT ?? "", ctid).replace(/\/+$/, ""),
    imagesDir,
    vmid: vmidFromImagesDir(imagesDir),
  };
}

/** The container's description, or null when its config does not exist (gone, never made). */
export async function findContainer(host: Host, ctid: number): Promise<ContainerInfo | null> {
  const confPath = confPathFor(host, ctid);
  const text = await host.readFile(confPath, { privileged: true });
  if (text === null) return null;
  return describeContainer(ctid, confPath, text);
}

/** Like findContainer, but a missing config is an error naming the CTID. */
export async function requireContainer(host: Host, ctid: number): Promise<ContainerInfo> {
  const ct = await findContainer(host, ctid);
  if (!ct) {
    throw new OnevzError(`container ${ctid} does not exist on ${host.name} (no ${ctid}.conf)`);
  }
  return ct;
}

/** Names in a directory (empty when it does not exist). */
export async function listDir(host: Host, dir: string): Promise<string[]> {
  return (await host.listDir(dir)) ?? [];
}

/** The latest `R/deployment.<seq>` (highest seq), or null when there is none. */
export async function latestDeployment(host: Host, imagesDir: string): Promise<string | null> {
  let best = -1;
  for (const name of await listDir(host, imagesDir)) {
    const m = /^deployment\.(\d+)$/.exec(name);
    if (m && Number(m[1]) > best) best = Number(m[1]);
  }
  return best < 0 ? null : `${imagesDir}/deployment.${best}`;
}

// ---------------------------------------------------------------------------------------------
// Per-container lock: a directory R/.onevz.lock created with mkdir (atomic, no flock needed,
// works the same over ssh), holding an `owner` file {pid, host, action, since}. A lock is
// stale when it is older than `staleMinutes` or when its owner ran on this machine and that
// pid is gone.

export const LOCK_NAME = ".onevz.lock";

export interface LockOptions {
  /** Give up waiting for a busy lock after this long (default 60 s). */
  waitMs?: number;
  /** Consider a lock abandoned after this many minutes (default 60). */
  staleMinutes?: number;
  /** Poll interval while waiting (default 500 ms). */
  pollMs?: number;
}

interface LockOwner {
  pid: number;
  host: string;
  action: string;
  since: number;
}

export type Unlock = () => Promise<void>;

/** Signal 0: does the process exist? (node:process is loaded only when a lock is contended.) */
async function pidAlive(pid: number): Promise<boolean> {
  const { default: process } = await import("node:process");
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}

async function lockIsStale(host: Host, dir: string, staleMinutes: number): Promise<boolean> {
  let owner: LockOwner | undefined;
  try {
    const text = await host.readFile(`${dir}/owner`);
    if (text) owner = JSON.parse(text) as LockOwner;
  } catch { /* unreadable owner: judge by age */ }
  if (owner && owner.host === Deno.hostname() && Number.isInteger(owner.pid)) {
    if (!(await pidAlive(owner.pid))) return true;
  }
  const since = owner?.since ?? await dirMtimeMs(host, dir);
  return since !== undefined && Date.now() - since > staleMinutes * 60_000;
}

async function dirMtimeMs(host: Host, dir: string): Promise<number | undefined> {
  const r = await host.run(["stat", "-c", "%Y", "--", dir], { check: false });
  const s = Number(r.stdout.trim());
  return r.status === 0 && Number.isFinite(s) ? s * 1000 : undefined;
}

/**
 * The owner of an abandoned lock in R (its process was killed mid-way), or undefined when R
 * holds no lock or a live one. Read before lockContainer, which breaks a stale lock silently.
 */
export async function staleLockOwner(
  host: Host,
  imagesDir: string,
  staleMinutes = 60,
): Promise<{ action: string; pid: number } | undefined> {
  const dir = `${imagesDir}/${LOCK_NAME}`;
  if (!(await host.isDirectory(dir))) return undefined;
  if (!(await lockIsStale(host, dir, staleMinutes))) return undefined;
  try {
    const owner = JSON.parse((await host.readFile(`${dir}/owner`)) ?? "") as LockOwner;
    return { action: String(owner.action), pid: Number(owner.pid) };
  } catch {
    return { action: "unknown", pid: 0 };
  }
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
  const deadline = Date.now() + (opts.waitMs ?? 60_000);
  for (;;) {
    const r = await host.run(["mkdir", "--", dir], { check: false });
    if (r.status === 0) break;
    if (!(await host.isDirectory(imagesDir))) {
      throw new OnevzError(`cannot lock ${imagesDir}: ${r.stderr.trim() || "no such directory"}`);
    }
    if (await lockIsStale(host, dir, opts.staleMinutes ?? 60)) {
      await host.remove(dir, { recursive: true });
      continue;
    }
    if (Date.now() >= deadline) {
      const owner = await host.readFile(`${dir}/owner`).catch(() => null);
      throw new OnevzError(
        `container in ${imagesDir} is busy (lock ${dir}${owner ? ": " + owner.trim() : ""})`,
      );
    }
    await new Promise((res) => setTimeout(res, opts.pollMs ?? 500));
  }
  const me: LockOwner = { pid: Deno.pid, host: Deno.hostname(), action, since: Date.now() };
  await host.writeFileAtomic(`${dir}/owner`, JSON.stringify(me) + "\n");
  return async () => {
    await host.remove(dir, { recursive: true }).catch(() => {});
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
