/**
 * The VMM actions other than deploy (poll, shutdown, cancel, save, restore, migrate, reboot)
 * run as `deno run -A main.ts <action> …` against the OpenVZ simulator (fixtures/sim), locally:
 * OVZ_SIM_ROOT = ONEVZ_SYSROOT = a temporary node root, PATH starting with fixtures/sim/bin.
 * Containers are made with the simulator's own vzctl (create under VM_DIR/<vid>/images, start)
 * and a hand-written deployment.0, so these tests do not depend on deploy.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { hostname } from "node:os";
import { LocalHost } from "../src/host/local.ts";
import { lockContainer } from "../src/ovz/container.ts";
import {
  cpuPercent,
  parseBeancounters,
  parseVenetstat,
  parseVestat,
  parseVzConf,
} from "../src/ovz/parsers.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const DENO = Deno.execPath();
const SIM_BIN = `${ROOT}/fixtures/sim/bin`;
const HAVE_SIM = existsSync(`${SIM_BIN}/ovzsim`);
const TEMPLATE = "centos-5-x86";
const dec = new TextDecoder();

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function exec(argv: string[], env: Record<string, string>, cwd = ROOT): Promise<Result> {
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    env,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

class Node {
  readonly sim: string;
  extraEnv: Record<string, string> = {};
  constructor(readonly base: string, name: string, readonly vmDir: string) {
    this.sim = `${base}/${name}`;
  }
  env(): Record<string, string> {
    return {
      ...Deno.env.toObject(),
      PATH: `${SIM_BIN}:${Deno.env.get("PATH")}`,
      OVZ_SIM_ROOT: this.sim,
      ONEVZ_SYSROOT: this.sim,
      NO_COLOR: "1",
      ...this.extraEnv,
    };
  }
  /** A simulator tool (vzctl, vzlist, ovzsim …); throws on failure unless check is false. */
  async tool(argv: string[], check = true): Promise<Result> {
    const r = await exec([`${SIM_BIN}/${argv[0]}`, ...argv.slice(1)], this.env());
    if (check && r.code !== 0) {
      throw new Error(`${argv.join(" ")} → ${r.code}: ${r.stderr}${r.stdout}`);
    }
    return r;
  }
  onevz(action: string, ...args: string[]): Promise<Result> {
    return exec([DENO, "run", "-A", "--quiet", `${ROOT}/main.ts`, action, ...args], this.env());
  }
  async status(ctid: number): Promise<string> {
    return (await this.tool(["vzctl", "status", String(ctid)])).stdout.trim();
  }
  async calls(): Promise<{ tool: string; argv: string[]; exit: number }[]> {
    const r = await this.tool(["ovzsim", "calls", this.sim]);
    return r.stdout.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
  }
  confPath(ctid: number) {
    return `${this.sim}/etc/vz/conf/${ctid}.conf`;
  }
}

async function newNode(
  opts: { vzctl?: string; flavour?: string; base?: string; name?: string; vmDir?: string } = {},
): Promise<Node> {
  const base = opts.base ?? await Deno.makeTempDir({ prefix: "onevz-vmm-" });
  if (!opts.base) tempDirs.push(base);
  const node = new Node(base, opts.name ?? "node", opts.vmDir ?? `${base}/vms/`);
  await Deno.mkdir(node.vmDir, { recursive: true });
  await node.tool([
    "ovzsim",
    "init",
    node.sim,
    "--flavour",
    opts.flavour ?? "ubc",
    "--vzctl",
    opts.vzctl ?? "4.11.1",
    "--template",
    TEMPLATE,
  ]);
  return node;
}

function deploymentXml(vid: number, disk: Record<string, string>): string {
  const cdata = (k: string, v: string) => `<${k}><![CDATA[${v}]]></${k}>`;
  const diskXml = Object.keys(disk).sort().map((k) => cdata(k, disk[k])).join("");
  return `<TEMPLATE><CPU><![CDATA[0.5]]></CPU><DISK>${diskXml}</DISK><DISK>` +
    `${cdata("DISK_ID", "1")}${cdata("SIZE", "1024")}${cdata("TYPE", "swap")}</DISK>` +
    `${cdata("MEMORY", "512")}${cdata("NAME", `one-${vid}`)}${cdata("VMID", String(vid))}` +
    `</TEMPLATE>`;
}

