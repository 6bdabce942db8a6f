/**
 * The node side of the privilege tests: a real `oneadmin` in group `cloud`, ONLY the sudoers
 * rules `onevz install --sudoers` prints (validated with visudo), a test-only env_keep for the
 * simulator's root (it grants nothing), and the simulator's tools at the /usr/sbin paths the
 * rules name (only where nothing is installed). `undo()` removes what was added; the account
 * stays (harmless and reusable).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { REPO, run, SIM_BIN } from "../helpers/simnode.ts";

const TOOLS = ["vzctl", "vzlist", "vzmigrate", "vzfirewall"];

export async function must(cmd: string, args: string[]) {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r;
}

export const canRunPrivilegeTests = Deno.uid() === 0 && existsSync("/usr/bin/sudo") &&
  existsSync("/usr/sbin/sshd");

export interface LeastPrivilege {
  uid: number;
  gid: number;
  /** The rules as `install --sudoers` printed them. */
  rules: string;
  undo(): Promise<void>;
}

/** Set up the node side; `name` keeps each test's sudoers files apart. */
export async function leastPrivilege(name: string): Promise<LeastPrivilege> {
  const undo: (() => Promise<unknown>)[] = [];
  const result = {
    uid: 0,
    gid: 0,
    rules: "",
    undo: async () => {
      for (const u of undo.reverse()) await u().catch(() => {});
    },
  };
  try {
    if ((await run("getent", ["group", "cloud"])).code !== 0) await must("groupadd", ["cloud"]);
    if ((await run("id", ["oneadmin"])).code !== 0) {
      await must("useradd", ["-m", "-g", "cloud", "-s", "/bin/bash", "oneadmin"]);
    }
    // An account another test made may lack the group the %cloud rules are written for.
    await must("usermod", ["-a", "-G", "cloud", "oneadmin"]);
    result.uid = Number((await must("id", ["-u", "oneadmin"])).stdout.trim());
    result.gid = Number((await must("id", ["-g", "oneadmin"])).stdout.trim());

    // The rules, exactly as printed; no ALL anywhere.
    result.rules = (await must(`${REPO}/node_modules/.bin/deno`, [
      "run",
      "-A",
      "--quiet",
      `${REPO}/main.ts`,
      "install",
      "--sudoers",
    ])).stdout;
    assert.doesNotMatch(result.rules.replace(/^#.*$/gm, ""), /NOPASSWD:\s*ALL\b|\(ALL(:ALL)?\)/);
    assert.match(result.rules, /^Defaults:%cloud !requiretty$/m);
    const files: [string, string][] = [
      [`/etc/sudoers.d/${name}`, result.rules],
      [
        `/etc/sudoers.d/${name}-simenv`,
        'Defaults:%cloud env_keep += "OVZ_SIM_ROOT ONEVZ_SYSROOT OVZ_SIM_SSH_CONFIG"\n',
      ],
    ];
    for (const [path, text] of files) {
      const tmp = `${path}.tmp`;
      await Deno.writeTextFile(tmp, text, { mode: 0o440 });
      const check = await run("visudo", ["-cf", tmp]);
      if (check.code !== 0) await Deno.remove(tmp).catch(() => {});
      assert.equal(check.code, 0, `visudo: ${check.stdout}${check.stderr}`);
      await Deno.rename(tmp, path);
      undo.push(() => Deno.remove(path));
    }
    for (const t of TOOLS) {
      const p = `/usr/sbin/${t}`;
      if (existsSync(p)) continue;
      await Deno.symlink(`${SIM_BIN}/${t}`, p);
      undo.push(() => Deno.remove(p));
    }
    return result;
  } catch (e) {
    await result.undo();
    throw e;
  }
}
