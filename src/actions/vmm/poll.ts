// Placeholder until the poll command is implemented.
import type { CommandContext } from "../../cli/context.ts";
import { OnevzError } from "../../cli/errors.ts";

export default function (_ctx: CommandContext): Promise<number> {
  return Promise.reject(new OnevzError("poll: not implemented yet"));
}