interface Vm {
  vid: number;
  ctid: number;
  r: string;
}

/** A container made the way deploy lays it out: R = VM_DIR/<vid>/images, private/root in R. */
async function makeVm(
  node: Node,
  vid: number,
  opts: { save?: string; saveAs?: string; start?: boolean; netif?: boolean } = {},
): Promise<Vm> {
  const ctid = 1000 + vid;
  const r = `${node.vmDir}${vid}/images`;
  await Deno.mkdir(r, { recursive: true });
  const disk: Record<string, string> = {
    CLONE: "YES",
    DISK_ID: "0",
    IMAGE: TEMPLATE,
    SAVE: opts.save ?? "NO",
    TARGET: "hda",
    TYPE: "DISK",
  };
  if (opts.saveAs) disk.SAVE_AS = opts.saveAs;
  await Deno.writeTextFile(`${r}/deployment.0`, deploymentXml(vid, disk));
  const id = String(ctid);
  await node.tool([
    "vzctl",
    "create",
    id,
    "--ostemplate",
    TEMPLATE,
    "--private",
    `${r}/private`,
    "--root",
    `${r}/root`,
    // as deploy does on vzctl 4.x, whose stock default layout is ploop
    ...(JSON.parse(await Deno.readTextFile(`${node.sim}/sim/node.json`)).vzctl.startsWith("4")
      ? ["--layout", "simfs"]
      : []),
  ]);
  await node.tool(["vzctl", "set", id, "--ipadd", `10.1.0.${vid}`, "--save"]);
  if (opts.netif) {
    await node.tool(["vzctl", "set", id, "--netif_add", "eth0,,,,br0", "--save"]);
  }
  if (opts.start !== false) await node.tool(["vzctl", "start", id]);
  return { vid, ctid, r };
}

async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, prefix: string) => {
    for await (const e of Deno.readDir(d)) {
      out.push(prefix + e.name);
      if (e.isDirectory) await walk(`${d}/${e.name}`, `${prefix}${e.name}/`);
    }
  };
  await walk(dir, "");
  return out.sort();
}

function parsePoll(line: string): Record<string, string> {
  assert.equal(line.split("\n").filter((l) => l).length, 1, `one line expected: ${line}`);
  const kv: Record<string, string> = {};
  for (const tok of line.trim().split(" ")) {
    const i = tok.indexOf("=");
    assert.ok(i > 0, `KEY=VALUE expected: ${tok}`);
    kv[tok.slice(0, i)] = tok.slice(i + 1);
  }
  return kv;
}

/** Temporary node directories of the running test, removed when it ends. */
const tempDirs: string[] = [];

const simTest = (name: string, fn: () => Promise<void>) =>
  Deno.test({
    name,
    ignore: !HAVE_SIM,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      try {
        await fn();
      } finally {
        for (const d of tempDirs.splice(0)) await Deno.remove(d, { recursive: true });
      }
    },
  });

// -------------------------------------------------------------------------------------------
// Argument validation (no simulator needed: nothing may run)

Deno.test("invalid deploy ids, checkpoint paths and hosts: exit 3 before running anything", async () => {
  const base = await Deno.makeTempDir({ prefix: "onevz-vmm-" });
  const env = {
    ...Deno.env.toObject(),
    PATH: `${base}/nothing`, // any command would fail with 127
    ONEVZ_SYSROOT: base,
  };
  const run = (...a: string[]) =>
    exec([DENO, "run", "-A", "--quiet", `${ROOT}/main.ts`, ...a], env);
  for (
    const argv of [
      ["poll", "abc"],
      ["poll", "100"],
      ["poll", "1007; rm -rf /"],
      ["shutdown", "-1"],
      ["cancel", "2147483645"],
      ["reboot", ""],
      ["save", "1007", "relative/checkpoint"],
      ["save", "1007", "/var/lib/one/7/../8/images/checkpoint"],
      ["restore", "/x/../checkpoint"],
      ["restore", "/var/lib/one/7/images/checkpoint", "x7"],
      ["migrate", "1007", "-oProxyCommand=evil"],
      ["migrate", "1007", "host name"],
      ["migrate", "bad", "cn2"],
    ]
  ) {
    const r = await run(...argv);
    assert.equal(r.code, 3, `${argv.join(" ")}: ${r.stderr}`);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /^onevz: invalid /);
    assert.doesNotMatch(r.stderr, /ExitCode:/);
  }
  await Deno.remove(base, { recursive: true });
});

