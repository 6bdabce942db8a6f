/**
 * save <deploy_id> <checkpoint>: checkpoint a running container to a file.
 *  1. Validate the arguments; find the container and take its lock; it must be running.
 *  2. Drop a stale checkpoint left from an earlier suspend/resume (restore keeps the file).
 *  3. Write what restore needs, possibly on another node after a cold migration:
 *     <checkpoint>.onevz.json (CTID, VMID) and <dir>/ctid.conf (copy of CTID.conf).
 *  4. `vzctl chkpnt CTID --dumpfile <checkpoint>` (the container ends stopped, unmounted).
 *  5. Hand the dump to the images directory's owner (mode 0600) so the TM can move it.
 */
import type { CommandContext } from "../../cli/context.ts";
import { OnevzError } from "../../cli/errors.ts";
import { requireContainer, withContainerLock } from "../../ovz/container.ts";
import {
  absolutePathArg,
  checkpointInside,
  confCopyPathFor,
  ctStatus,
  deployIdArg,
  dirOf,
  handOver,
  recordPathFor,
  vzctl,
  writeRecord,
} from "./common.ts";

export default async function save(ctx: CommandContext): Promise<number> {
  const ctid = deployIdArg(ctx.args[0]);
  const checkpoint = absolutePathArg(ctx.args[1], "checkpoint path");
  const host = ctx.host;
  const ct = await requireContainer(host, ctid);
  checkpointInside(checkpoint, ct.imagesDir);
  await withContainerLock(host, ct.imagesDir, "save", async () => {
    if (!(await ctStatus(ctx, ctid)).running) {
      throw new OnevzError(`container ${ctid} is not running: nothing to checkpoint`);
    }
    await host.remove(checkpoint, { privileged: true });
    await host.remove(recordPathFor(checkpoint), { privileged: true });
    await host.mkdirp(dirOf(checkpoint));
    await host.writeFileAtomic(confCopyPathFor(checkpoint), ct.confText, { mode: 0o644 });
    await writeRecord(host, checkpoint, {
      ctid,
      vmid: ct.vmid,
      savedAt: new Date().toISOString(),
    });
    try {
      await vzctl(ctx, ["chkpnt", String(ctid), "--dumpfile", checkpoint]);
    } catch (e) {
      await host.remove(recordPathFor(checkpoint), { privileged: true }).catch(() => {});
      throw e;
    }
    await handOver(host, checkpoint, dirOf(checkpoint));
  });
  return 0;
}
