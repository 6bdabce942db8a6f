/**
 * The privilege tests' node side: a test bed whose driver account (tests/testbed/bed.ts,
 * `driverUser`) is a non-root user of the bed's own, holding ONLY the rules
 * `onevz install --sudoers --group <group>` prints (visudo-checked by the bed), with the
 * simulator's tools at the /usr/sbin paths those rules name. Everything lives inside the bed's
 * mount namespaces: no account, sudoers file or /usr/sbin entry of this machine changes.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { type Bed, type BedDriver, type BedOptions, startBed } from "../testbed/mod.ts";
import { run } from "../helpers/simnode.ts";

export async function must(cmd: string, args: string[]) {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r;
}

export const canRunPrivilegeTests = Deno.uid() === 0 && existsSync("/usr/bin/sudo") &&
  existsSync("/usr/sbin/sshd") && existsSync("/etc/sudoers.d");

/** The rules are install's least-privilege ones: no ALL anywhere, no tty needed. */
export function assertLeastPrivilegeRules(d: BedDriver) {
  assert.doesNotMatch(d.rules.replace(/^#.*$/gm, ""), /NOPASSWD:\s*ALL\b|\(ALL(:ALL)?\)/);
  assert.match(d.rules, new RegExp(`^Defaults:%${d.group} !requiretty$`, "m"));
  assert.match(d.rules, new RegExp(`^%${d.group} ALL=\\(root\\) NOPASSWD: `, "m"));
}

/** A bed with the least-privilege driver account; `bed.driver` is always set. */
export async function leastPrivilegeBed(
  opts: Omit<BedOptions, "driverUser">,
): Promise<Bed & { driver: BedDriver }> {
  const bed = await startBed({ ...opts, driverUser: true });
  try {
    assertLeastPrivilegeRules(bed.driver!);
    return bed as Bed & { driver: BedDriver };
  } catch (e) {
    await bed.stop();
    throw e;
  }
}
