/**
 * The round trips of a VM's life that move or keep a container's files, over real sshd (the
 * test bed), as OpenNebula 2.2.1 runs them, with the unprivileged driver user everywhere:
 * the node logins are the bed's driver account (standing in for oneadmin; it exists only in
 * the bed's namespaces) with ONLY the sudo rules `onevz install --sudoers` prints, and the
 * transfer manager runs on the front-end AS that account (setpriv, inside the bed's front-end
 * namespace, where the account exists), as one_tm runs as oneadmin. The
 * VMM actions go through one_vmm_ssh's calling convention, the TM actions through one_tm
 * (fixtures/oned): nothing is emulated by writing the actions' files.
 *  - saveas: deploy without SAVE, a file written inside the container, `onevm saveas` (oned's
 *    database only: the deployment copy keeps SAVE=NO), shutdown, the epilog (MV of the OS
 *    disk to the front-end, DELETE), image.rb's move, and a new VM from the saved image that
 *    holds the file;
 *  - stop and resume: SAVE, `MV H:R FE:L`, `MV FE:L/images H:R`, RESTORE, with a private area
 *    holding device nodes, setuid/setgid files, files of several uids, xattrs and an ACL: all
 *    back as they were (the front-end keeps them in one archive it never unpacks);
 *  - restart after a kill: a restart DEPLOY that adopts a stopped container, SIGKILLed
 *    mid-way, then the next DEPLOY: the user's files survive; a config removed by hand: the
 *    next DEPLOY adopts the private area;
 *  - poll on a node whose sudo refuses: a failure, never STATE=d;
 *  - the per-container lock on the node taken over ssh by processes on the front-end.
 * Needs root (sshd, setpriv, mount namespaces); no account or sudoers file of this machine
 * changes.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import * as one from "../../fixtures/oned/driver.ts";
import { oneTm } from "../../fixtures/oned/tm.ts";
import { canRunPrivilegeTests, leastPrivilegeBed, must } from "../hardening/least_privilege.ts";
import { descendants } from "../helpers/procs.ts";
import { makeTemplateTarball } from "../helpers/simnode.ts";
import { type Bed, bedSite, DENO, installDevRemotes, REPO_ROOT, run } from "../testbed/mod.ts";

const cdata = (k: string, v: string) => `<${k}><![CDATA[${v}]]></${k}>`;

/** The deployment document oned writes for a VM with one OS disk from a registered image. */
function template(vid: number, image: string, source: string): string {
  const disk = cdata("CLONE", "YES") + cdata("DISK_ID", "0") + cdata("IMAGE", image) +
    cdata("IMAGE_ID", "3") + cdata("READONLY", "NO") + cdata("SAVE", "NO") +
    cdata("SOURCE", source) + cdata("TARGET", "hda") + cdata("TYPE", "DISK");
  return `<TEMPLATE>${cdata("CPU", "0.5")}<DISK>${disk}</DISK>${cdata("MEMORY", "256")}` +
    `${cdata("NAME", `one-${vid}`)}${cdata("VMID", String(vid))}</TEMPLATE>`;
}

/** setxattr/getxattr through libc (no attr tools on the test machine). */
function xattrs() {
  const lib = Deno.dlopen("libc.so.6", {
    setxattr: { parameters: ["buffer", "buffer", "buffer", "usize", "i32"], result: "i32" },
    getxattr: { parameters: ["buffer", "buffer", "buffer", "usize"], result: "isize" },
  });
  const c = (s: string) => new TextEncoder().encode(s + "\0");
  return {
    setBytes(path: string, name: string, v: Uint8Array) {
      assert.equal(lib.symbols.setxattr(c(path), c(name), v, BigInt(v.length), 0), 0, name);
    },
    set(path: string, name: string, value: string) {
      this.setBytes(path, name, new TextEncoder().encode(value));
    },
    bytes(path: string, name: string): Uint8Array | undefined {
      const buf = new Uint8Array(256);
      const n = Number(lib.symbols.getxattr(c(path), c(name), buf, 256n));
      return n < 0 ? undefined : buf.slice(0, n);
    },
    get(path: string, name: string): string | undefined {
      const b = this.bytes(path, name);
      return b && new TextDecoder().decode(b);
    },
    getHex(path: string, name: string): string | undefined {
      const b = this.bytes(path, name);
      return b && Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    },
    close: () => lib.close(),
  };
}

