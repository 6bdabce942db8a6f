/**
 * shutdown <deploy_id>: the operator's checklist for a clean shutdown.
 *  1. Find the container (its config) and take its lock.
 *  2. Read the latest deployment file: does the OS disk want saving (SAVE=yes or SAVE_AS)?
 *  3. Stop the container (and unmount it).
 *  4. If saving: archive the container's files to R/disk.<DISK_ID> (gzip tar rooted at the
 *     container's /, like an OpenVZ template; a ploop CT is mounted to read them from its
 *     image), via a temporary name, verified, then renamed.
 *  5. Destroy the container. A failed archive leaves it stopped and intact and fails the action.
 */
import { type ArchiveExt, archiveExtFromMagic, readHead } from "../../ovz/archive.ts";
import type { CommandContext } from "../../cli/context.ts";
import { OnevzError } from "../../cli/errors.ts";
import {
  type ContainerInfo,
  findContainer,
  latestDeployment,
  withContainerLock,
} from "../../ovz/container.ts";
import { deployIdArg, destroyContainer, handOver, note, stopContainer } from "./common.ts";
import { osDiskOf } from "./driver_files.ts";

export default async function shutdown(ctx: CommandContext): Promise<number> {
  const ctid = deployIdArg(ctx.args[0]);
  const ct = await findContainer(ctx.host, ctid);
  if (!ct) {
    note(ctx, `container ${ctid} does not exist on ${ctx.host.name}: nothing to shut down`);
    return 0;
  }
  await withContainerLock(ctx.host, ct.imagesDir, "shutdown", async () => {
    const disk = await diskToSave(ctx, ct);
    await stopContainer(ctx, ctid);
    if (disk !== undefined) await archivePrivateArea(ctx, ct, `${ct.imagesDir}/disk.${disk}`);
    await destroyContainer(ctx, ctid);
  });
  return 0;
}

/** DISK_ID of the OS disk when it must be saved, else undefined. */
async function diskToSave(ctx: CommandContext, ct: ContainerInfo): Promise<string | undefined> {
  const file = await latestDeployment(ctx.host, ct.imagesDir);
  // deploy writes its copy as root (mode 0640): read it the same way (non-root logins).
  const xml = file ? await ctx.host.readFile(file, { privileged: true }) : null;
  if (!file || xml === null) {
    throw new OnevzError(
      `no deployment file in ${ct.imagesDir}: cannot tell whether the disk of container ` +
        `${ct.ctid} must be saved; container left running`,
    );
  }
  const os = osDiskOf(xml);
  return os?.save ? os.diskId : undefined;
}

/** tar's compression flag and the command that verifies a finished archive, per format. */
const ARCHIVE_TOOLS: Record<ArchiveExt, { flag: string; verify: (f: string) => string[] }> = {
  ".tar.gz": { flag: "z", verify: (f) => ["gzip", "-t", "--", f] },
  ".tar.bz2": { flag: "j", verify: (f) => ["bzip2", "-t", "--", f] },
  ".tar.xz": { flag: "J", verify: (f) => ["xz", "-t", "--", f] },
  ".tar": { flag: "", verify: (f) => ["tar", "-t", "-f", f] },
};

/**
 * Run `fn` with the directory holding the container's files. simfs: the private area itself.
 * ploop: the private area is an image (root.hdd/), not an OS template; its files are the
 * mounted VE_ROOT (`vzctl mount`, as vzctl itself does for postcreate and runscript), and
 * the CT is unmounted again afterwards.
 */
async function withContainerFiles(
  host: CommandContext["host"],
  ct: ContainerInfo,
  fn: (dir: string) => Promise<void>,
) {
  const P = { privileged: true } as const;
  const ploop = ct.conf.VE_LAYOUT?.startsWith("ploop") ||
    await host.exists(`${ct.privateDir}/root.hdd`, P);
  if (!ploop) return await fn(ct.privateDir);
  if (!ct.rootDir) {
    throw new OnevzError(`${ct.confPath} has no VE_ROOT to mount the ploop image at`);
  }
  const id = String(ct.ctid);
  await host.run(["vzctl", "--quiet", "mount", id], P);
  try {
    await fn(ct.rootDir);
  } finally {
    await host.run(["vzctl", "--quiet", "umount", id], P);
  }
}

async function archivePrivateArea(ctx: CommandContext, ct: ContainerInfo, target: string) {
  const host = ctx.host;
  const tmp = `${target}.onevz-tmp-${crypto.randomUUID().slice(0, 8)}`;
  try {
    if (!(await host.isDirectory(ct.privateDir, { privileged: true }))) {
      throw new OnevzError(`private area ${ct.privateDir} does not exist`);
    }
    // Same format as the image it replaces (the TM's copy is still at the target), so the
    // saved image keeps the compression of the template it came from; gzip otherwise.
    const ext = (await host.exists(target, { privileged: true }))
      ? archiveExtFromMagic(await readHead(host, target)) ?? ".tar.gz"
      : ".tar.gz";
    const { flag, verify } = ARCHIVE_TOOLS[ext];
    await withContainerFiles(host, ct, async (files) => {
      await host.run(["tar", "--numeric-owner", `-c${flag}pf`, tmp, "-C", files, "."], {
        privileged: true,
      });
    });
    await host.run(verify(tmp), { privileged: true });
    await handOver(host, tmp, ct.imagesDir);
    await host.rename(tmp, target, { privileged: true });
  } catch (e) {
    await host.remove(tmp, { privileged: true }).catch(() => {});
    throw new OnevzError(
      `saving the disk of container ${ct.ctid} to ${target} failed, container left stopped ` +
        `and intact: ${(e as Error).message}`,
    );
  }
}
