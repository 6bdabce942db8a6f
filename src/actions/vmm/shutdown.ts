/**
 * shutdown <deploy_id>: the operator's checklist for a clean shutdown.
 *  1. Find the container (its config) and take its lock; look again under the lock (a
 *     concurrent action may have finished it meanwhile).
 *  2. Stop the container and unmount it.
 *  3. Leave it, stopped and with its private area, for the epilog: write R/.onevz-shutdown.json.
 *
 * Whether the OS disk is saved is decided by oned, not by the deployment copy (`onevm saveas`
 * changes only oned's database), and 2.2.1 tells the node only through the epilog: `MV
 * H:R/disk.<os> FE:…` for a saved disk, then `DELETE H:R`. So the archive is made by tm-mv of
 * R/disk.<os> (from the private area, at that moment) and the container is destroyed by
 * tm-delete of R. A container without its files, whose deployment copy says its disk is to
 * be saved, makes shutdown fail: there is nothing to save.
 */
import type { CommandContext } from "../../cli/context.ts";
import { OnevzError } from "../../cli/errors.ts";
import {
  describeContainer,
  findContainer,
  latestDeployment,
  readMark,
  SHUTDOWN_MARK,
  type ShutdownMark,
  withContainerLock,
  writeMark,
} from "../../ovz/container.ts";
import { ctStatus, deployIdArg, note, stopContainer } from "./common.ts";
import { ctidOffset, osDiskOf } from "./driver_files.ts";
import { frontEndVmDir } from "./input.ts";

const P = { privileged: true } as const;

export default async function shutdown(ctx: CommandContext): Promise<number> {
  const ctid = deployIdArg(ctx.args[0]);
  const host = ctx.host;
  const ct = await findContainer(host, ctid);
  if (!ct) return await withoutConfig(ctx, ctid, await locateImagesDir(ctx, ctid));
  let goneMeanwhile = false;
  await withContainerLock(host, ct.imagesDir, "shutdown", async () => {
    const now = await findContainer(host, ctid);
    if (!now || now.privateDir !== ct.privateDir) {
      goneMeanwhile = true;
      return;
    }
    const mark = await readMark<ShutdownMark>(host, ct.imagesDir, SHUTDOWN_MARK);
    if (mark?.ctid === ctid && !(await ctStatus(ctx, ctid)).running) {
      note(ctx, `container ${ctid} was already shut down (${mark.at}): left for the epilog`);
      return;
    }
    if (!(await stopContainer(ctx, ctid)).exists) {
      // vzctl says "deleted": the config is there, the private area is not.
      const disk = await diskToSave(ctx, ct.imagesDir);
      if (disk !== undefined) throw nothingToSave(ctx, ctid, ct.privateDir, disk);
    }
    await writeMark(host, ct.imagesDir, SHUTDOWN_MARK, { ctid, at: new Date().toISOString() });
  }, { onBroken: (m) => note(ctx, m) });
  if (goneMeanwhile) {
    note(ctx, `container ${ctid} was removed by a concurrent action while shutdown waited`);
    return await withoutConfig(ctx, ctid, ct.imagesDir);
  }
  return 0;
}

/**
 * No config for the CTID: nothing runs. Its files may still be in R (a config removed by
 * hand, a node reinstalled with /vz kept): kept for the epilog like any shut down container.
 */
async function withoutConfig(ctx: CommandContext, ctid: number, imagesDir: string | undefined) {
  const host = ctx.host;
  if (!imagesDir || !(await host.isDirectory(imagesDir, P))) {
    note(ctx, `container ${ctid} does not exist on ${host.name}: nothing to shut down`);
    return 0;
  }
  await withContainerLock(host, imagesDir, "shutdown", async () => {
    const mark = await readMark<ShutdownMark>(host, imagesDir, SHUTDOWN_MARK);
    const privateDir = `${imagesDir}/private`;
    if (mark?.ctid === ctid) {
      note(ctx, `container ${ctid} was already shut down (${mark.at}): left for the epilog`);
    } else if (await host.isDirectory(privateDir, P)) {
      await writeMark(host, imagesDir, SHUTDOWN_MARK, { ctid, at: new Date().toISOString() });
      note(
        ctx,
        `container ${ctid} has no config on ${host.name}; its files in ${privateDir} are ` +
          `kept for the epilog`,
      );
    } else {
      const disk = await diskToSave(ctx, imagesDir);
      if (disk !== undefined) throw nothingToSave(ctx, ctid, privateDir, disk);
      note(ctx, `container ${ctid} does not exist on ${host.name}: nothing to shut down`);
    }
  }, { onBroken: (m) => note(ctx, m) });
  return 0;
}

function nothingToSave(ctx: CommandContext, ctid: number, privateDir: string, disk: string) {
  return new OnevzError(
    `container ${ctid} has no files on ${ctx.host.name} (${privateDir} does not exist): ` +
      `nothing to archive for DISK ${disk}, which is to be saved; not answering success, ` +
      `or the epilog would hand back the untouched OS image as the saved disk`,
  );
}

/** DISK_ID of the OS disk when the latest deployment copy says it is saved, else undefined. */
async function diskToSave(ctx: CommandContext, imagesDir: string): Promise<string | undefined> {
  const file = await latestDeployment(ctx.host, imagesDir);
  // deploy writes its copy as root (mode 0640): read it the same way (non-root logins).
  const xml = file ? await ctx.host.readFile(file, P) : null;
  if (!xml) return undefined;
  const os = osDiskOf(xml);
  return os?.save ? os.diskId : undefined;
}

/**
 * R of a CTID that has no config: from VM_DIR when this side knows it (agentless mode reads
 * oned's config; ONEVZ_VM_DIR), else from the config vzctl destroy left (CTID.conf.destroyed).
 */
async function locateImagesDir(ctx: CommandContext, ctid: number): Promise<string | undefined> {
  const vmDir = (ctx.env("ONEVZ_VM_DIR") || ctx.mode === "agentless")
    ? await frontEndVmDir(ctx).catch(() => undefined)
    : undefined;
  const offset = await ctidOffset(ctx).catch(() => undefined);
  if (vmDir && offset !== undefined && ctid - offset >= 0) {
    return `${vmDir}/${ctid - offset}/images`;
  }
  const path = ctx.host.sysPath(`/etc/vz/conf/${ctid}.conf.destroyed`);
  const destroyed = await ctx.host.readFile(path, P).catch(() => null);
  if (!destroyed) return undefined;
  try {
    const ct = describeContainer(ctid, path, destroyed);
    return ct.vmid !== undefined ? ct.imagesDir : undefined;
  } catch {
    return undefined; // no absolute VE_PRIVATE: nothing to locate R from
  }
}
