/**
 * What the VMM actions other than deploy read from OpenNebula's files: the OS disk of a
 * deployment file (shutdown, src/one/os_disk.ts) and CTID_OFFSET from the driver defaults (restore). Apart from
 * common.ts because these load the XML parser and zod, which poll and cancel never need.
 */
import type { CommandContext } from "../../cli/context.ts";
import { ctidForVmid, DEFAULT_CTID_OFFSET } from "../../one/ctid.ts";
import { parseDriverConfig } from "../../one/config.ts";

export { type OsDisk, osDiskOf } from "../../one/os_disk.ts";

/** CTID_OFFSET from the defaults file (remotes vmm/ovz/vmm_ssh_ovz.conf), else 1000. */
export async function ctidOffset(ctx: CommandContext): Promise<number> {
  const file = ctx.remotesDir ? `${ctx.remotesDir}/vmm/ovz/vmm_ssh_ovz.conf` : undefined;
  if (!file) return DEFAULT_CTID_OFFSET;
  let text: string | null = null;
  try {
    text = await Deno.readTextFile(file);
  } catch { /* no defaults file: built-in defaults */ }
  return parseDriverConfig(text, file).ctidOffset;
}

/** CTID from `…/<vid>/images/checkpoint` with the configured offset. */
export async function ctidFromCheckpointPath(
  ctx: CommandContext,
  checkpoint: string,
): Promise<number | undefined> {
  const m = /\/(\d+)\/+images\/+[^/]+$/.exec(checkpoint);
  if (!m) return undefined;
  return ctidForVmid(Number(m[1]), await ctidOffset(ctx));
}