Deno.test("lock: busy lock times out, dead owner and old locks are broken", async () => {
  const dir = await Deno.makeTempDir({ prefix: "onevz-lock-" });
  const host = new LocalHost({ sysroot: dir, useSudo: false });
  const unlock = await lockContainer(host, dir, "test");
  const owner = JSON.parse(await Deno.readTextFile(`${dir}/.onevz.lock/owner`));
  assert.equal(owner.pid, Deno.pid);
  assert.equal(owner.action, "test");
  await assert.rejects(lockContainer(host, dir, "second", { waitMs: 300, pollMs: 50 }), /busy/);
  await unlock();
  assert.equal(existsSync(`${dir}/.onevz.lock`), false);
  // A lock whose owner process is gone (same machine) is stale.
  await Deno.mkdir(`${dir}/.onevz.lock`);
  const dead = new Deno.Command("true").spawn();
  await dead.status;
  await Deno.writeTextFile(
    `${dir}/.onevz.lock/owner`,
    JSON.stringify({ pid: dead.pid, host: hostname(), action: "x", since: Date.now() }),
  );
  await (await lockContainer(host, dir, "third", { waitMs: 300, pollMs: 50 }))();
  // A lock from another machine is stale only after staleMinutes.
  await Deno.mkdir(`${dir}/.onevz.lock`, { recursive: true });
  await Deno.writeTextFile(
    `${dir}/.onevz.lock/owner`,
    JSON.stringify({ pid: 1, host: "elsewhere", action: "x", since: Date.now() - 3_600_000 }),
  );
  const u = await lockContainer(host, dir, "fourth", { waitMs: 300, pollMs: 50, staleMinutes: 30 });
  await u();
  // No images directory: nothing to lock, no error.
  await (await lockContainer(host, `${dir}/missing`, "x"))();
  await Deno.remove(dir, { recursive: true });
});

// -------------------------------------------------------------------------------------------
// poll

simTest("poll: running container → STATE=a with integer numbers, one line", async () => {
  const node = await newNode();
  const vm = await makeVm(node, 7);
  const callsBefore = (await node.calls()).length;
  const r = await node.onevz("poll", String(vm.ctid));
  assert.equal(r.code, 0, r.stderr);
  const kv = parsePoll(r.stdout);
  assert.deepEqual(Object.keys(kv), ["STATE", "USEDMEMORY", "USEDCPU", "NETRX", "NETTX"]);
  assert.equal(kv.STATE, "a");
  for (const k of ["USEDMEMORY", "USEDCPU", "NETRX", "NETTX"]) {
    assert.match(kv[k], /^\d+$/);
    assert.ok(Number(kv[k]) <= 2147483647);
  }
  // UBC kernel: privvmpages.held × 4 KB, from the node's beancounters.
  const bcText = await Deno.readTextFile(`${node.sim}/proc/bc/resources`).catch(() =>
    Deno.readTextFile(`${node.sim}/proc/user_beancounters`)
  );
  const bc = parseBeancounters(bcText).get(vm.ctid);
  assert.ok(bc, "simulator lists the CT in its beancounters");
  assert.equal(Number(kv.USEDMEMORY), bc.privvmpages.held * 4);
  // venet traffic: the kernel's per-CT accounting (the poll called no tool, so /proc is as
  // the poll read it).
  const venet = parseVenetstat(await Deno.readTextFile(`${node.sim}/proc/vz/venetstat`))
    .get(vm.ctid);
  assert.ok(venet && venet.rxBytes > 0n, "the simulator accounts the CT's venet traffic");
  assert.equal(kv.NETRX, String(venet.rxBytes));
  assert.equal(kv.NETTX, String(venet.txBytes));
  // A running container is found in /proc/vz/veinfo: no OpenVZ tool call, never vzctl exec.
  const pollCalls = (await node.calls()).slice(callsBefore);
  assert.deepEqual(pollCalls, []);
});

