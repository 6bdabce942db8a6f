/**
 * Every fix doctor prints works: each test breaks a node (or the front-end) one way at a time,
 * runs doctor, runs every printed fix command exactly as printed — as the user and where
 * doctor said (on the front-end, or as root on the node through the bed's root login) — runs
 * doctor again and asserts that each check that had a fix now passes. Where no command can
 * fix a problem (sshd down, a name that does not resolve, a development launcher), doctor must
 * give no command, and say what to do in words.
 *
 * The node side is real: an ssh test bed node run by the OpenVZ simulator, logged into as the
 * bed's unprivileged driver account with ONLY the rules `onevz install --sudoers` prints
 * (tests/hardening/least_privilege.ts). The breakages and the fixes change the node's own
 * /etc/sudoers.d, which is the bed's private directory for cn1 (the sudoers fix writes
 * /etc/sudoers.d/onevz there, the secure_path fix zz-onevz-secure-path): no sudoers file or
 * account of this machine changes. The front-end's doctor and its fixes run on this machine in
 * the bed's front-end namespace, where the driver account exists (OpenNebula's user, who owns
 * ONE_LOCATION and whom doctor names).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { formatResults, runChecks } from "../src/admin/doctor.ts";
import { install, sha256 } from "../src/admin/install.ts";
import { installPaths } from "../src/admin/layout.ts";
import type { CheckResult } from "../src/admin/checks/types.ts";
import { canRunPrivilegeTests, leastPrivilegeBed } from "./hardening/least_privilege.ts";
import { stockOneLocation } from "./helpers/one_tree.ts";
import {
  type Bed,
  type BedDriver,
  DENO,
  installDevRemotes,
  REPO_ROOT,
  run,
} from "./testbed/mod.ts";

const NAME = "onevz-doctor-fixes";
const canRun = canRunPrivilegeTests && (() => {
  try {
    return Deno.statSync(join(REPO_ROOT, "fixtures/sim/bin/ovzsim")).isFile;
  } catch {
    return false;
  }
})();
const opts = { ignore: !canRun, sanitizeOps: false, sanitizeResources: false };

const byId = (rs: CheckResult[], id: string) => {
  const r = rs.find((x) => x.id === id);
  assert.ok(r, `no result ${id} in ${rs.map((x) => x.id).join(", ")}`);
  return r;
};

/** A directory with `onevz` = this checkout (the operator's onevz on PATH, for the fixes). */
async function onevzOnPath(dir: string): Promise<string> {
  const bin = join(dir, "path-bin");
  await Deno.mkdir(bin, { recursive: true });
  await Deno.writeTextFile(
    join(bin, "onevz"),
    `#!/bin/sh\nexec ${DENO} run -A --quiet --no-lock ${REPO_ROOT}/main.ts "$@"\n`,
    { mode: 0o755 },
  );
  await Deno.chmod(bin, 0o755);
  await Deno.chmod(join(bin, "onevz"), 0o755);
  return bin;
}

interface World {
  bed: Bed & { driver: BedDriver };
  /** The driver account (OpenNebula's user on the front-end, the nodes' login). */
  lp: BedDriver;
  user: string;
  /** The front-end's ssh config: logs in as the driver user. */
  sshConfig: string;
  /** The PATH fixes run with on the front-end (onevz first). */
  path: string;
}

async function setUp(): Promise<World> {
  // The driver account and its rules exist only in the bed's namespaces; cn1's sudoers.d is
  // its own (bed.driver.sudoersDirs.cn1), which the breakages below change.
  const bed = await leastPrivilegeBed({ nodes: [{ name: "cn1", flavour: "vswap" }] });
  try {
    const lp = bed.driver;
    const fs = bed.nodes.cn1.fsDir;
    // The driver user owns VM_DIR and SCRIPTS_REMOTE_DIR on a node, as the seed sets up.
    for (const d of ["vm", "scripts"]) await Deno.chown(join(fs, d), lp.uid, lp.gid);
    const path = `${await onevzOnPath(bed.dir)}:${Deno.env.get("PATH")}`;
    return { bed, lp, user: lp.user, sshConfig: lp.sshConfig, path };
  } catch (e) {
    await bed.stop();
    throw e;
  }
}

