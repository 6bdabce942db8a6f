/**
 * The agentless poll snapshot (README §13, src/actions/vmm/poll_snapshot.ts), end to end: the
 * front-end runs the `vmm/ovz_fe/*` entries in one_vmm_sh's calling convention; the nodes are
 * real sshds (tests/testbed) logged into as the bed's driver account (it exists only inside the
 * bed) with only the `install --sudoers` rules,
 * holding simulated running containers (`ovzsim populate`). Every ssh the front-end starts is
 * logged through an ONEVZ_SSH wrapper, one line per invocation, so round trips are counted.
 *
 * Properties: one ssh round trip per host per window, whatever the number of polls; every
 * other VMM action makes the next poll read the node again; a container the snapshot does not
 * list as running is read directly (never `d` from the snapshot); concurrent polls fetch once
 * and each gets a whole answer; the window ends reads (ONEVZ_POLL_WINDOW, VM_POLLING_INTERVAL)
 * and 0 turns it off; the snapshot lives only in the 0700 per-user directory; USEDCPU is the
 * use between the host's last two reads, with no CPU sample written on the node.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import * as one from "../../fixtures/oned/driver.ts";
import { sq } from "../../fixtures/oned/driver.ts";
import { canRunPrivilegeTests, leastPrivilegeBed, must } from "../hardening/least_privilege.ts";
import { type Bed, writeDevRemotes } from "../testbed/mod.ts";
import {
  cleanupVm,
  ctStatus,
  imagesDir,
  local,
  NODE_ROOT,
  pollValues,
  prolog,
  REPO,
  show,
  TEST_OPTS,
} from "./helpers.ts";

const VPS145 = await Deno.readTextFile(`${REPO}/fixtures/templates/vps145.xml`);
const VID = 45;
const CTID = 1045;
/** Simulated running containers on cn1: 2001 … 2000 + COUNT. */
const COUNT = 12;
const FIRST = 2001;

interface Setup {
  bed: Bed;
  /** The front-end remotes (vmm/ovz_fe/…). */
  remotes: string;
  env: Record<string, string>;
  sshLog: string;
  /** XDG_RUNTIME_DIR of the front-end: the snapshot lives in <xdg>/onevz-ssh-<uid>/. */
  xdg: string;
  oneLocation: string;
  uid: number;
  gid: number;
  undo: () => Promise<void>;
}

const privateDir = (s: Setup) => `${s.xdg}/onevz-ssh-${Deno.uid()}`;

