/**
 * The ssh test bed itself: nodes reachable over ssh, one private /srv/onevz-node per node,
 * session environment, and OpenNebula 2.2.1's exact call conventions (ExitCode parsing,
 * SUCCESS/FAILURE mapping, exit 42 → remotes copied → rerun, stray "0" on probe stdin).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type Bed,
  DENO,
  hookSsh,
  imSh,
  imSsh,
  installDevRemotes,
  REPO_ROOT,
  run,
  SIM_BIN,
  startBed,
  vmmSh,
  vmmSsh,
  writeDevRemotes,
} from "./testbed/mod.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** A test action: prints its argv and stdin, then exits with $BEDTEST_EXIT (file) or 0. */
const ACTION = `#!/bin/bash
echo "ARGS=$*"
echo "STDIN=$(cat | od -An -c | tr -s ' ' | tr -d '\\n')"
echo "to stderr" 1>&2
code=$(cat "$(dirname "$0")/exit" 2>/dev/null || echo 0)
exit $code
`;

const PROBE = `#!/bin/bash
echo "A=1"
echo "STDIN=$(cat)"
echo "CWD=$(pwd) ARGS=$*"
`;

async function writeExec(path: string, text: string) {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  await Deno.writeTextFile(path, text, { mode: 0o755 });
  await Deno.chmod(path, 0o755);
}

Deno.test(
  "bed start-up (sshds only) answers on every port, and stop() cleans up",
  opts,
  async () => {
    // (How fast it starts is not a test: it depends on the machine's load.)
    const bed = await startBed({ nodes: [{ name: "cn1" }, { name: "cn2" }], initSimulator: false });
    for (const n of ["fn", "cn1", "cn2"]) {
      const r = await bed.ssh(n, "echo up");
      assert.equal(r.stdout, "up\n", `${n}: ${r.stderr}`);
    }
    const pids = Object.values(bed.nodes).map((n) => n.pid);
    await bed.stop();
    await assert.rejects(Deno.stat(bed.dir));
    for (const pid of pids) {
      let alive = false;
      try {
        alive = !/ Z /.test(await Deno.readTextFile(`/proc/${pid}/stat`));
      } catch { /* gone */ }
      assert.ok(!alive, `sshd ${pid} still running`);
    }
  },
);