async function tearDown(w: World) {
  await w.bed.stop();
}

/** doctor's node checks for `hosts`, logged in as the driver user. */
async function doctorNodes(w: World, hosts: string[]): Promise<CheckResult[]> {
  const env: Record<string, string> = {
    ...w.bed.env,
    ONEVZ_SSH_CONFIG: w.sshConfig,
    ONEVZ_SSH_PERSIST: "0",
  };
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    if (k === "PATH") continue;
    saved[k] = Deno.env.get(k);
    Deno.env.set(k, v);
  }
  try {
    return await runChecks(
      {
        hosts,
        frontend: "fn",
        vmDir: w.bed.vmDir,
        remoteDir: w.bed.remoteDir,
        skipFrontend: true,
      },
      (k) => Deno.env.get(k),
    );
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) Deno.env.delete(k);
      else Deno.env.set(k, v);
    }
  }
}

/**
 * Run a printed fix exactly as printed, as the user and where the result says: on the
 * front-end (this machine, in the bed's front-end namespace where its accounts exist), or on
 * a node through the bed's root login.
 */
async function runFix(
  r: CheckResult,
  o: { bed: Bed; path: string; home?: string },
): Promise<void> {
  const who = r.fixAs ?? { user: "root", on: "front-end" };
  let out;
  if (who.on === "front-end") {
    const env = ["PATH=" + o.path, "ONEVZ_DEV_LAUNCHER=1", ...(o.home ? [`HOME=${o.home}`] : [])];
    const [cmd, ...args] = o.bed.asFrontEnd(
      ["env", ...env, "sh", "-c", r.fix!],
      who.user === "root" ? {} : { user: who.user },
    );
    out = await run(cmd, args);
  } else {
    assert.equal(who.user, "root", `a node fix as ${who.user}: ${r.fix}`);
    out = await o.bed.ssh(who.on, r.fix!); // a root login on that node
  }
  assert.equal(out.code, 0, `fix of ${r.id} failed: ${r.fix}\n${out.stdout}${out.stderr}`);
}

/**
 * The test's core: `check` shows `id` failing (or warning); every printed fix command is run;
 * afterwards every check that had a fix passes. Returns the results before the fixes.
 */
async function breakFixRecheck(
  check: () => Promise<CheckResult[]>,
  id: string,
  o: { bed: Bed; path: string; home?: string; expectFix?: boolean },
): Promise<CheckResult[]> {
  const before = await check();
  const broken = byId(before, id);
  assert.notEqual(broken.status, "ok", formatResults(before));
  const fixes = before.filter((r) => r.status !== "ok" && r.fix);
  if (o.expectFix !== false) assert.ok(broken.fix, `${id} has no fix:\n${formatResults(before)}`);
  for (const r of fixes) await runFix(r, o);
  const after = await check();
  for (const r of fixes) {
    assert.equal(
      byId(after, r.id).status,
      "ok",
      `after its fix (${r.fix}):\n${formatResults(after)}`,
    );
  }
  return before;
}

