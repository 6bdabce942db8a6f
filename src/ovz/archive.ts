/**
 * OS template archives: OpenNebula stores images without an extension, so the format of a
 * template tarball is read from its first bytes, and vzctl is given the matching file name.
 */
import type { Host } from "../host/host.ts";
import { readRegularHead } from "../host/files.ts";

/** The cache extensions vzctl 4.x looks for, in its lookup order. */
export type ArchiveExt = ".tar" | ".tar.gz" | ".tar.bz2" | ".tar.xz";
export const ARCHIVE_EXTS: readonly ArchiveExt[] = [".tar", ".tar.gz", ".tar.bz2", ".tar.xz"];

/** Identify a template archive from its first 265 bytes; undefined when it is none of them. */
export function archiveExtFromMagic(head: Uint8Array): ArchiveExt | undefined {
  const starts = (...bytes: number[]) => bytes.every((b, i) => head[i] === b);
  if (starts(0x1f, 0x8b)) return ".tar.gz";
  if (starts(0x42, 0x5a, 0x68)) return ".tar.bz2"; // "BZh"
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return ".tar.xz";
  const ustar = new TextDecoder().decode(head.subarray(257, 262));
  if (ustar === "ustar") return ".tar";
  return undefined;
}

/**
 * The first 265 bytes of a regular file on a host, read without following a link or waiting
 * on a FIFO (readRegularHead); anything but a regular file is an error.
 */
export async function readHead(host: Host, path: string, privileged = true): Promise<Uint8Array> {
  return await readRegularHead(host, path, 265, { privileged });
}

/** Strip a known archive extension from a file name ("centos-5-x86.tar.bz2" → "centos-5-x86"). */
export function stripArchiveExt(fileName: string): string {
  return fileName.replace(/\.(tar\.gz|tgz|tar\.bz2|tbz2?|tar\.xz|txz|tar)$/i, "");
}

/** tar's compression flag and the command that verifies a finished archive, per format. */
export const ARCHIVE_TOOLS: Record<ArchiveExt, { flag: string; verify: (f: string) => string[] }> =
  {
    ".tar.gz": { flag: "z", verify: (f) => ["gzip", "-t", "--", f] },
    ".tar.bz2": { flag: "j", verify: (f) => ["bzip2", "-t", "--", f] },
    ".tar.xz": { flag: "J", verify: (f) => ["xz", "-t", "--", f] },
    ".tar": { flag: "", verify: (f) => ["tar", "-t", "-f", f] },
  };
