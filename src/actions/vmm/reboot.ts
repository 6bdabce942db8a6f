/** reboot <deploy_id>: `vzctl restart` under the container's lock. */
import type { CommandContext } from "../../cli/context.ts";
import { requireContainer, withContainerLock } from "../../ovz/container.ts";
import { deployIdArg, vzctl } from "./common.ts";

export default async function reboot(ctx: CommandContext): Promise<number> {
  const ctid = deployIdArg(ctx.args[0]);
  const ct = await requireContainer(ctx.host, ctid);
  await withContainerLock(ctx.host, ct.imagesDir, "reboot", async () => {
    await vzctl(ctx, ["restart", String(ctid)]);
  });
  return 0;
}
