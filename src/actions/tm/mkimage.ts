/**
 * tm-mkimage <size> <format> <host:path>: TM MKIMAGE (a new file-system DISK). OpenVZ containers
 * take a single disk, their OS template, so this always fails and says why.
 */
import type { CommandContext } from "../../cli/context.ts";
import { OnevzError } from "../../cli/errors.ts";
import { runTm } from "./common.ts";

export const MKIMAGE_MESSAGE = "OpenVZ containers take one disk: MKIMAGE is not supported";

export default function (ctx: CommandContext): Promise<number> {
  return runTm(ctx, "tm-mkimage", () => Promise.reject(new OnevzError(MKIMAGE_MESSAGE)));
}
