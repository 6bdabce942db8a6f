/**
 * What the VMM actions other than deploy read from OpenNebula's files: the OS disk of a
 * deployment file (shutdown) and CTID_OFFSET from the driver defaults (restore). Apart from
 * common.ts because these load the XML parser and zod, which poll and cancel never need.
 */
import type { CommandContext } from "../../cli/context.ts";
import { OnevzError } from "../../cli/errors.ts";
import { ctidForVmid, DEFAULT_CTID_OFFSET } from "../../one/ctid.ts";
import { parseDriverConfig } from "../../one/config.ts";
import { parseTemplateXml, vectors } from "../../one/template.ts";

export interface OsDisk {
  diskId: string;
  /** SAVE=yes (any case) or SAVE_AS present: shutdown must leave R/disk.<DISK_ID>. */
  save: boolean;
}

/**
 * The OS disk of a deployment file (`<TEMPLATE>` or a full `<VM>` document): the first DISK
 * whose TYPE is not swap. Undefined when there is none.
 */
export function osDiskOf(xml: string): OsDisk | undefined {
  const disks = vectors(parseTemplateXml(xml), "DISK");
  const os = disks.find((d) => (d.TYPE ?? "").trim().toLowerCase() !== "swap");
  if (!os) return undefined;
  const diskId = (os.DISK_ID ?? "").trim() || String(disks.indexOf(os));
  if (!/^\d+$/.test(diskId)) throw new OnevzError(`OS disk has a bad DISK_ID ${diskId}`);
  return {
    diskId,
    save: (os.SAVE ?? "").trim().toLowerCase() === "yes" || (os.SAVE_AS ?? "").trim() !== "",
  };
}

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