/** What a bed must never change on this machine: accounts, sudoers.d, /usr/sbin/vz*. */
async function machineState(): Promise<string> {
  const r = await run("sh", [
    "-c",
    "getent passwd | cut -d: -f1,3 | sort; echo --; getent group | cut -d: -f1,3 | sort; " +
    "echo --; ls -A /etc/sudoers.d; echo --; ls -d /usr/sbin/vz* 2>/dev/null; true",
  ]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

Deno.test({
  name: "bed driverUser: a non-root account with only install's rules, inside the bed only",
  ignore: !(() => {
    try {
      return Deno.statSync("/usr/bin/sudo").isFile && Deno.statSync("/etc/sudoers.d").isDirectory;
    } catch {
      return false;
    }
  })(),
  ...opts,
  fn: async () => {
    const before = await machineState();
    const bed = await startBed({
      nodes: [{ name: "cn1" }],
      driverUser: true,
      localUsers: ["onevzt-other"],
    });
    const d = bed.driver!;
    let stopped = false;
    try {
      assert.equal(d.user, "onevzt-admin");
      assert.equal(d.group, "onevzt-cloud");
      assert.notEqual(d.uid, 0);
      const rules = await run(DENO, [
        "run",
        "-A",
        "--quiet",
        join(REPO_ROOT, "main.ts"),
        "install",
        "--sudoers",
        "--group",
        d.group,
      ]);
      assert.equal(d.rules, rules.stdout);
      for (const host of ["cn1", "fn"]) {
        const as = (cmd: string) => run("ssh", ["-F", d.sshConfig, "-n", host, cmd]);
        const who = await as("id -un; id -u; id -gn; echo $HOME");
        assert.equal(who.stdout, `${d.user}\n${d.uid}\n${d.group}\n${d.home}\n`, who.stderr);
        // The simulator's tools at the rules' paths; sudo runs them and nothing else.
        const vz = await as("ls -l /usr/sbin/vzctl && sudo -n -l /usr/sbin/vzctl");
        assert.equal(vz.code, 0, `${host}: ${vz.stderr}`);
        assert.match(vz.stdout, new RegExp(`-> ${SIM_BIN}/vzctl\n/usr/sbin/vzctl\n$`));
        const other = await as("sudo -n -l /usr/bin/id");
        assert.notEqual(other.code, 0, `${host}: sudo allows a command outside the rules`);
        const listed = await as("sudo -n -l");
        assert.match(listed.stdout, /\(root\) NOPASSWD: \/usr\/sbin\/vzctl, /, listed.stderr);
        assert.doesNotMatch(listed.stdout, /NOPASSWD: ALL|\(ALL/, listed.stdout);
      }
      const ran = await run("ssh", ["-F", d.sshConfig, "-n", "cn1", "sudo -n vzlist -a"]);
      assert.equal(ran.code, 0, ran.stderr);
      // A further local account: unprivileged, on every host of the bed, in no sudo rule.
      const o = bed.localUsers["onevzt-other"];
      assert.ok(o && o.uid !== d.uid && o.uid !== 0 && o.gid !== d.gid);
      const other = await bed.ssh(
        "cn1",
        "runuser -u onevzt-other -- sh -c 'id -u; id -gn; sudo -n true 2>/dev/null || echo no'",
      );
      assert.equal(other.stdout, `${o.uid}\nonevzt-other\nno\n`, other.stderr);
      // This machine as the front-end, in the bed's namespace: as the driver, and as root.
      const [cmd, ...args] = bed.asFrontEnd(["sh", "-c", "id -un; echo $HOME; sudo -n -l"], {
        user: d.user,
      });
      const fe = await run(cmd, args);
      assert.equal(fe.stdout.split("\n").slice(0, 2).join("\n"), `${d.user}\n${d.home}`, fe.stderr);
      assert.match(fe.stdout, /\(root\) NOPASSWD: \/usr\/sbin\/vzctl, /);
      const [rc, ...ra] = bed.asFrontEnd(["id", "-u", o.user]);
      assert.equal((await run(rc, ra)).stdout, `${o.uid}\n`);
      // Each host reads its own sudoers.d: a rule added for cn1 is not on fn.
      await Deno.writeTextFile(
        `${d.sudoersDirs.cn1}/extra`,
        `${d.user} ALL=(root) NOPASSWD: /usr/bin/id\n`,
        { mode: 0o440 },
      );
      const idOn = (host: string) =>
        run("ssh", ["-F", d.sshConfig, "-n", host, "sudo -n /usr/bin/id -u"]);
      assert.equal((await idOn("cn1")).stdout, "0\n");
      assert.notEqual((await idOn("fn")).code, 0, "cn1's rule reached fn");
      // Meanwhile this machine has none of it.
      assert.equal(await machineState(), before);
      assert.notEqual((await run("id", [d.user])).code, 0, `${d.user} exists outside the bed`);
      const pids = Object.values(bed.nodes).map((n) => n.pid);
      await bed.stop();
      stopped = true;
      await assert.rejects(Deno.stat(bed.dir));
      for (const pid of pids) {
        const stat = await Deno.readTextFile(`/proc/${pid}/stat`).catch(() => "");
        assert.ok(stat === "" || / Z /.test(stat), `sshd ${pid} still running`);
      }
      assert.equal(await machineState(), before);
    } finally {
      if (!stopped) await bed.stop();
    }
  },
});

Deno.test("ssh test bed with cn1 (ubc) and cn2 (vswap)", opts, async (t) => {
  const t0 = performance.now();
  const bed: Bed = await startBed({
    nodes: [{ name: "cn1", flavour: "ubc" }, { name: "cn2", flavour: "vswap" }],
  });
  console.log(
    `  bed up in ${(performance.now() - t0).toFixed(0)} ms` +
      (bed.simulator
        ? " (simulator initialised)"
        : ` (SKIPPED simulator: ${bed.simulatorSkipped})`),
  );
  try {
    await t.step("ssh works to fn, cn1 and cn2 with the bed's environment", async () => {
      for (const n of ["fn", "cn1", "cn2"]) {
        const r = await bed.ssh(n, 'echo "$ONEVZ_SSH_CONFIG|$OVZ_SIM_SSH_CONFIG|$PATH"');
        assert.equal(r.code, 0, r.stderr);
        const [cfg, simCfg, path] = r.stdout.trim().split("|");
        assert.equal(cfg, bed.sshConfig);
        assert.equal(simCfg, bed.sshConfig);
        const dirs = path.split(":");
        assert.ok(dirs.includes(SIM_BIN), path);
        assert.ok(dirs.indexOf(SIM_BIN) < dirs.indexOf("/usr/bin"), path);
      }
      for (const n of ["cn1", "cn2"]) {
        const r = await bed.ssh(n, 'echo "$OVZ_SIM_ROOT|$ONEVZ_SYSROOT"');
        assert.equal(r.stdout.trim(), `${bed.simRoot}|${bed.simRoot}`);
      }
    });

    await t.step("each node sees its own /srv/onevz-node", async () => {
      const w = await bed.ssh("cn1", `echo cn1 > ${bed.nodeRoot}/marker; ls ${bed.nodeRoot}`);
      assert.equal(w.code, 0, w.stderr);
      assert.deepEqual(w.stdout.trim().split("\n").sort(), ["marker", "scripts", "sim", "vm"]);
      const r1 = await bed.ssh("cn1", `cat ${bed.nodeRoot}/marker`);
      assert.equal(r1.stdout, "cn1\n");
      const r2 = await bed.ssh("cn2", `test -e ${bed.nodeRoot}/marker`);
      assert.equal(r2.code, 1, "marker written on cn1 is visible on cn2");
      assert.equal(await Deno.readTextFile(join(bed.nodes.cn1.fsDir, "marker")), "cn1\n");
      // Nodes reach each other and the front-end with the bed's ssh config.
      const hop = await bed.ssh(
        "cn2",
        `ssh -F "$ONEVZ_SSH_CONFIG" -n cn1 cat ${bed.nodeRoot}/marker && ` +
          `ssh -F "$ONEVZ_SSH_CONFIG" -n fn test -d ${bed.nodes.cn1.fsDir}`,
      );
      assert.equal(hop.code, 0, hop.stderr);
      assert.equal(hop.stdout, "cn1\n");
      await bed.ssh("cn1", `rm ${bed.nodeRoot}/marker`);
    });

    if (bed.simulator) {
      await t.step("the simulator answers on both nodes (vzlist -a over ssh)", async () => {
        for (const n of ["cn1", "cn2"]) {
          const r = await bed.ssh(n, "command -v vzctl && vzlist -a");
          assert.equal(r.code, 0, r.stderr);
          assert.equal(r.stdout.split("\n")[0], `${SIM_BIN}/vzctl`);
        }
      });
    }

    await t.step("one_vmm_ssh on a fresh node: exit 42 → remotes copied → rerun", async () => {
      await installDevRemotes(bed, "fn");
      await writeExec(join(bed.frontRemotes, "vmm/ovz/bedtest"), ACTION);
      for (const n of ["cn1", "cn2"]) {
        const r = await vmmSsh(bed, n, "bedtest", ["7", "x"], undefined, { vid: 7 });
        assert.equal(r.copiedRemotes, true, n);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.result, "SUCCESS");
        assert.equal(r.info, "ARGS=7 x");
        assert.equal(r.reply, "BEDTEST SUCCESS 7 ARGS=7 x");
        // ssh -n: empty stdin.
        assert.match(r.stdout, /^STDIN=$/m);
        assert.match(
          r.command,
          / -n cn\d 'if \[ -x "\/srv\/onevz-node\/scripts\/vmm\/ovz\/bedtest" \]/,
        );
        assert.match(r.stderr, /^ExitCode: 0$/m);
        // The copy landed on that node, with the dev launcher and the shims.
        const ls = await bed.ssh(
          n,
          `test -x ${bed.remoteDir}/bin/onevz && ls ${bed.remoteDir}/vmm/ovz`,
        );
        assert.equal(ls.code, 0);
        for (const a of ["deploy", "poll", "migrate", "bedtest"]) {
          assert.match(ls.stdout, new RegExp(`^${a}$`, "m"));
        }
        const again = await vmmSsh(bed, n, "bedtest", []);
        assert.equal(again.copiedRemotes, false);
      }
    });

    await t.step("ExitCode parsing and FAILURE mapping", async () => {
      await Deno.writeTextFile(join(bed.nodes.cn1.fsDir, "scripts/vmm/ovz/exit"), "3\n");
      const r = await vmmSsh(bed, "cn1", "bedtest", ["1"], undefined, { vid: 5 });
      assert.equal(r.code, 3);
      assert.equal(r.result, "FAILURE");
      assert.equal(r.rawInfo, "to stderr\nExitCode: 3\n");
      assert.equal(r.reply, "BEDTEST FAILURE 5 to stderr");
      // cn2 has no exit file: still succeeds.
      assert.equal((await vmmSsh(bed, "cn2", "bedtest", [])).result, "SUCCESS");
      await Deno.remove(join(bed.nodes.cn1.fsDir, "scripts/vmm/ovz/exit"));
    });

    await t.step(
      "a script that keeps exiting 42 fails with ExitCode: 42 after one copy",
      async () => {
        await writeExec(join(bed.frontRemotes, "vmm/ovz/missing42"), "#!/bin/sh\nexit 42\n");
        await Deno.remove(join(bed.frontRemotes, "vmm/ovz/missing42"));
        const r = await vmmSsh(bed, "cn2", "missing42", []);
        assert.equal(r.copiedRemotes, true);
        assert.equal(r.code, 42);
        assert.equal(r.result, "FAILURE");
        assert.equal(r.info, "ExitCode: 42");
      },
    );

    await t.step("deploy-style call: exact stdin bytes, no -n", async () => {
      const doc = "<TEMPLATE><NAME>a b</NAME></TEMPLATE>";
      const r = await vmmSsh(bed, "cn2", "bedtest", [`${bed.vmDir}/3/images/deployment.0`], doc);
      assert.equal(r.result, "SUCCESS", r.stderr);
      assert.doesNotMatch(r.command, / -n /);
      assert.equal(r.info, `ARGS=${bed.vmDir}/3/images/deployment.0`);
      const got = r.stdout.split("\n")[1];
      assert.ok(got.startsWith("STDIN= <"), got);
      assert.ok(got.endsWith(">"), `no trailing newline expected: ${got}`);
    });

    await t.step("onevz poll through one_vmm_ssh on both nodes", async () => {
      for (const n of ["cn1", "cn2"]) {
        const r = await vmmSsh(bed, n, "poll", ["999999"], undefined, { vid: 1 });
        assert.equal(r.copiedRemotes, false);
        assert.equal(r.result, r.code === 0 ? "SUCCESS" : "FAILURE");
        assert.doesNotMatch(r.stdout, /^ExitCode:/m);
        if (r.result === "SUCCESS") assert.match(r.info, /STATE=/);
        else assert.match(r.info, /^onevz: /, r.stderr);
        assert.notEqual(r.code, 42);
      }
    });

    await t.step("one_im_ssh: run_probes with a stray 0 on stdin, cwd im/<hyp>.d", async () => {
      await writeExec(join(bed.frontRemotes, "im/bedtest.d/probe"), PROBE);
      const r = await imSsh(bed, "cn1", { hid: 4, hypervisor: "bedtest", update: true });
      assert.equal(r.result, "SUCCESS", r.stderr);
      assert.equal(
        r.reply,
        `MONITOR SUCCESS 4 A=1 STDIN=0 CWD=${bed.remoteDir}/im/bedtest.d ARGS=bedtest cn1 `,
      );
      await writeExec(join(bed.frontRemotes, "im/bedtest.d/zfail"), "#!/bin/sh\nexit 5\n");
      const f = await imSsh(bed, "cn1", { hid: 4, hypervisor: "bedtest", update: true });
      assert.equal(f.code, 5);
      assert.equal(f.reply, "MONITOR FAILURE 4 Could not monitor host cn1.");
      assert.match(f.stderr, /^Error executing zfail$/m);
    });

    await t.step("one_im_sh and one_vmm_sh run the front-end remotes locally", async () => {
      await writeExec(join(bed.frontRemotes, "vmm/ovz_fe/bedtest"), ACTION);
      const v = await vmmSh(bed, "cn2", "bedtest", ["9", "/x/checkpoint"], { vid: 9 });
      assert.equal(v.reply, "BEDTEST SUCCESS 9 ARGS=cn2 9 /x/checkpoint");
      assert.match(v.stdout, /^STDIN=$/m);
      await Deno.remove(join(bed.frontRemotes, "im/bedtest.d/zfail"));
      const m = await imSh(bed, "cn2", { hypervisor: "bedtest" });
      assert.equal(m.result, "SUCCESS", m.stderr);
      assert.match(m.info, /^A=1 STDIN= CWD=.*\/im\/bedtest\.d ARGS=bedtest cn2 $/);
    });

    await t.step("one_hm remote hook: ssh -n HOST '<cmd> <args>'", async () => {
      const ok = await hookSsh(bed, "cn1", "/bin/echo", "", { vid: 2, hookName: "fw" });
      assert.equal(ok.reply, "EXECUTE SUCCESS 2 fw");
      assert.equal(ok.stdout, "-\n");
      const bad = await hookSsh(bed, "cn1", "/bin/sh", "-c false", { vid: 2, hookName: "fw" });
      assert.equal(bad.reply, "EXECUTE FAILURE 2 fw");
    });
  } finally {
    await bed.stop();
  }
});

Deno.test("writeDevRemotes lays out the dev tree", opts, async () => {
  const dir = await Deno.makeTempDir({ prefix: "onevz-remotes-" });
  try {
    await writeDevRemotes(dir);
    for (
      const f of [
        "bin/onevz",
        "vmm/ovz/deploy",
        "vmm/ovz/restore",
        "vmm/ovz_fe/poll",
        "im/ovz.d/probe",
        "im/run_probes",
      ]
    ) {
      assert.ok(((await Deno.stat(join(dir, f))).mode! & 0o111) !== 0, f);
    }
    const shim = await Deno.readTextFile(join(dir, "vmm/ovz/deploy"));
    assert.match(shim, /exec -a deploy "\$remotes\/bin\/onevz" "\$@"/);
    const help = await new Deno.Command(join(dir, "vmm/ovz/poll"), { args: ["--help"] }).output();
    assert.equal(help.code, 0);
    assert.match(new TextDecoder().decode(help.stdout), /^Usage: onevz poll/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
