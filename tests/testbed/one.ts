/**
 * OpenNebula 2.2.1's driver calls for the ssh test bed: thin wrappers over the emulation in
 * fixtures/oned/driver.ts, with `ssh -F <bed ssh config>` (and `scp -F …` for the remotes
 * copy) standing in for oneadmin's ~/.ssh/config.
 */
import * as one from "../../fixtures/oned/driver.ts";
import {
  type DriverReply,
  MAGIC_RC,
  type OneSite,
  type Result,
  sq,
} from "../../fixtures/oned/driver.ts";
import { type Bed, type Output, run } from "./bed.ts";

export { type DriverReply, MAGIC_RC, type Result, sq };

/**
 * `scp -r <dir>/. HOST:SRD`, the driver's remotes copy (OpenSSH 9 uses SFTP mode: file
 * symlinks arrive as copies; directory symlinks are not copied).
 */
export async function scpRemotes(bed: Bed, fromDir: string, host: string): Promise<Output> {
  return await run("scp", ["-F", bed.sshConfig, "-r", `${fromDir}/.`, `${host}:${bed.remoteDir}`]);
}

/** The bed as an oned site: real ssh with the bed's config. */
export function bedSite(bed: Bed): OneSite {
  return {
    ssh: `ssh -F ${sq(bed.sshConfig)}`,
    remoteDir: bed.remoteDir,
    frontRemotes: bed.frontRemotes,
    env: bed.env,
    copyRemotes: (fromDir, host) => scpRemotes(bed, fromDir, host),
  };
}

/** one_vmm_ssh (see fixtures/oned/driver.ts vmmSsh). */
export function vmmSsh(
  bed: Bed,
  host: string,
  action: string,
  args: string[],
  stdin?: string | Uint8Array,
  opts: { vid?: number | string; hypervisor?: string } = {},
): Promise<DriverReply> {
  return one.vmmSsh(bedSite(bed), host, action, args, stdin, opts);
}

/** one_vmm_sh, agentless (see fixtures/oned/driver.ts vmmSh). */
export function vmmSh(
  bed: Bed,
  host: string,
  action: string,
  args: string[],
  opts: { vid?: number | string; hypervisor?: string; remotes?: string } = {},
): Promise<DriverReply> {
  return one.vmmSh(bedSite(bed), host, action, args, opts);
}

/** one_im_ssh MONITOR (see fixtures/oned/driver.ts imSsh). */
export function imSsh(
  bed: Bed,
  host: string,
  opts: { hid?: number; hypervisor?: string; update?: boolean } = {},
): Promise<DriverReply> {
  return one.imSsh(bedSite(bed), host, opts);
}

/** one_im_sh MONITOR (see fixtures/oned/driver.ts imSh). */
export function imSh(
  bed: Bed,
  host: string,
  opts: { hid?: number; hypervisor?: string; remotes?: string } = {},
): Promise<DriverReply> {
  return one.imSh(bedSite(bed), host, opts);
}

/** one_hm remote hook (see fixtures/oned/driver.ts hookSsh). */
export function hookSsh(
  bed: Bed,
  host: string,
  command: string,
  args: string,
  opts: { vid?: number; hookName?: string } = {},
): Promise<DriverReply> {
  return one.hookSsh(bedSite(bed), host, command, args, opts);
}
