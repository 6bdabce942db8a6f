/**
 * What tm-mv and tm-delete need to know about the OpenVZ container behind a VM directory
 * R = $VM_DIR/<vid>/images on a node: which DISK is its OS disk (from onevz's deployment
 * copy), the container registered there and its state, and how tar keeps what a private area
 * holds (owners, modes, device nodes, xattrs and ACLs) on this node's tar.
 */
import { OnevzError } from "../../cli/errors.ts";
import type { Host } from "../../host/host.ts";
import { squeezeSlashes } from "../../host/posix_path.ts";
import { type ContainerInfo, containersUsing, latestDeployment } from "../../ovz/container.ts";

const P = { privileged: true } as const;

/** The name of the private area (and root) archive a stopped VM's directory holds on the FE. */
export const CONTAINER_ARCHIVE = "private.onevz.tar";
/** The parts of R that belong to the container (root's files, packed as root). */
export const CONTAINER_PARTS = ["private", "root"];

export interface ContainerDisk {
  imagesDir: string;
  diskId: string;
  /** The registered container using R's private area, if any. */
  ct?: ContainerInfo;
  privateDir: string;
}

/**
 * The source of `MV <node>:R/disk.<i> …` when disk i is the OS disk of an onevz container:
 * the saved image must then be made from the container's files, not the TM's image copy.
 * Undefined for anything else (other disks, other hypervisors' VM directories).
 */
export async function containerOsDisk(
  host: Host,
  path: string,
): Promise<ContainerDisk | undefined> {
  const m = /^(\/.*\/\d+\/images)\/disk\.(\d+)$/.exec(squeezeSlashes(path));
  if (!m) return undefined;
  const [, imagesDir, diskId] = m;
  const deployment = await latestDeployment(host, imagesDir);
  const xml = deployment ? await host.readFile(deployment, P) : null;
  if (!xml || !/^\s*<(TEMPLATE|VM)>/.test(xml)) {
    // A container whose files are in R but no deployment copy says which disk is its OS
    // disk (one deployed before onevz): R/disk.<i> may be the untouched image it was made
    // from, never to be handed back as the saved disk.
    const [ct] = await containersUsing(host, `${imagesDir}/private`);
    if (ct) {
      throw new OnevzError(
        `${imagesDir}/private holds the files of container ${ct.ctid}, but ${imagesDir} has ` +
          `no deployment file (deployment.<n>) to tell whether disk.${diskId} is its OS disk: ` +
          `not moving disk.${diskId}, which may be the image the container was made from; ` +
          `copy the VM's deployment file from the front-end (<var>/<vid>/deployment.<n>) ` +
          `into ${imagesDir} and run the transfer again`,
      );
    }
    return undefined;
  }
  // The XML parser is loaded only here: most TM lines never need it.
  const { osDiskOf } = await import("../../one/os_disk.ts");
  let os;
  try {
    os = osDiskOf(xml);
  } catch {
    return undefined;
  }
  if (os?.diskId !== diskId) return undefined;
  const [ct] = await containersUsing(host, `${imagesDir}/private`);
  return { imagesDir, diskId, ct, privateDir: ct?.privateDir ?? `${imagesDir}/private` };
}

/**
 * The tar options that keep xattrs (all namespaces) and ACLs, as far as this host's GNU tar
 * has them (CentOS 5's tar has neither: a container then moves without them).
 */
export async function xattrOptions(host: Host): Promise<string[]> {
  for (const opts of [["--xattrs", "--xattrs-include=*", "--acls"], ["--xattrs", "--acls"]]) {
    const r = await host.run(["tar", ...opts, "-cf", "/dev/null", "--files-from", "/dev/null"], {
      check: false,
    });
    if (r.status === 0) return opts;
  }
  return [];
}

/** Options both ends understand (a pax archive with xattrs is read by both). */
export function commonOptions(a: string[], b: string[]): string[] {
  return a.filter((o) => b.includes(o));
}

/**
 * Run `fn` with the directory holding the container's files. simfs: the private area itself.
 * ploop: the private area is an image (root.hdd/), not an OS template; its files are the
 * mounted VE_ROOT (`vzctl mount`, as vzctl itself does for postcreate and runscript), and
 * the container is unmounted again afterwards.
 */
export async function withContainerFiles<T>(
  host: Host,
  disk: ContainerDisk,
  fn: (dir: string) => Promise<T>,
): Promise<T> {
  const ct = disk.ct;
  const ploop = ct?.conf.VE_LAYOUT?.startsWith("ploop") ||
    await host.exists(`${disk.privateDir}/root.hdd`, P);
  if (!ploop) return await fn(disk.privateDir);
  if (!ct?.rootDir) {
    throw new OnevzError(
      `${disk.privateDir} is a ploop image and no container config names it (or it has no ` +
        `VE_ROOT): its files cannot be read without mounting it`,
    );
  }
  const id = String(ct.ctid);
  await host.run(["vzctl", "--quiet", "mount", id], P);
  try {
    return await fn(ct.rootDir);
  } finally {
    await host.run(["vzctl", "--quiet", "umount", id], P);
  }
}