async function setUp(): Promise<Setup> {
  const undo: (() => Promise<unknown>)[] = [];
  const done = async () => {
    for (const u of undo.reverse()) await u().catch(() => {});
  };
  try {
    const bed = await leastPrivilegeBed({
      nodes: ["cn1", "cn2"].map((name) => ({ name, templates: ["centos-6-x86_64"] })),
      frontEnd: false,
    });
    undo.push(() => bed.stop());
    const lp = bed.driver;
    if (!bed.simulator) throw new Error(`needs the OpenVZ simulator: ${bed.simulatorSkipped}`);
    for (const n of ["cn1", "cn2"]) {
      await must("chown", [`${lp.uid}:${lp.gid}`, join(bed.nodes[n].fsDir, "vm")]);
    }
    const populate = await bed.ssh(
      "cn1",
      `ovzsim populate ${bed.simRoot} ${COUNT} --first ${FIRST} --ostemplate centos-6-x86_64`,
    );
    assert.equal(populate.code, 0, populate.stderr);
    // The front-end (this test, as root) logs in as the driver with the driver's own key.
    const sshConfig = lp.sshConfig;
    const oneLocation = join(bed.dir, "one");
    const remotes = join(oneLocation, "var/remotes");
    await writeDevRemotes(remotes);
    // One line per ssh invocation (the snapshot's remote command spans lines).
    const sshLog = join(bed.dir, "ssh.log");
    const wrapper = join(bed.dir, "ssh-logged");
    await Deno.writeTextFile(
      wrapper,
      `#!/bin/bash\nprintf 'ssh %s\\n' "$(printf '%s ' "$@" | tr '\\n' ' ')" >> ${
        sq(sshLog)
      }\nexec ssh "$@"\n`,
      { mode: 0o755 },
    );
    // A short private XDG_RUNTIME_DIR (socket paths are limited to 108 bytes).
    const xdg = await Deno.makeTempDir({ dir: "/tmp", prefix: "ovzsn" });
    undo.push(() => Deno.remove(xdg, { recursive: true }));
    undo.push(() => closeMasters(s));
    // The front-end's PATH has no OpenVZ tools: whatever ran them locally would fail.
    const path = (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")
      .filter((d) => d && !d.startsWith(`${REPO}/fixtures`)).join(":");
    const env = {
      PATH: path,
      LANG: "C",
      ONE_LOCATION: oneLocation,
      ONEVZ_SSH_CONFIG: sshConfig,
      ONEVZ_NODE_SYSROOT: `${NODE_ROOT}/sim`,
      ONEVZ_VM_DIR: bed.vmDir,
      ONEVZ_SSH: wrapper,
      XDG_RUNTIME_DIR: xdg,
      ONEVZ_POLL_WINDOW: "600",
    };
    const s: Setup = {
      bed,
      remotes,
      env,
      sshLog,
      xdg,
      oneLocation,
      uid: lp.uid,
      gid: lp.gid,
      undo: done,
    };
    return s;
  } catch (e) {
    await done();
    throw e;
  }
}

/** End the shared ssh masters this file's actions left (ControlPersist). */
async function closeMasters(s: Setup) {
  for (const n of ["cn1", "cn2"]) {
    await new Deno.Command("ssh", {
      args: [
        "-F",
        s.env.ONEVZ_SSH_CONFIG,
        "-o",
        `ControlPath=${privateDir(s)}/%C`,
        "-O",
        "exit",
        n,
      ],
      stdout: "null",
      stderr: "null",
    }).output().catch(() => {});
  }
}

/** The ssh invocations since the last call (control commands `-O …` excluded). */
async function sshCalls(s: Setup): Promise<string[]> {
  const lines = (await Deno.readTextFile(s.sshLog).catch(() => "")).split("\n")
    .filter((l) => l && !/ -O (exit|check) /.test(l));
  await Deno.writeTextFile(s.sshLog, "");
  return lines;
}

function vmm(s: Setup, host: string, action: string, args: string[], env = {}) {
  return one.vmmSh(
    { ...site(s), env: { ...s.env, ...env } },
    host,
    action,
    args,
    { vid: VID },
  );
}

function site(s: Setup): one.OneSite {
  return {
    ssh: `ssh -F ${sq(s.env.ONEVZ_SSH_CONFIG)}`,
    remoteDir: s.bed.remoteDir,
    frontRemotes: s.remotes,
    env: s.env,
    copyRemotes: () => Promise.reject(new Error("agentless: no remotes copy")),
  };
}

async function poll(s: Setup, host: string, ctid: number, env = {}) {
  const r = await vmm(s, host, "poll", [String(ctid)], env);
  assert.equal(r.result, "SUCCESS", show(r));
  return pollValues(r.info);
}

/** Make the next poll read the node again, as an action of onevz does (the snapshot stays). */
async function forget(s: Setup) {
  await new Promise((r) => setTimeout(r, 2)); // a read started before now is stale
  for (const e of snapshotFiles(s)) {
    if (e.endsWith(".changed")) {
      await Deno.writeTextFile(join(privateDir(s), e), String(Date.now()));
    }
  }
}

const snapshotFiles = (s: Setup) => {
  try {
    return [...Deno.readDirSync(privateDir(s))].map((e) => e.name)
      .filter((n) => n.startsWith("poll-")).sort();
  } catch {
    return [];
  }
};

let setup: Setup | undefined;
const getSetup = async () => setup ??= await setUp();

const snapshotTest = (name: string, fn: (s: Setup) => Promise<void>) =>
  Deno.test({
    name: `poll snapshot: ${name}`,
    ignore: !canRunPrivilegeTests,
    ...TEST_OPTS,
    fn: async () => {
      const s = await getSetup();
      await sshCalls(s);
      try {
        await fn(s);
      } finally {
        await cleanupVm(s.bed, VID, CTID);
        await forget(s).catch(() => {});
      }
    },
  });

snapshotTest("one ssh round trip per host per window, same answers as direct", async (s) => {
  // The answers of the old way: every poll reads the node itself.
  const direct: Record<number, Record<string, string>> = {};
  for (let i = 0; i < COUNT; i++) {
    direct[FIRST + i] = await poll(s, "cn1", FIRST + i, { ONEVZ_POLL_WINDOW: "0" });
  }
  assert.ok((await sshCalls(s)).length >= COUNT, "without the snapshot: ssh for every poll");
  for (let i = 0; i < COUNT; i++) {
    const v = await poll(s, "cn1", FIRST + i);
    assert.equal(v.STATE, "a", JSON.stringify(v));
    // The simulator's /proc only changes when one of its tools runs: the same figures.
    for (const k of ["USEDMEMORY", "NETRX", "NETTX"]) {
      assert.equal(v[k], direct[FIRST + i][k], `${FIRST + i} ${k}`);
    }
    assert.match(v.USEDCPU, /^\d+$/);
  }
  const calls = await sshCalls(s);
  assert.equal(calls.length, 1, `${COUNT} polls of cn1, one read:\n${calls.join("\n")}`);
  assert.match(calls[0], /onevz-poll-snapshot/);
  // A second host has a snapshot of its own: one more read, then none.
  assert.equal((await poll(s, "cn2", FIRST)).STATE, "d");
  assert.equal((await poll(s, "cn1", FIRST + 1)).STATE, "a");
  const more = await sshCalls(s);
  assert.equal(more.filter((l) => /onevz-poll-snapshot/.test(l)).length, 1, more.join("\n"));
});

/** What the TM prolog leaves (OS image, context), owned by the driver; the front-end file. */
async function prologFor(s: Setup, node: string): Promise<string> {
  await prolog(s.bed, node, VID, {
    osDiskId: 0,
    context: { diskId: 2, files: { "context.sh": 'HOSTNAME="vps145"\n' } },
  });
  await must("chown", ["-R", `${s.uid}:${s.gid}`, local(s.bed, node, `${NODE_ROOT}/vm/${VID}`)]);
  const dir = `${s.oneLocation}/var/${VID}`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/deployment.0`, VPS145);
  return `${dir}/deployment.0`;
}

snapshotTest("every action makes the next poll read the node again", async (s) => {
  const R = imagesDir(s.bed, VID);
  const step = async (host: string, action: string, args: string[]) => {
    const r = await vmm(s, host, action, args);
    assert.equal(r.result, "SUCCESS", `${action}: ${show(r)}`);
  };
  /** Poll after an action: the state it left, from a new read of the node. */
  const after = async (action: string, host: string, state: string) => {
    await sshCalls(s);
    const v = await poll(s, host, CTID);
    assert.equal(v.STATE, state, `poll on ${host} after ${action}: ${JSON.stringify(v)}`);
    const calls = await sshCalls(s);
    assert.ok(
      calls.some((l) => /onevz-poll-snapshot/.test(l)) || state !== "a",
      `after ${action} the node is read again:\n${calls.join("\n")}`,
    );
    // …and a snapshot taken now answers the next poll of another CT without ssh.
    assert.equal((await poll(s, "cn1", FIRST)).STATE, "a");
  };
  // A snapshot of cn1 before anything happens.
  assert.equal((await poll(s, "cn1", FIRST)).STATE, "a");
  const file = await prologFor(s, "cn1");
  await step("cn1", "deploy", [file]);
  await after("deploy", "cn1", "a");
  await step("cn1", "save", [String(CTID), `${R}/checkpoint`]);
  await after("save", "cn1", "p");
  await step("cn1", "restore", [`${R}/checkpoint`]);
  await after("restore", "cn1", "a");
  await step("cn1", "reboot", [String(CTID)]);
  await after("reboot", "cn1", "a");
  // Both hosts have a snapshot; migrate changes both.
  assert.equal((await poll(s, "cn2", FIRST)).STATE, "d");
  await step("cn1", "migrate", [String(CTID), "cn2"]);
  assert.match(await ctStatus(s.bed, "cn2", CTID), /running/);
  await after("migrate", "cn1", "d");
  await after("migrate", "cn2", "a");
  await step("cn2", "shutdown", [String(CTID)]);
  await after("shutdown", "cn2", "d");
  await Deno.remove(local(s.bed, "cn2", `${NODE_ROOT}/vm/${VID}`), { recursive: true });
  // cancel
  const again = await prologFor(s, "cn1");
  await step("cn1", "deploy", [again]);
  await after("deploy", "cn1", "a");
  await step("cn1", "cancel", [String(CTID)]);
  await after("cancel", "cn1", "d");
});

snapshotTest("a container the snapshot does not list as running is read directly", async (s) => {
  assert.equal((await poll(s, "cn1", FIRST)).STATE, "a"); // the snapshot
  await sshCalls(s);
  // Started behind onevz's back after the read: running, not `d`.
  const late = FIRST + COUNT + 5;
  const r = await s.bed.ssh(
    "cn1",
    `ovzsim populate ${s.bed.simRoot} 1 --first ${late} --ostemplate centos-6-x86_64`,
  );
  assert.equal(r.code, 0, r.stderr);
  const v = await poll(s, "cn1", late);
  assert.equal(v.STATE, "a", JSON.stringify(v));
  assert.ok((await sshCalls(s)).length >= 1, "read from the node");
  // Gone, and never there: `d`, each from the node.
  for (const ctid of [late + 1, 999999]) {
    assert.equal((await poll(s, "cn1", ctid)).STATE, "d");
    assert.ok((await sshCalls(s)).length >= 1, `${ctid}: d from a direct check`);
  }
  // Stopped behind onevz's back: the snapshot lists it, but not as running.
  await forget(s);
  const stop = await s.bed.ssh("cn1", `vzctl --quiet stop ${late}`);
  assert.equal(stop.code, 0, stop.stderr);
  assert.equal((await poll(s, "cn1", FIRST)).STATE, "a"); // a new snapshot
  await sshCalls(s);
  assert.equal((await poll(s, "cn1", late)).STATE, "d");
  assert.ok((await sshCalls(s)).length >= 1, "stopped: read from the node");
  await s.bed.ssh("cn1", `vzctl --quiet destroy ${late}`);
});

snapshotTest("concurrent polls of a host read it once, each gets a whole answer", async (s) => {
  for (let round = 0; round < 3; round++) {
    await forget(s);
    await sshCalls(s);
    const replies = await Promise.all(
      Array.from({ length: COUNT }, (_, i) => vmm(s, "cn1", "poll", [String(FIRST + i)])),
    );
    for (const r of replies) {
      assert.equal(r.result, "SUCCESS", show(r));
      assert.match(
        r.info,
        /^STATE=a USEDMEMORY=\d+ USEDCPU=\d+ NETRX=\d+ NETTX=\d+$/,
        show(r),
      );
      assert.notEqual(pollValues(r.info).USEDMEMORY, "0", show(r));
    }
    const calls = await sshCalls(s);
    assert.equal(calls.length, 1, `round ${round}: ${COUNT} polls at once:\n${calls.join("\n")}`);
  }
  // Nothing half-written is left beside the snapshot.
  assert.ok(!snapshotFiles(s).some((n) => n.includes(".tmp")), snapshotFiles(s).join(" "));
});

snapshotTest("the window ends a snapshot; ONEVZ_POLL_WINDOW=0 turns it off", async (s) => {
  const reads = async () => (await sshCalls(s)).filter((l) => /onevz-poll-snapshot/.test(l));
  // Off: every poll reads the node, nothing is kept.
  await forget(s);
  for (const f of snapshotFiles(s)) await Deno.remove(join(privateDir(s), f));
  for (let i = 0; i < 3; i++) await poll(s, "cn1", FIRST + i, { ONEVZ_POLL_WINDOW: "0" });
  assert.ok((await sshCalls(s)).length >= 3, "off: ssh for every poll");
  assert.deepEqual(snapshotFiles(s), [], "off: no snapshot kept");
  // A 1-second window: within it one read, after it a new one.
  const short = { ONEVZ_POLL_WINDOW: "1" };
  await poll(s, "cn1", FIRST, short);
  await poll(s, "cn1", FIRST + 1, short);
  assert.equal((await reads()).length, 1);
  await new Promise((r) => setTimeout(r, 1100));
  await poll(s, "cn1", FIRST + 2, short);
  assert.equal((await reads()).length, 1, "the window ended: read again");
  // Never longer than oned's VM_POLLING_INTERVAL (its configuration dump), whatever is set.
  await Deno.mkdir(`${s.oneLocation}/var`, { recursive: true });
  await Deno.writeTextFile(`${s.oneLocation}/var/config`, "VM_POLLING_INTERVAL=1\n");
  try {
    await forget(s);
    await poll(s, "cn1", FIRST);
    await poll(s, "cn1", FIRST + 1);
    assert.equal((await reads()).length, 1);
    await new Promise((r) => setTimeout(r, 1100));
    await poll(s, "cn1", FIRST + 2);
    assert.equal((await reads()).length, 1, "VM_POLLING_INTERVAL=1 bounds a 600 s setting");
  } finally {
    await Deno.remove(`${s.oneLocation}/var/config`);
  }
});

snapshotTest("it lives only in the 0700 per-user directory", async (s) => {
  await forget(s);
  await poll(s, "cn1", FIRST);
  const dir = privateDir(s);
  const st = Deno.lstatSync(dir);
  assert.ok(st.isDirectory && st.uid === Deno.uid(), dir);
  assert.equal(st.mode! & 0o777, 0o700);
  const files = snapshotFiles(s);
  assert.ok(files.some((f) => f.endsWith(".snapshot")), files.join(" "));
  for (const f of files) {
    assert.equal(Deno.statSync(join(dir, f)).mode! & 0o077, 0, `${f} is private`);
  }
  assert.deepEqual(
    [...Deno.readDirSync(s.xdg)].map((e) => e.name),
    [`onevz-ssh-${Deno.uid()}`],
    "nothing beside it",
  );
  // A directory others can enter is not used: each poll reads the node, nothing is added.
  await forget(s);
  const before = snapshotFiles(s);
  await closeMasters(s);
  await Deno.chmod(dir, 0o755);
  try {
    await sshCalls(s);
    for (let i = 0; i < 3; i++) assert.equal((await poll(s, "cn1", FIRST + i)).STATE, "a");
    assert.ok((await sshCalls(s)).length >= 3, "no snapshot: ssh for every poll");
    assert.deepEqual(snapshotFiles(s), before);
  } finally {
    await Deno.chmod(dir, 0o700);
  }
});

snapshotTest("USEDCPU is the use between the host's last two reads", async (s) => {
  // The simulator rewrites /proc only when one of its tools runs; polls run none, so the
  // test writes the node's vestat itself: CT FIRST at uptime/used (ns) of its choosing.
  const vestat = local(s.bed, "cn1", `${NODE_ROOT}/sim/proc/vz/vestat`);
  const original = await Deno.readTextFile(vestat);
  const setRow = async (uptime: bigint, used: bigint) => {
    const lines = original.split("\n").map((l) => {
      const w = l.trim().split(/\s+/);
      if (w[0] !== String(FIRST)) return l;
      w[7] = String(uptime);
      w[8] = String(used);
      return w.join(" ");
    });
    await Deno.writeTextFile(vestat, lines.join("\n"));
  };
  const sec = 1_000_000_000n;
  try {
    await forget(s);
    await setRow(100n * sec, 25n * sec);
    await poll(s, "cn1", FIRST); // a read to measure from
    await forget(s);
    await setRow(200n * sec, 85n * sec); // 60 s used in the last 100 s
    assert.equal((await poll(s, "cn1", FIRST)).USEDCPU, "60");
    assert.equal((await poll(s, "cn1", FIRST)).USEDCPU, "60", "the same read, the same figure");
    await forget(s);
    await setRow(300n * sec, 95n * sec); // 10 s in the last 100 s
    assert.equal((await poll(s, "cn1", FIRST)).USEDCPU, "10");
    await forget(s);
    await setRow(50n * sec, 20n * sec); // restarted since: the average since start
    assert.equal((await poll(s, "cn1", FIRST)).USEDCPU, "40");
    // No CPU sample was written on the node for these containers.
    const sample = local(s.bed, "cn1", `${NODE_ROOT}/sim/vz/private/.onevz-poll.json`);
    assert.throws(() => Deno.statSync(sample), Deno.errors.NotFound);
  } finally {
    await Deno.writeTextFile(vestat, original);
  }
});

Deno.test({
  name: "poll snapshot: stop the bed",
  ignore: !canRunPrivilegeTests,
  ...TEST_OPTS,
  fn: async () => {
    if (!setup) return;
    const s = setup;
    setup = undefined;
    await s.undo();
  },
});