Deno.test({
  name:
    "doctor fixes: a node with only the printed rules passes; each broken node's printed fix works",
  ...opts,
  fn: async () => {
    const w = await setUp();
    try {
      const { bed } = w;
      const fs = bed.nodes.cn1.fsDir;
      const check = () => doctorNodes(w, ["cn1"]);
      const fixOpts = { bed, path: w.path };

      // Healthy: only the printed rules, as the driver user — nothing to fix.
      const healthy = await check();
      assert.deepEqual(
        healthy.filter((r) => r.status !== "ok").map((r) => r.id),
        [],
        formatResults(healthy),
      );

      // cn1's /etc/sudoers.d, as this machine sees it: the bed's, holding the printed rules
      // (`onevz`, the name the sudoers fix writes too) and the simulator's env_keep.
      const sudoersD = bed.driver.sudoersDirs.cn1;
      const rules = join(sudoersD, "onevz");
      assert.equal(await Deno.readTextFile(rules), w.lp.rules);

      // No sudo rules at all (a fresh node): the sudoers fix from the front-end.
      const aside = join(bed.dir, "rules-aside");
      await Deno.rename(rules, aside);
      try {
        const rs = await breakFixRecheck(check, "node.sudo", fixOpts);
        assert.match(byId(rs, "node.sudo").message, /cannot run sudo without a password/);
        assert.match(byId(rs, "node.sudo").fix!, / \| ssh -F \S+ root@cn1 /);
        assert.ok(await Deno.lstat(rules), "the fix wrote cn1's /etc/sudoers.d/onevz");
      } finally {
        await Deno.remove(rules).catch(() => {});
        await Deno.rename(aside, rules);
      }

      // The seed's sudoers: ALL, and requiretty from /etc/sudoers (a file that sorts first).
      const seedFile = join(sudoersD, `0${NAME}-seed`);
      await Deno.rename(rules, aside);
      await Deno.writeTextFile(
        seedFile,
        `Defaults:${w.user} requiretty\n${w.user} ALL=(ALL) NOPASSWD: ALL\n`,
        { mode: 0o440 },
      );
      try {
        const rs = await breakFixRecheck(check, "node.sudo", fixOpts);
        assert.match(byId(rs, "node.sudo").message, /requires a tty/);
        // Then the ALL rule: a warning whose remedy is an edit, in words.
        const after = await check();
        const scope = byId(after, "node.sudoers_scope");
        assert.equal(scope.status, "warning");
        assert.equal(scope.fix, undefined);
        assert.match(scope.todo!, /delete the rule granting ALL/);
      } finally {
        await Deno.remove(seedFile).catch(() => {});
        await Deno.remove(rules).catch(() => {});
        await Deno.rename(aside, rules);
      }

      // A later sudoers entry whose secure_path misses /sbin (vzfirewall's iptables-restore).
      const pathFile = join(sudoersD, `${NAME}-path`);
      await Deno.writeTextFile(pathFile, `Defaults:${w.user} secure_path="/usr/bin:/bin"\n`, {
        mode: 0o440,
      });
      try {
        await breakFixRecheck(check, "node.sudo_path", fixOpts);
      } finally {
        await Deno.remove(pathFile).catch(() => {});
        await Deno.remove(join(sudoersD, "zz-onevz-secure-path")).catch(() => {});
      }

      // VM_DIR root's; SCRIPTS_REMOTE_DIR missing under a directory the user cannot write.
      await Deno.chown(join(fs, "vm"), 0, 0);
      await Deno.remove(join(fs, "scripts"), { recursive: true });
      const rs = await breakFixRecheck(check, "node.vm_dir", fixOpts);
      assert.equal(byId(rs, "node.remote_dir").status, "failure");
      assert.deepEqual(byId(rs, "node.vm_dir").fixAs, { user: "root", on: "cn1" });

      // The OS template cache gone.
      const tpl = /^TEMPLATE=(.*)$/m.exec(
        await Deno.readTextFile(join(fs, "sim/etc/vz/vz.conf")),
      )?.[1]?.replaceAll('"', "");
      assert.ok(tpl, "the simulator's vz.conf names TEMPLATE");
      await Deno.remove(join(fs, tpl.replace(bed.nodeRoot, "")) + "/cache", { recursive: true });
      await breakFixRecheck(check, "node.template_cache", fixOpts);

      // Nothing below has a command that could fix it: doctor says what to do instead.
      // The development launcher in SCRIPTS_REMOTE_DIR.
      await installDevRemotes(bed, "cn1");
      let words = await check();
      let r = byId(words, "node.onevz");
      assert.equal(r.status, "failure");
      assert.equal(r.fix, undefined);
      assert.match(r.message, /not the compiled onevz/);
      assert.match(r.todo!, /README §10/);
      await Deno.remove(join(fs, "scripts/bin/onevz"));

      // A key the node does not accept: ssh-copy-id, in words (it asks for a password).
      const nokey = join(bed.dir, "ssh_config_nokey");
      await Deno.writeTextFile(
        nokey,
        `Host cn1-nokey\n  HostName 127.0.0.1\n  Port ${bed.nodes.cn1.port}\n  User ${w.user}\n` +
          `  IdentityFile ${bed.dir}/no-such-key\n  IdentitiesOnly yes\n  BatchMode yes\n` +
          "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n",
      );
      const wNokey = { ...w, sshConfig: nokey };
      r = byId(await doctorNodes(wNokey, ["cn1-nokey"]), "node.ssh");
      assert.equal(r.fix, undefined);
      assert.match(r.message, /Permission denied/);
      assert.match(r.todo!, /ssh-copy-id \S+@cn1-nokey asks for the password once/);

      // A name that does not resolve, and a node whose sshd is down: no ssh-copy-id.
      words = await doctorNodes(w, ["cn9.invalid"]);
      assert.equal(byId(words, "node.resolve").fix, undefined);
      assert.match(byId(words, "node.ssh").todo!, /name resolution/);
      assert.doesNotMatch(formatResults(words), /ssh-copy-id/);
      Deno.kill(bed.nodes.cn1.pid, "SIGTERM");
      for (
        let i = 0;
        i < 100 && (await run("ssh", ["-F", bed.sshConfig, "cn1", "true"])).code === 0;
        i++
      ) {
        await new Promise((res) => setTimeout(res, 50));
      }
      words = await check();
      r = byId(words, "node.ssh");
      assert.equal(r.fix, undefined);
      assert.match(r.message, /Connection refused/);
      assert.match(r.todo!, /start sshd/);
      assert.doesNotMatch(formatResults(words), /ssh-copy-id/);
    } finally {
      await tearDown(w);
    }
  },
});