simTest("poll: memory on a VSwap node is physpages.held × 4 KB", async () => {
  const node = await newNode({ flavour: "vswap" });
  const vm = await makeVm(node, 8);
  const kv = parsePoll((await node.onevz("poll", String(vm.ctid))).stdout);
  const bcText = await Deno.readTextFile(`${node.sim}/proc/bc/resources`).catch(() =>
    Deno.readTextFile(`${node.sim}/proc/user_beancounters`)
  );
  const bc = parseBeancounters(bcText).get(vm.ctid);
  assert.ok(bc, "simulator lists the CT in its beancounters");
  assert.equal(Number(kv.USEDMEMORY), bc.physpages.held * 4);
});

simTest(
  "poll: without /proc/bc/<CTID>/resources (older kernels) memory comes from the table",
  async () => {
    const node = await newNode();
    const vm = await makeVm(node, 10);
    await Deno.remove(`${node.sim}/proc/bc/${vm.ctid}`, { recursive: true });
    const kv = parsePoll((await node.onevz("poll", String(vm.ctid))).stdout);
    const bc = parseBeancounters(await Deno.readTextFile(`${node.sim}/proc/bc/resources`)).get(
      vm.ctid,
    );
    assert.ok(bc && bc.privvmpages.held > 0);
    assert.equal(Number(kv.USEDMEMORY), bc.privvmpages.held * 4);
    // Neither file: /proc/user_beancounters, as on the oldest kernels.
    await Deno.remove(`${node.sim}/proc/bc`, { recursive: true });
    const kv2 = parsePoll((await node.onevz("poll", String(vm.ctid))).stdout);
    const ubc = parseBeancounters(await Deno.readTextFile(`${node.sim}/proc/user_beancounters`));
    assert.equal(Number(kv2.USEDMEMORY), ubc.get(vm.ctid)!.privvmpages.held * 4);
  },
);

simTest("poll: CPU from vestat deltas between two polls, first poll = average", async () => {
  const node = await newNode();
  const vm = await makeVm(node, 9);
  // The simulator rewrites /proc on every tool call; a poll of a running CT calls none, so
  // the file holds what the next poll reads, before and after it. No waiting: the expected
  // values come from the counters in the file, whatever time has passed.
  const vestat = async () =>
    parseVestat(await Deno.readTextFile(`${node.sim}/proc/vz/vestat`)).get(vm.ctid)!;
  assert.equal((await node.tool(["ovzsim", "proc", node.sim])).code, 0);
  const s1 = await vestat();
  const first = parsePoll((await node.onevz("poll", String(vm.ctid))).stdout);
  assert.deepEqual(await vestat(), s1, "the poll ran no tool");
  assert.equal(Number(first.USEDCPU), Math.round(cpuPercent(s1)));
  const sample = JSON.parse(await Deno.readTextFile(`${vm.r}/.onevz-poll.json`));
  assert.deepEqual(sample, { ctid: vm.ctid, uptime: String(s1.uptime), used: String(s1.used) });
  // Time passes on the node: the simulator's kernel counters move on.
  assert.equal((await node.tool(["ovzsim", "proc", node.sim])).code, 0);
  const s2 = await vestat();
  // Pretend the previous sample was taken halfway through the CT's life with no CPU used
  // yet: over the interval since, the CT used twice its average share.
  const prev = { uptime: s2.uptime / 2n, used: 0n };
  await Deno.writeTextFile(
    `${vm.r}/.onevz-poll.json`,
    JSON.stringify({ ctid: vm.ctid, uptime: String(prev.uptime), used: String(prev.used) }),
  );
  const second = parsePoll((await node.onevz("poll", String(vm.ctid))).stdout);
  const expected = Math.round(cpuPercent(s2, prev));
  assert.equal(Number(second.USEDCPU), expected);
  assert.ok(expected > Math.round(cpuPercent(s2)), "delta differs from the average");
});