interface World {
  bed: Bed;
  uid: number;
  gid: number;
  /** The front-end's oneadmin directory: image repository, <var>/<vid> (L). */
  fe: string;
  /** The driver's ssh config (logs into the nodes as the driver account). */
  sshConfig: string;
  /** oned's site for one_vmm_ssh: logs into the nodes as the driver account. */
  site: one.OneSite;
  /** tm_ssh.conf: every entry runs onevz's tm-* AS the driver account on the front-end. */
  tmConf: Record<string, string>;
  /** The node's /srv/onevz-node on the test machine. */
  node: string;
}

async function setUp(cleanups: (() => Promise<unknown>)[]): Promise<World> {
  const bed = await leastPrivilegeBed({
    nodes: ["cn1", "cn2"].map((name) => ({ name, templates: ["centos-6-x86_64"] })),
    frontEnd: false,
    nodeBin: true,
  });
  cleanups.push(() => bed.stop());
  const lp = bed.driver;
  await installDevRemotes(bed, "cn1");
  await installDevRemotes(bed, "cn2");
  await must("chown", [`${lp.uid}:${lp.gid}`, `${bed.nodes.cn2.fsDir}/vm`]);
  const node = bed.nodes.cn1.fsDir;
  await Deno.mkdir(`${node}/bin`, { recursive: true });
  // VM_DIR is the driver's on the node, like the whole front-end directory below.
  await must("chown", [`${lp.uid}:${lp.gid}`, `${node}/vm`]);
  const fe = `${bed.dir}/fe-oneadmin`;
  await Deno.mkdir(`${fe}/images`, { recursive: true });
  await Deno.mkdir(`${fe}/var`);
  // The TM runs as the driver: a wrapper per action, with the TM's environment, started in
  // the bed's front-end namespace (where the account exists: ssh needs its passwd entry).
  const env = [
    `HOME=${fe}`,
    `PATH=/usr/local/bin:/usr/bin:/bin`,
    `ONEVZ_SSH_CONFIG=${lp.sshConfig}`,
    `ONEVZ_NODE_SYSROOT=${bed.simRoot}`,
    `ONEVZ_VM_DIR=${bed.vmDir}`,
    `ONEVZ_FE_NAMES=fe`,
    `ONEVZ_SSH_PERSIST=0`,
    // (A short TMPDIR: the ssh control socket path must fit in 108 bytes.)
    `TMPDIR=/tmp`,
  ];
  const tmConf: Record<string, string> = {};
  for (const a of ["clone", "ln", "mv", "delete", "context"]) {
    const w = `${fe}/tm-${a}`;
    const argv = bed.asFrontEnd([
      "setpriv",
      `--reuid=${lp.uid}`,
      `--regid=${lp.gid}`,
      "--init-groups",
      "env",
      "-i",
      ...env,
      DENO,
      "run",
      "-A",
      "--quiet",
      `${REPO_ROOT}/main.ts`,
      `tm-${a}`,
    ]);
    await Deno.writeTextFile(w, `#!/bin/bash\nexec ${argv.map(one.sq).join(" ")} "$@"\n`, {
      mode: 0o755,
    });
    tmConf[a.toUpperCase()] = w;
  }
  await must("chown", ["-R", `${lp.uid}:${lp.gid}`, fe]);
  const site = { ...bedSite(bed), ssh: `ssh -F ${one.sq(lp.sshConfig)}` };
  return { bed, uid: lp.uid, gid: lp.gid, fe, sshConfig: lp.sshConfig, site, tmConf, node };
}

async function vmm(
  w: World,
  action: string,
  args: string[],
  stdin?: string,
  vid = 0,
  host = "cn1",
) {
  return await one.vmmSsh(w.site, host, action, args, stdin, { vid });
}

async function expectVmm(
  w: World,
  action: string,
  args: string[],
  stdin?: string,
  vid = 0,
  host = "cn1",
) {
  const r = await vmm(w, action, args, stdin, vid, host);
  assert.equal(r.result, "SUCCESS", `${action}: ${r.reply}\n${r.stderr}`);
  return r;
}

/** A transfer script through one_tm (as the driver account); it must succeed. */
async function transfer(w: World, vid: number, lines: string[]) {
  const r = await oneTm(vid, lines.join("\n") + "\n", w.tmConf);
  const logs = r.steps.map((s) => `${s.line}\n${s.out.stdout}${s.out.stderr}`).join("\n");
  assert.equal(r.result, "SUCCESS", `${r.reply}\n${logs}`);
  return r;
}

