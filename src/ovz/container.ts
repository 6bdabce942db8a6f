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
import { dirname, squeezeSlashes } from "../host/posix_path.ts";
import { expandVeid, parseVzConf, parseVzctlStatus, type VzctlStatus } from "./parsers.ts";

export {
  LOCK_NAME,
  lockContainer,
  type LockOptions,
  type Unlock,
  withContainerLock,
} from "./lock.ts";

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

/**
 * `vzctl status CTID` as root (it takes no lock and exits 0); undefined when its output is not
 * understood. `check: false`: no vzctl on the host is an undefined status, not an error.
 */
export async function vzctlStatus(
  host: Host,
  ctid: number,
  opts: { check?: boolean } = {},
): Promise<VzctlStatus | undefined> {
  const r = await host.run(["vzctl", "status", String(ctid)], { privileged: true, ...opts });
  return parseVzctlStatus(r.stdout);
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

/** A directory that exists and holds at least one entry (read as root). */
export async function hasFiles(host: Host, dir: string): Promise<boolean> {
  if (!(await host.isDirectory(dir, { privileged: true }))) return false;
  const r = await host.run(["find", dir, "-maxdepth", "0", "-empty"], { privileged: true });
  return r.stdout.trim() === "";
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

/**
 * The containers registered on the node (a CTID.conf) whose private area lies in `dir` (or is
 * `dir`): what deleting or moving `dir` would take from them. Configs that cannot be read as
 * a container's (no absolute VE_PRIVATE) are skipped.
 */
export async function containersUsing(host: Host, dir: string): Promise<ContainerInfo[]> {
  const confDir = host.sysPath("/etc/vz/conf");
  const names = (await listDir(host, confDir)).filter((n) => /^\d+\.conf$/.test(n));
  if (names.length === 0) return [];
  const paths = names.map((n) => `${confDir}/${n}`);
  const texts = await host.readFiles(paths, { privileged: true });
  const root = squeezeSlashes(dir);
  const found: ContainerInfo[] = [];
  names.forEach((name, i) => {
    const text = texts[i];
    if (text === null) return;
    try {
      const ct = describeContainer(Number(name.slice(0, -5)), paths[i], text);
      const priv = squeezeSlashes(ct.privateDir);
      if (priv === root || priv.startsWith(root === "/" ? "/" : root + "/")) found.push(ct);
    } catch { /* not a usable container config */ }
  });
  return found;
}

// ---------------------------------------------------------------------------------------------
// Markers in R that say what an onevz action left for the next one.

/**
 * R/.onevz-shutdown.json: shutdown stopped this container and kept its private area for the
 * epilog (tm-mv of the OS disk archives it, tm-delete destroys the container).
 */
export const SHUTDOWN_MARK = ".onevz-shutdown.json";
/**
 * R/.onevz-deploy.json: a deploy is creating this container and has not started it yet. A
 * later deploy that finds it knows the container is a half-made one it may rebuild.
 */
export const DEPLOY_MARK = ".onevz-deploy.json";

export interface ShutdownMark {
  ctid: number;
  at: string;
}

export interface DeployMark {
  ctid: number;
  /**
   * fresh: the private area comes from the OS template (rebuilding loses nothing);
   * adopted: the private area was already there (only the config is this deploy's).
   */
  kind: "fresh" | "adopted";
  /** Where vzctl create unpacked the template when the private area was adopted. */
  scratch?: string;
  at: string;
}

export async function readMark<T extends { ctid: number }>(
  host: Host,
  imagesDir: string,
  name: string,
): Promise<T | undefined> {
  const text = await host.readFile(`${imagesDir}/${name}`, { privileged: true });
  if (!text) return undefined;
  try {
    const mark = JSON.parse(text) as T;
    return Number.isInteger(mark.ctid) ? mark : undefined;
  } catch {
    return undefined;
  }
}

export async function writeMark(host: Host, imagesDir: string, name: string, mark: object) {
  await host.writeFileAtomic(`${imagesDir}/${name}`, JSON.stringify(mark) + "\n", {
    privileged: true,
    mode: 0o644,
  });
}

export async function removeMark(host: Host, imagesDir: string, name: string) {
  await host.remove(`${imagesDir}/${name}`, { privileged: true });
}
