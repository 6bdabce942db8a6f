/**
 * cancel <deploy_id>: stop (fast) and destroy the container, saving nothing. OpenNebula 2.2.1
 * runs no epilog after a cancel, so the images directory stays; a container that is already
 * gone counts as cancelled. Whatever state the container is in (running, stopped, left by a
 * shutdown for its epilog), cancel destroys it.
 */
import type { CommandContext } from "../../cli/context.ts";
import { findContainer, withContainerLock } from "../../ovz/container.ts";
import { deployIdArg, destroyContainer, note, stopContainer } from "./common.ts";

export default async function cancel(ctx: CommandContext): Promise<number> {
  const ctid = deployIdArg(ctx.args[0]);
  const ct = await findContainer(ctx.host, ctid);
  if (!ct) {
    note(ctx, `container ${ctid} does not exist on ${ctx.host.name}: already gone`);
    return 0;
  }
  await withContainerLock(ctx.host, ct.imagesDir, "cancel", async () => {
    // Look again now that this action holds the lock: a concurrent action may have gone first.
    if (!(await findContainer(ctx.host, ctid))) {
      note(ctx, `container ${ctid} was removed by a concurrent action: already gone`);
      return;
    }
    await stopContainer(ctx, ctid, { fast: true });
    await destroyContainer(ctx, ctid);
  }, { onBroken: (m) => note(ctx, m) });
  return 0;
}