Deno.test({
  name: "doctor fixes: each broken front-end's printed fix works, run as the user doctor names",
  ...opts,
  fn: async () => {
    const w = await setUp();
    const dir = await Deno.makeTempDir({ prefix: "onevz-doctor-fe-fix-" });
    try {
      await Deno.chmod(dir, 0o755);
      const loc = join(dir, "one");
      await stockOneLocation(loc);
      const paths = installPaths({ oneLocation: loc });
      await install({
        paths,
        binary: { kind: "launcher", deno: DENO, main: join(REPO_ROOT, "main.ts") },
        onedConf: true,
        say: () => {},
      });
      // OpenNebula's tree belongs to its user; doctor runs as root here.
      await run("chown", ["-R", `${w.lp.uid}:${w.lp.gid}`, loc]);
      const auth = join(dir, "one_auth");
      await Deno.writeTextFile(auth, `${w.user}:pw\n`, { mode: 0o600 });
      await Deno.chmod(auth, 0o600);
      const fakeSsh = join(dir, "fake-ssh"); // ssh to localhost is not what this test is about
      await Deno.writeTextFile(fakeSsh, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
      const env: Record<string, string> = {
        ONE_LOCATION: loc,
        ONE_AUTH: auth,
        ONE_XMLRPC: "http://localhost:2633/RPC2",
        HOME: dir,
      };
      // doctor as root on the front-end: this machine, in the bed's front-end namespace, where
      // OpenNebula's user (the driver account) exists; ssh faked through ONEVZ_SSH.
      const check = async (): Promise<CheckResult[]> => {
        const [cmd, ...args] = w.bed.asFrontEnd([
          DENO,
          "run",
          "-A",
          "--quiet",
          "--no-lock",
          join(REPO_ROOT, "tests/helpers/doctor_checks.ts"),
          JSON.stringify({
            options: { hosts: [], frontend: "fn", vmDir: "/x", remoteDir: "/y" },
            env,
          }),
        ]);
        const r = await run(cmd, args, { env: { ONEVZ_SSH: fakeSsh } });
        assert.equal(r.code, 0, `doctor: ${r.stderr}`);
        return JSON.parse(r.stdout);
      };
      const home = w.lp.home;
      const o = { bed: w.bed, path: w.path, home };
      const rs0 = await check();
      // Installed from this checkout: only the launcher fails (words: build the executable).
      assert.deepEqual(
        rs0.filter((r) => r.status !== "ok").map((r) => r.id),
        ["frontend.remotes.executable"],
        formatResults(rs0),
      );
      assert.equal(byId(rs0, "frontend.remotes.executable").fix, undefined);

      // World-readable auth file.
      await Deno.chmod(auth, 0o644);
      await breakFixRecheck(check, "frontend.env.one_auth", o);

      // A remotes file gone, tm_ovz.conf gone, a remote not executable, the defaults file gone:
      // install (as OpenNebula's user, not as the root running doctor) puts them back.
      await Deno.remove(join(paths.remotes, "vmm/ovz/poll"));
      await Deno.remove(paths.tmOvzConf);
      await Deno.remove(join(paths.etc, "vmm_ssh/vmm_ssh_ovz.conf"));
      let rs = await breakFixRecheck(check, "frontend.remotes", o);
      assert.deepEqual(byId(rs, "frontend.remotes").fixAs, { user: w.user, on: "front-end" });
      assert.equal(byId(rs, "frontend.tm_ovz").status, "failure");
      const st = await Deno.stat(paths.tmOvzConf);
      assert.equal(st.uid, w.lp.uid, "the fix ran as OpenNebula's user");
      await Deno.chmod(join(paths.remotes, "hooks/vzfirewall.sh"), 0o644);
      await breakFixRecheck(check, "frontend.remotes", o);

      // The onevz sections missing from oned.conf: install --oned-conf.
      await stockOneLocation(join(dir, "fresh"));
      await Deno.copyFile(join(dir, "fresh/etc/oned.conf"), paths.onedConf);
      await breakFixRecheck(check, "frontend.oned.tm_mad", o);

      // The image repository missing, then root's: fixed as root, for OpenNebula's user.
      await Deno.remove(join(loc, "var/images"), { recursive: true });
      rs = await breakFixRecheck(check, "frontend.image_repository", o);
      assert.match(byId(rs, "frontend.image_repository").fix!, new RegExp(`chown ${w.user} `));
      await Deno.chown(join(loc, "var/images"), 0, 0);
      rs = await breakFixRecheck(check, "frontend.image_repository", o);
      assert.doesNotMatch(byId(rs, "frontend.image_repository").fix!, /chown root/);

      // tm_ssh.conf pointed at onevz by an earlier onevz (listed in its manifest).
      const m = JSON.parse(await Deno.readTextFile(paths.manifest));
      const text = `CLONE=${paths.tmDir}/tm-clone\nMV=${paths.tmDir}/tm-mv\n`;
      await Deno.writeTextFile(paths.tmSshConf, text);
      m.files.push({ path: paths.tmSshConf, kind: "file", sha256: sha256(text) });
      await Deno.writeTextFile(paths.manifest, JSON.stringify(m));
      await breakFixRecheck(check, "frontend.tm_ssh", o);

      // No command can fix these: words only.
      const vmm = (await Deno.readTextFile(paths.onedConf)).replace(
        /# BEGIN onevz[\s\S]*# END onevz\n/,
        "",
      ) + 'VM_MAD = [ name = "vmm_ovz", executable = "one_vmm_ssh", arguments = "ovz",\n' +
        '  default = "vmm_ssh/vmm_ssh_ovz.conf", type = "kvm" ]\n';
      await Deno.writeTextFile(paths.onedConf, vmm);
      rs = await check();
      let r = byId(rs, "frontend.oned.vm_mad");
      assert.equal(r.status, "failure");
      assert.equal(r.fix, undefined, "install leaves the operator's own section alone");
      assert.match(r.todo!, /edit the VM_MAD named "vmm_ovz".*type = "xml"/);
      await Deno.remove(paths.onedConf);
      rs = await check();
      r = byId(rs, "frontend.oned.conf");
      assert.equal(r.fix, undefined);
      assert.doesNotMatch(formatResults(rs), /--oned-conf/);
      assert.match(r.todo!, /point ONE_LOCATION at the OpenNebula installation/);
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await tearDown(w);
    }
  },
});