simTest("poll: huge counters are clamped to 2147483647 with a note on stderr", async () => {
  const node = await newNode({ flavour: "vswap" });
  const vm = await makeVm(node, 10, { netif: true });
  // veth only: no venet address, so the counters are the host-side veth's alone.
  await node.tool(["vzctl", "set", String(vm.ctid), "--ipdel", "all", "--save"]);
  const hostIf = parseVzConf(await Deno.readTextFile(node.confPath(vm.ctid))).NETIF
    .match(/host_ifname=([^,;]+)/)![1];
  await Deno.mkdir(`${node.sim}/proc/net`, { recursive: true });
  await Deno.writeTextFile(
    `${node.sim}/proc/net/dev`,
    "Inter-|   Receive |  Transmit\n face |bytes packets|bytes packets\n" +
      `${hostIf}: 9999999999 1 0 0 0 0 0 0 5120 2 0 0 0 0 0 0\n`,
  );
  const r = await node.onevz("poll", String(vm.ctid));
  const kv = parsePoll(r.stdout);
  assert.equal(kv.NETRX, "5120"); // host side transmitted = container received
  assert.equal(kv.NETTX, "2147483647");
  assert.match(r.stderr, /NETTX=9999999999 exceeds/);
});

simTest("poll: stopped → d, mounted → -, no config → d, checkpointed → p", async () => {
  const node = await newNode();
  const vm = await makeVm(node, 11);
  const id = String(vm.ctid);
  const state = async () => parsePoll((await node.onevz("poll", id)).stdout).STATE;
  // Only a container the kernel does not list as running costs a `vzctl status`.
  const statusCalls = async (fn: () => Promise<unknown>) => {
    const before = (await node.calls()).length;
    await fn();
    return (await node.calls()).slice(before).map((c) => c.argv.join(" "));
  };
  assert.deepEqual(await statusCalls(state), []);
  await node.tool(["vzctl", "stop", id]);
  assert.deepEqual(await statusCalls(state), [`status ${id}`]);
  assert.equal(await state(), "d");
  // An operator's maintenance mount: nothing for oned to do (e would make it FAILED and
  // run EPILOG_DELETE, which removes R with the private area).
  await node.tool(["vzctl", "mount", id]);
  assert.equal(await state(), "-");
  await node.tool(["vzctl", "umount", id]);
  await node.tool(["vzctl", "start", id]);
  assert.equal((await node.onevz("save", id, `${vm.r}/checkpoint`)).code, 0);
  assert.equal(await state(), "p");
  assert.equal((await node.onevz("restore", `${vm.r}/checkpoint`)).code, 0);
  assert.equal(await state(), "a");
  // The checkpoint kept after restore does not make a later stop look suspended.
  await node.tool(["vzctl", "stop", id]);
  assert.equal(await state(), "d");
  // A checkpoint without a record (written by something else) still means suspended.
  await Deno.remove(`${vm.r}/checkpoint.onevz.json`);
  assert.equal(await state(), "p");
  const r = await node.onevz("poll", "4242");
  assert.equal(r.code, 0);
  assert.equal(r.stdout, "STATE=d\n");
});

// -------------------------------------------------------------------------------------------
// cancel / reboot (shutdown and the epilog: tests/epilog.test.ts)

simTest("cancel: destroys a running container; a gone container is success", async () => {
  const node = await newNode();
  const vm = await makeVm(node, 16, { save: "yes" });
  const r = await node.onevz("cancel", String(vm.ctid));
  assert.equal(r.code, 0, r.stderr);
  assert.match(await node.status(vm.ctid), /deleted/);
  assert.ok(!(await listTree(vm.r)).some((f) => f.startsWith("disk.")), "cancel saves nothing");
  assert.ok(existsSync(`${vm.r}/deployment.0`), "R stays (no epilog after cancel)");
  const again = await node.onevz("cancel", String(vm.ctid));
  assert.equal(again.code, 0, again.stderr);
});

