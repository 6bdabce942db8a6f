/**
 * restore <checkpoint> [<deploy_id>]: bring a checkpointed container back.
 *  1. The CTID: the second argument (patched one_vmm_ssh.rb), else the record save wrote
 *     (<checkpoint>.onevz.json), else the VM id in `…/<vid>/images/checkpoint` + CTID_OFFSET.
 *  2. No CTID.conf on this node (cold migration moved R here): put back the copy save kept in
 *     <dir>/ctid.conf (VE_PRIVATE/VE_ROOT still point into R; VE_LAYOUT added when the copy
 *     lacks it); removed again if restore fails.
 *  3. Under the lock: the container must not be running; restore from a hard link (or copy)
 *     of the checkpoint, because vzctl ≥ 4.0 deletes the dump it restored from, and
 *     OpenNebula's checkpoint file must still exist afterwards.
 *  4. Mark the record restored, so poll no longer reads the kept file as "suspended".
 */
import type { CommandContext } from "../../cli/context.ts";
import { InvalidInputError, OnevzError } from "../../cli/errors.ts";
import {
  confPathFor,
  type ContainerInfo,
  describeContainer,
  findContainer,
  withContainerLock,
} from "../../ovz/container.ts";
import {
  absolutePathArg,
  checkpointInside,
  confCopyPathFor,
  ctStatus,
  deployIdArg,
  note,
  readRecord,
  vzctl,
  writeRecord,
} from "./common.ts";
import { ctidFromCheckpointPath } from "./driver_files.ts";

export default async function restore(ctx: CommandContext): Promise<number> {
  const checkpoint = absolutePathArg(ctx.args[0], "checkpoint path");
  const argCtid = ctx.args[1] !== undefined ? deployIdArg(ctx.args[1]) : undefined;
  const host = ctx.host;
  if (!(await host.exists(checkpoint, { privileged: true }))) {
    throw new OnevzError(`checkpoint ${checkpoint} does not exist on ${host.name}`);
  }
  const record = await readRecord(host, checkpoint);
  const ctid = argCtid ?? record?.ctid ?? await ctidFromCheckpointPath(ctx, checkpoint);
  if (ctid === undefined) {
    throw new InvalidInputError(
      `cannot tell the CTID for ${checkpoint}: no deploy id, no record, no …/<vid>/images/ path`,
    );
  }
  if (record && argCtid !== undefined && record.ctid !== argCtid) {
    note(ctx, `checkpoint record says CTID ${record.ctid}; using deploy id ${argCtid}`);
  }
  const { ct, created } = await ensureConfig(ctx, ctid, checkpoint);
  try {
    await withContainerLock(host, ct.imagesDir, "restore", async () => {
      const st = await ctStatus(ctx, ctid);
      if (st.running) throw new OnevzError(`container ${ctid} is already running`);
      if (st.mounted) await vzctl(ctx, ["umount", String(ctid)]);
      if (ct.rootDir) await host.mkdirp(ct.rootDir, { privileged: true });
      await restoreKeepingDump(ctx, ctid, checkpoint);
    }, { onBroken: (m) => note(ctx, m) });
  } catch (e) {
    if (created) await host.remove(ct.confPath, { privileged: true }).catch(() => {});
    throw e;
  }
  await writeRecord(host, checkpoint, {
    ctid,
    vmid: record?.vmid ?? ct.vmid,
    savedAt: record?.savedAt ?? "",
    restoredAt: new Date().toISOString(),
  }).catch((e) => note(ctx, `could not update the checkpoint record: ${e.message}`));
  return 0;
}

/** The container's config, recreated from <dir>/ctid.conf when this node has none. */
async function ensureConfig(
  ctx: CommandContext,
  ctid: number,
  checkpoint: string,
): Promise<{ ct: ContainerInfo; created: boolean }> {
  const existing = await findContainer(ctx.host, ctid);
  if (existing) {
    checkpointInside(checkpoint, existing.imagesDir);
    return { ct: existing, created: false };
  }
  const copy = await ctx.host.readFile(confCopyPathFor(checkpoint), { privileged: true });
  if (copy === null) {
    throw new OnevzError(
      `container ${ctid} has no config on ${ctx.host.name} and ${
        confCopyPathFor(checkpoint)
      } does not exist`,
    );
  }
  const path = confPathFor(ctx.host, ctid);
  const ct = describeContainer(ctid, path, copy);
  checkpointInside(checkpoint, ct.imagesDir);
  // A config without VE_LAYOUT (saved on a vzctl 3.0.x node) makes vzctl 4.x take the CT for
  // ploop (and a later create of this CTID try ploop): complete it from the private area.
  let text = copy;
  if (ct.conf.VE_LAYOUT === undefined) {
    const ploop = await ctx.host.exists(`${ct.privateDir}/root.hdd`, { privileged: true });
    const eol = copy === "" || copy.endsWith("\n") ? "" : "\n";
    text = `${copy}${eol}VE_LAYOUT="${ploop ? "ploop" : "simfs"}"\n`;
  }
  await ctx.host.writeFileAtomic(path, text, { privileged: true, mode: 0o644 });
  return { ct, created: true };
}

async function restoreKeepingDump(ctx: CommandContext, ctid: number, checkpoint: string) {
  const host = ctx.host;
  const work = `${checkpoint}.onevz-restore-${crypto.randomUUID().slice(0, 8)}`;
  try {
    const link = await host.run(["ln", "--", checkpoint, work], { privileged: true, check: false });
    if (link.status !== 0) {
      await host.run(["cp", "--sparse=always", "-p", "--", checkpoint, work], {
        privileged: true,
      });
    }
    await vzctl(ctx, ["restore", String(ctid), "--dumpfile", work]);
  } finally {
    await host.remove(work, { privileged: true }).catch(() => {});
  }
}
