/**
 * tm-ln <src> <host:dst> [size]: TM LN. The ssh transfer manager cannot link across hosts, so
 * (like the stock tm_ln.sh, which execs tm_clone.sh) this places a copy through the node cache.
 */
import type { CommandContext } from "../../cli/context.ts";
import { clone } from "./clone.ts";
import { runTm } from "./common.ts";

export default function (ctx: CommandContext): Promise<number> {
  return runTm(ctx, "tm-ln", (log) => {
    log("the ssh transfer manager cannot link across hosts: cloning");
    return clone(ctx, log);
  });
}
