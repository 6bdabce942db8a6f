/**
 * tm-mkswap <size_mb> <host:path>: TM MKSWAP. An OpenVZ container has no swap file: deploy reads
 * the swap size from the template, so this succeeds without creating anything.
 */
import type { CommandContext } from "../../cli/context.ts";
import { OnevzError } from "../../cli/errors.ts";
import { runTm } from "./common.ts";

export default function (ctx: CommandContext): Promise<number> {
  return runTm(ctx, "tm-mkswap", (log) => {
    const [size, dst] = ctx.args;
    if (!/^\d+$/.test(size)) return Promise.reject(new OnevzError(`invalid swap size '${size}'`));
    log(
      `not creating ${dst}: OpenVZ containers need no swap file ` +
        `(deploy takes the ${size} MB swap size from the template)`,
    );
    return Promise.resolve();
  });
}