/** Register an image the way `oneimage register` does (file in the repository, 0660). */
async function register(w: World, name: string, bytes: Uint8Array): Promise<string> {
  const source = `${w.fe}/images/${name}-0123456789abcdef`;
  await Deno.writeFile(source, bytes, { mode: 0o660 });
  await must("chown", [`${w.uid}:${w.gid}`, source]);
  return source;
}

/** Prolog (CLONE of the OS image) and DEPLOY of VM `vid` from image `name` at `source`. */
async function deployVm(w: World, vid: number, name: string, source: string) {
  const R = `${w.bed.vmDir}/${vid}/images`;
  await Deno.mkdir(`${w.fe}/var/${vid}`, { recursive: true });
  await must("chown", [`${w.uid}:${w.gid}`, `${w.fe}/var/${vid}`]);
  await transfer(w, vid, [`CLONE fe:${source} cn1:${R}/disk.0`]);
  const xml = template(vid, name, source);
  const d = await expectVmm(w, "deploy", [`${R}/deployment.0`], xml, vid);
  assert.equal(d.info, String(1000 + vid));
  return { R, dir: `${w.node}/vm/${vid}/images`, xml, ctid: String(1000 + vid) };
}

/** Run a command on the node as root (the operator), over ssh. */
async function asRoot(w: World, command: string) {
  const r = await w.bed.ssh("cn1", command);
  assert.equal(r.code, 0, `${command}: ${r.stderr}`);
  return r.stdout;
}

const sim = (w: World) => w.bed.simRoot;