simTest("reboot: vzctl restart, container running afterwards", async () => {
  const node = await newNode();
  const vm = await makeVm(node, 17);
  const r = await node.onevz("reboot", String(vm.ctid));
  assert.equal(r.code, 0, r.stderr);
  assert.match(await node.status(vm.ctid), /running/);
  assert.ok((await node.calls()).some((c) => c.argv[0] === "restart"));
});

// -------------------------------------------------------------------------------------------
// save / restore

for (const version of ["4.11.1", "3.0.30.2"]) {
  for (const withId of [false, true]) {
    simTest(
      `save → restore (vzctl ${version}, ${withId ? "with" : "without"} deploy id)`,
      async () => {
        const node = await newNode({ vzctl: version });
        const vm = await makeVm(node, 18);
        const cp = `${vm.r}/checkpoint`;
        const s = await node.onevz("save", String(vm.ctid), cp);
        assert.equal(s.code, 0, s.stderr);
        assert.match(await node.status(vm.ctid), /down/);
        assert.ok(existsSync(cp));
        assert.equal(JSON.parse(await Deno.readTextFile(`${cp}.onevz.json`)).ctid, vm.ctid);
        assert.ok(existsSync(`${vm.r}/ctid.conf`));
        const args = withId ? [cp, String(vm.ctid)] : [cp];
        const r = await node.onevz("restore", ...args);
        assert.equal(r.code, 0, r.stderr);
        assert.match(await node.status(vm.ctid), /running/);
        assert.ok(existsSync(cp), "OpenNebula's checkpoint file is kept");
        assert.ok(!(await listTree(vm.r)).some((f) => f.includes("onevz-restore")));
      },
    );
  }
}

simTest("restore without record: CTID from the …/<vid>/images/checkpoint path", async () => {
  const node = await newNode();
  const vm = await makeVm(node, 19);
  const cp = `${vm.r}/checkpoint`;
  assert.equal((await node.onevz("save", String(vm.ctid), cp)).code, 0);
  await Deno.remove(`${cp}.onevz.json`);
  const r = await node.onevz("restore", cp);
  assert.equal(r.code, 0, r.stderr);
  assert.match(await node.status(vm.ctid), /running/);
});

simTest("restore after a cold migration: config recreated on the new node", async () => {
  const a = await newNode({ name: "a" });
  const b = await newNode({ base: a.base, name: "b", vmDir: a.vmDir });
  const vm = await makeVm(a, 20);
  const cp = `${vm.r}/checkpoint`;
  assert.equal((await a.onevz("save", String(vm.ctid), cp)).code, 0);
  // MV oldH:R newH:R is a no-op here: both nodes see the same VM_DIR.
  assert.equal(existsSync(b.confPath(vm.ctid)), false);
  const r = await b.onevz("restore", cp);
  assert.equal(r.code, 0, r.stderr);
  assert.match(await b.status(vm.ctid), /running/);
  const conf = parseVzConf(await Deno.readTextFile(b.confPath(vm.ctid)));
  assert.equal(conf.VE_PRIVATE, `${vm.r}/private`);
});

simTest("restore failure: a recreated config is removed again", async () => {
  const a = await newNode({ name: "a" });
  const b = await newNode({ base: a.base, name: "b", vmDir: a.vmDir });
  const vm = await makeVm(a, 21);
  const cp = `${vm.r}/checkpoint`;
  assert.equal((await a.onevz("save", String(vm.ctid), cp)).code, 0);
  await b.tool(["ovzsim", "fault", b.sim, "vzctl", "restore", "17", "Restoring failed"]);
  const r = await b.onevz("restore", cp);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Restoring failed/);
  assert.equal(existsSync(b.confPath(vm.ctid)), false);
  assert.ok(existsSync(cp));
});

simTest("save of a stopped container fails without touching anything", async () => {
  const node = await newNode();
  const vm = await makeVm(node, 22, { start: false });
  const r = await node.onevz("save", String(vm.ctid), `${vm.r}/checkpoint`);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /not running/);
  assert.ok(!existsSync(`${vm.r}/checkpoint`));
});

// -------------------------------------------------------------------------------------------
// migrate (failure paths locally; the end-to-end migration runs in the ssh test bed)

