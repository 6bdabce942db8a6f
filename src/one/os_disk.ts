/**
 * The OS disk of a deployment file, as shutdown and tm-mv read it from a VM directory: which
 * DISK_ID holds the container's files, and whether the file says it is saved.
 */
import { OnevzError } from "../cli/errors.ts";
import { parseTemplateXml, vectors } from "./template.ts";

export interface OsDisk {
  diskId: string;
  /** SAVE=yes (any case) or SAVE_AS present in this file (`onevm saveas` does not update it). */
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