Deno.test({
  name:
    "e2e round trips as the driver account: saveas, stop/resume, restart after a kill, poll, lock",
  ignore: !canRunPrivilegeTests || !existsSync("/usr/bin/setpriv"),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const cleanups: (() => Promise<unknown>)[] = [];
    try {
      const w = await setUp(cleanups);
      const osImage = await register(w, "centos-5-x86", await makeTemplateTarball("bz2"));

      await t.step("saveas: the saved image holds what was written in the container", async () => {
        const vm = await deployVm(w, 51, "centos-5-x86", osImage);
        await expectVmm(w, "poll", [vm.ctid]);
        // The user writes a file inside the container (vzctl exec runs in its /).
        const ssh = await run("ssh", [
          "-F",
          w.sshConfig,
          "-n",
          "cn1",
          `sudo -n vzctl exec ${vm.ctid} 'mkdir -p root && echo kept-by-saveas > root/notes.txt'`,
        ]);
        assert.equal(ssh.code, 0, ssh.stderr);
        // onevm saveas 51 0 centos-5-saved: oned's database only.
        assert.match(await Deno.readTextFile(`${vm.dir}/deployment.0`), /SAVE><!\[CDATA\[NO/);
        await expectVmm(w, "shutdown", [vm.ctid], undefined, 51);
        // The epilog: MV of the saved disk, DELETE of R.
        const L = `${w.fe}/var/51`;
        await transfer(w, 51, [`MV cn1:${vm.R}/disk.0 fe:${L}/disk.0`, `DELETE cn1:${vm.R}`]);
        const saved = await Deno.stat(`${L}/disk.0`);
        assert.equal(saved.uid, w.uid, "the TM (the driver) wrote the saved disk");
        assert.ok(!existsSync(vm.dir), "DELETE removed R");
        assert.ok(!existsSync(`${w.node}/sim/etc/vz/conf/${vm.ctid}.conf`), "no ghost config");
        assert.doesNotMatch(await asRoot(w, "vzlist -a -H -o ctid"), /1051/);
        assert.match((await expectVmm(w, "poll", [vm.ctid])).info, /^STATE=d/);
        // image.rb: FileUtils.move(<var>/51/disk.0, SOURCE of the new image), chmod 0660.
        const source = `${w.fe}/images/centos-5-saved-fedcba9876543210`;
        await Deno.rename(`${L}/disk.0`, source);
        await Deno.chmod(source, 0o660);
        const again = await deployVm(w, 52, "centos-5-saved", source);
        assert.equal(
          await Deno.readTextFile(`${again.dir}/private/root/notes.txt`),
          "kept-by-saveas\n",
        );
        await expectVmm(w, "cancel", [again.ctid], undefined, 52);
        await transfer(w, 52, [`DELETE cn1:${again.R}`]);
      });

      await t.step(
        "stop and resume keep owners, modes, device nodes, xattrs and ACLs",
        async () => {
          const vm = await deployVm(w, 53, "centos-5-x86", osImage);
          const p = `${vm.dir}/private`;
          // What a container holds: device nodes, setuid/setgid files, several owners, xattrs,
          // an ACL.
          await Deno.mkdir(`${p}/dev`, { recursive: true });
          await must("mknod", ["-m", "666", `${p}/dev/null`, "c", "1", "3"]);
          await must("mknod", ["-m", "660", `${p}/dev/loop0`, "b", "7", "0"]);
          await must("mknod", ["-m", "600", `${p}/dev/initctl`, "p"]);
          await Deno.writeTextFile(`${p}/sbin/su`, "#!/bin/sh\n");
          await Deno.chmod(`${p}/sbin/su`, 0o4755);
          await Deno.mkdir(`${p}/home/alice`, { recursive: true });
          await Deno.writeTextFile(`${p}/home/alice/mail`, "private mail\n");
          await must("chown", ["-R", "1234:1234", `${p}/home/alice`]);
          await Deno.writeTextFile(`${p}/sbin/wall`, "#!/bin/sh\n");
          await must("chown", ["0:5678", `${p}/sbin/wall`]);
          await Deno.chmod(`${p}/sbin/wall`, 0o2755);
          const x = xattrs();
          x.set(`${p}/home/alice/mail`, "user.onevz-test", "u-value");
          x.set(`${p}/sbin/su`, "trusted.onevz-test", "t-value");
          // A POSIX ACL (user 1234 may read /sbin/wall), in the kernel's xattr form: version 2,
          // then {tag, perm, id}: USER_OBJ rwx, USER 1234 r-x, GROUP_OBJ r-x, MASK r-x, OTHER r-x.
          const acl = new Uint8Array(4 + 5 * 8);
          const dv = new DataView(acl.buffer);
          dv.setUint32(0, 2, true);
          [[0x01, 7, -1], [0x02, 5, 1234], [0x04, 5, -1], [0x10, 5, -1], [0x20, 5, -1]]
            .forEach(([tag, perm, id], i) => {
              dv.setUint16(4 + i * 8, tag, true);
              dv.setUint16(6 + i * 8, perm, true);
              dv.setUint32(8 + i * 8, id >>> 0, true);
            });
          x.setBytes(`${p}/sbin/wall`, "system.posix_acl_access", acl);
          const view = () => viewAt(p);
          const viewAt = async (p: string) => {
            const out: string[] = [];
            for (const f of ["dev/null", "dev/loop0", "dev/initctl", "sbin/su", "sbin/wall"]) {
              const st = await Deno.lstat(`${p}/${f}`);
              out.push(`${f} ${(st.mode! & 0o177777).toString(8)} ${st.uid}:${st.gid} ${st.rdev}`);
            }
            const mail = await Deno.lstat(`${p}/home/alice/mail`);
            out.push(
              `mail ${mail.uid}:${mail.gid} ${x.get(`${p}/home/alice/mail`, "user.onevz-test")}`,
            );
            out.push(`su ${x.get(`${p}/sbin/su`, "trusted.onevz-test")}`);
            out.push(`wall acl ${x.getHex(`${p}/sbin/wall`, "system.posix_acl_access")}`);
            return out;
          };
          const before = await view();
          assert.match(before.join("\n"), /^wall acl 02000000/m, "the ACL is set");
          const ownersBefore = await asRoot(w, `find ${vm.R}/private -printf '%U:%G %p\\n' | sort`);
          // onevm stop: SAVE, then epilog_stop `MV H:R FE:L`.
          const L = `${w.fe}/var/53`;
          await Deno.writeTextFile(`${L}/deployment.0`, vm.xml);
          await expectVmm(w, "save", [vm.ctid, `${vm.R}/checkpoint`], undefined, 53);
          await transfer(w, 53, [`MV cn1:${vm.R} fe:${L}`]);
          assert.ok(!existsSync(vm.dir), "R left the node");
          // Its config left with it (restore recreates it from R/ctid.conf): no ghost on cn1.
          assert.ok(!existsSync(`${w.node}/sim/etc/vz/conf/${vm.ctid}.conf`));
          assert.doesNotMatch(await asRoot(w, "vzlist -a -H -o ctid"), /1053/);
          assert.equal(await Deno.readTextFile(`${L}/deployment.0`), vm.xml, "L itself kept");
          const archive = `${L}/images/private.onevz.tar`;
          const st = await Deno.stat(archive);
          assert.equal(st.uid, w.uid);
          assert.equal(st.mode! & 0o777, 0o600);
          assert.ok(!existsSync(`${L}/images/private`), "never unpacked on the front-end");
          assert.ok(existsSync(`${L}/images/checkpoint`) && existsSync(`${L}/images/disk.0`));
          const listing = await new Deno.Command("tar", {
            args: ["-tvf", archive, "--numeric-owner"],
            stdout: "piped",
          }).output();
          const names = new TextDecoder().decode(listing.stdout);
          assert.match(names, /^crw-rw-rw- 0\/0 +1,3 .* private\/dev\/null$/m);
          assert.match(names, /^-rwsr-xr-x 0\/0 .* private\/sbin\/su$/m);
          assert.match(names, /1234\/1234 .* private\/home\/alice\/mail$/m);
          // onevm resume: prolog_resume `MV FE:L/images H:R`, then RESTORE.
          await transfer(w, 53, [`MV fe:${L}/images cn1:${vm.R}`]);
          assert.ok(!existsSync(`${L}/images`));
          assert.ok(!existsSync(`${vm.dir}/private.onevz.tar`), "unpacked and removed");
          await expectVmm(w, "restore", [`${vm.R}/checkpoint`], undefined, 53);
          assert.match((await expectVmm(w, "poll", [vm.ctid])).info, /^STATE=a/);
          assert.deepEqual(await view(), before);
          const ownersAfter = await asRoot(w, `find ${vm.R}/private -printf '%U:%G %p\\n' | sort`);
          assert.equal(ownersAfter, ownersBefore, "every file's owner as before");
          assert.doesNotMatch(
            ownersAfter,
            new RegExp(`^${w.uid}:`, "m"),
            "nothing became the driver's",
          );
          // Cold migration to cn2: SAVE, `MV cn1:R cn2:R` (relayed, root at both ends), RESTORE.
          await expectVmm(w, "save", [vm.ctid, `${vm.R}/checkpoint`], undefined, 53);
          await transfer(w, 53, [`MV cn1:${vm.R} cn2:${vm.R}`]);
          assert.ok(!existsSync(`${w.node}/sim/etc/vz/conf/${vm.ctid}.conf`), "no ghost on cn1");
          await expectVmm(w, "restore", [`${vm.R}/checkpoint`], undefined, 53, "cn2");
          const polled = await expectVmm(w, "poll", [vm.ctid], undefined, 53, "cn2");
          assert.match(polled.info, /^STATE=a/);
          const moved = `${w.bed.nodes.cn2.fsDir}/vm/53/images/private`;
          assert.deepEqual(await viewAt(moved), before, "the same files on cn2");
          x.close();
          await expectVmm(w, "cancel", [vm.ctid], undefined, 53, "cn2");
          await transfer(w, 53, [`DELETE cn2:${vm.R}`]);
        },
      );

      await t.step("restart after a kill: the next DEPLOY adopts, the files survive", async () => {
        const vm = await deployVm(w, 54, "centos-5-x86", osImage);
        await Deno.mkdir(`${vm.dir}/private/root`, { recursive: true });
        await Deno.writeTextFile(`${vm.dir}/private/root/work`, "the user's work\n");
        // The guest halts: poll says d, oned marks it UNKNOWN, the user restarts it.
        await asRoot(w, `vzctl stop ${vm.ctid}`);
        assert.match((await expectVmm(w, "poll", [vm.ctid])).info, /^STATE=d/);
        await asRoot(w, `ovzsim fault ${sim(w)} vzctl start 1 x --hang`);
        const calls = `${w.node}/sim/sim/calls.jsonl`;
        const restart = vmm(w, "deploy", [`${vm.R}/deployment.1`], vm.xml, 54);
        const until = Date.now() + 30_000;
        while (!(await Deno.readTextFile(calls)).includes('"hang":true')) {
          assert.ok(Date.now() < until, "the restart reached vzctl start");
          await new Promise((r) => setTimeout(r, 100));
        }
        // Killed mid-way (SIGKILL, as a crash): its lock stays, saying "deploy".
        const owner = JSON.parse(await Deno.readTextFile(`${vm.dir}/.onevz.lock/owner`));
        assert.equal(owner.action, "deploy");
        for (const pid of [owner.pid, ...descendants(owner.pid)]) {
          try {
            Deno.kill(pid, "SIGKILL");
          } catch { /* gone */ }
        }
        assert.equal((await restart).result, "FAILURE");
        await asRoot(w, `ovzsim clear-faults ${sim(w)}`);
        const next = await expectVmm(w, "deploy", [`${vm.R}/deployment.1`], vm.xml, 54);
        assert.match(next.stderr, /broke the lock of an interrupted deploy/);
        assert.equal(await Deno.readTextFile(`${vm.dir}/private/root/work`), "the user's work\n");
        assert.match((await expectVmm(w, "poll", [vm.ctid])).info, /^STATE=a/);
        // The node is reinstalled with /vz kept: no config, R/private holds the files.
        await asRoot(w, `vzctl stop ${vm.ctid} && rm ${sim(w)}/etc/vz/conf/${vm.ctid}.conf`);
        const adopt = await expectVmm(w, "deploy", [`${vm.R}/deployment.2`], vm.xml, 54);
        assert.match(adopt.stderr, /adopting them/);
        assert.equal(await Deno.readTextFile(`${vm.dir}/private/root/work`), "the user's work\n");
        assert.match((await expectVmm(w, "poll", [vm.ctid])).info, /^STATE=a/);
        await expectVmm(w, "cancel", [vm.ctid], undefined, 54);
        await transfer(w, 54, [`DELETE cn1:${vm.R}`]);
      });

      await t.step("poll where sudo refuses: a failure, not STATE=d", async () => {
        const fake = `${w.node}/bin/sudo`;
        await Deno.writeTextFile(
          fake,
          "#!/bin/sh\necho 'sudo: a password is required' >&2\nexit 1\n",
          { mode: 0o755 },
        );
        try {
          const r = await vmm(w, "poll", ["1099"]);
          assert.equal(r.result, "FAILURE", r.reply);
          assert.doesNotMatch(r.stdout, /STATE=/);
          assert.match(r.stderr, /password is required/);
        } finally {
          await Deno.remove(fake);
        }
        assert.match((await expectVmm(w, "poll", ["1099"])).info, /^STATE=d$/);
      });

      await t.step(
        "the node's lock, taken over ssh by front-end processes, is exclusive",
        async () => {
          const dir = `${w.bed.vmDir}/55/images`;
          await Deno.mkdir(`${w.node}/vm/55/images/.onevz.lock`, { recursive: true });
          const dead = new Deno.Command("true").spawn();
          await dead.status;
          await Deno.writeTextFile(
            `${w.node}/vm/55/images/.onevz.lock/owner`,
            JSON.stringify({ pid: dead.pid, host: Deno.hostname(), action: "deploy", since: 0 }),
          );
          const log = `${w.bed.dir}/lock.log`;
          const runs = [];
          for (let trial = 0; trial < 4; trial++) {
            await Deno.writeTextFile(log, "");
            const startAt = Date.now() + 2500;
            runs.push(
              await Promise.all([0, 1, 2].map(() =>
                new Deno.Command(DENO, {
                  args: [
                    "run",
                    "-A",
                    "--quiet",
                    `${REPO_ROOT}/tests/hardening/lock_worker.ts`,
                    dir,
                    log,
                    String(startAt),
                    "40",
                    "cn1",
                  ],
                  env: { ONEVZ_SSH_CONFIG: w.bed.sshConfig },
                  stderr: "piped",
                }).output()
              )),
            );
            let inside: string | undefined;
            for (const line of (await Deno.readTextFile(log)).split("\n").filter((l) => l)) {
              const [what, pid] = line.split(" ");
              if (what === "enter") {
                assert.equal(inside, undefined, `trial ${trial}: two inside the lock`);
                inside = pid;
              } else inside = undefined;
            }
          }
          for (const r of runs.flat()) {
            assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
          }
          assert.ok(!existsSync(`${w.node}/vm/55/images/.onevz.lock`));
        },
      );
    } finally {
      for (const c of cleanups.reverse()) await c().catch(() => {});
    }
  },
});