simTest("migrate: destination unreachable → nothing happens, CT keeps running", async () => {
  const node = await newNode();
  const vm = await makeVm(node, 23);
  const before = await listTree(vm.r);
  node.extraEnv = { ONEVZ_SSH: "false" };
  const r = await node.onevz("migrate", String(vm.ctid), "cn2");
  node.extraEnv = {};
  assert.equal(r.code, 1);
  assert.match(r.stderr, /copying .* to cn2 failed/);
  assert.match(await node.status(vm.ctid), /running/);
  assert.deepEqual(await listTree(vm.r), before);
  assert.ok(!(await node.calls()).some((c) => c.tool === "vzmigrate"));
});

simTest("migrate: vzmigrate failure → CT running on the source, R untouched", async () => {
  const node = await newNode();
  const vm = await makeVm(node, 24);
  const before = await listTree(vm.r);
  // An ssh stand-in that swallows the images-dir stream and records the remote commands.
  const sink = `${node.base}/sink-ssh`;
  await Deno.writeTextFile(
    sink,
    `#!/bin/bash\nwhile [ $# -gt 1 ]; do shift; done\necho "$1" >> ${node.base}/sink.log\n` +
      'case "$1" in *tar*) cat > /dev/null; echo created;; esac\n',
  );
  await Deno.chmod(sink, 0o755);
  await node.tool(["ovzsim", "fault", node.sim, "vzmigrate", "*", "6", "Error: rsync failed"]);
  node.extraEnv = { ONEVZ_SSH: sink };
  const r = await node.onevz("migrate", String(vm.ctid), "cn2");
  node.extraEnv = {};
  assert.equal(r.code, 1);
  assert.match(r.stderr, /rsync failed/);
  assert.match(await node.status(vm.ctid), /running/);
  assert.deepEqual(await listTree(vm.r), before);
  const log = await Deno.readTextFile(`${node.base}/sink.log`);
  assert.match(log, /tar -C .* -xpf -/);
  assert.match(log, /rm -rf --/, "the copy made on the destination is removed again");
  const vzm = (await node.calls()).filter((c) => c.tool === "vzmigrate");
  assert.deepEqual(vzm[0]?.argv, ["--online", "cn2", String(vm.ctid)]);
});

simTest("migrate of a stopped container uses the offline form (no --online)", async () => {
  const node = await newNode();
  const vm = await makeVm(node, 25, { start: false });
  const sink = `${node.base}/sink-ssh`;
  await Deno.writeTextFile(
    sink,
    '#!/bin/bash\nwhile [ $# -gt 1 ]; do shift; done\ncase "$1" in *tar*) cat > /dev/null;; esac\n',
  );
  await Deno.chmod(sink, 0o755);
  await node.tool(["ovzsim", "fault", node.sim, "vzmigrate", "*", "4", "Error: no route"]);
  node.extraEnv = { ONEVZ_SSH: sink };
  const r = await node.onevz("migrate", String(vm.ctid), "cn2.example.org");
  node.extraEnv = {};
  assert.equal(r.code, 1);
  const vzm = (await node.calls()).filter((c) => c.tool === "vzmigrate");
  assert.deepEqual(vzm[0]?.argv, ["cn2.example.org", String(vm.ctid)]);
  assert.match(await node.status(vm.ctid), /exist unmounted down/);
});

simTest("save/restore accept oned's paths with the double slash of VM_DIR", async () => {
  const node = await newNode();
  const vm = await makeVm(node, 21);
  // oned's VM_DIR ends in "/": it sends …/vm//21/images/checkpoint.
  const checkpoint = vm.r.replace(/\/+(\d+)\/images$/, "//$1/images") + "/checkpoint";
  assert.match(checkpoint, /\/\/21\/images\/checkpoint$/);
  const saved = await node.onevz("save", String(vm.ctid), checkpoint);
  assert.equal(saved.code, 0, saved.stderr);
  const restored = await node.onevz("restore", checkpoint);
  assert.equal(restored.code, 0, restored.stderr);
  assert.ok(existsSync(`${vm.r}/checkpoint`));
});
