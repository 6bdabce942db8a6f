/**
 * Agentless mode in the benchmark (bench.ts): onevz on the front-end driving simulated nodes
 * over real sshd on 127.0.0.1 (tests/testbed), the way clusters of OpenVZ nodes run it.
 *
 *  - agentlessSize: poll (answered from the host's snapshot; the read of the node that starts
 *    a window; with the snapshot off, as every poll was before it), im-probe, deploy, save and
 *    shutdown on a node with 1, 100 or 1000 running containers, the ssh master warm (kept
 *    from the previous action) and cold (a new connection). Round trips are counted through
 *    an ONEVZ_SSH wrapper, bytes through a TCP relay (both in separate runs, so that neither
 *    enters the timings), processes with strace, the node's CPU from its sshd process tree.
 *  - pollingInterval: N VMs over H hosts, each polled once, hosts in parallel and one action
 *    per host at a time (one_vmm_sh's per-host serialization): wall time, front-end CPU,
 *    round trips per host, the nodes' CPU; beside the floor of N empty `deno run` starts, the
 *    same interval with the snapshot off, and node mode as one_vmm_ssh runs it (ssh per poll).
 */
import { makeSimNode, makeTemplateTarball, REPO } from "../tests/helpers/simnode.ts";
import { type Bed, installDevRemotes, NODE_ROOT, startBed } from "../tests/testbed/mod.ts";
import {
  childPrograms,
  countingRelay,
  must,
  processCpuMs,
  reapedChildrenCpuMs,
  type Row,
  type Run,
  type Spawn,
  type Stats,
  stats,
  timed,
  treeCpuMs,
} from "./measure.ts";

export interface AgentlessContext {
  runs: number;
  /** The deno that runs onevz (and the empty script of the floor). */
  deno: string;
  /** argv prefix that runs onevz from source. */
  onevz: string[];
  rows: Row[];
  log: (line: string) => void;
  work: string;
}

const TEMPLATE = "centos-6-x86_64";
const FIRST = 2001;

// ------------------------------------------------------------------------------ the bed

interface AgentlessBed {
  bed: Bed;
  hosts: string[];
  /** Front-end environment of the timed runs (straight to the nodes). */
  env: Record<string, string>;
  /** The same through the byte-counting relay (first host) and the ssh-logging wrapper. */
  counted: Record<string, string>;
  relay: ReturnType<typeof countingRelay>;
  /** ssh invocations logged since the last call, by host. */
  takeSshCalls(): Promise<Map<string, number>>;
  /** The simulator's OVZ_SIM_TIMES file of a node, as the test machine sees it. */
  times(host: string): string;
  /** Mark every snapshot stale, as an action of onevz does. */
  stale(): Promise<void>;
  closeMasters(): Promise<void>;
  /** pid of the ssh master of each host (timed configuration), when one runs. */
  masterPids(): Promise<number[]>;
  /** CPU time (ms) of the nodes' sshd trees. */
  nodeCpuMs(): number;
  stop(): Promise<void>;
}

export async function startAgentlessBed(hosts: string[], work: string): Promise<AgentlessBed> {
  // The machine's root ~/.bashrc initialises pyenv (~90 ms per session); a node's login
  // user has no such file, so it is hidden on the simulated nodes (see bench.ts tm-clone).
  const bashrc = `${Deno.env.get("HOME") ?? "/root"}/.bashrc`;
  const hide = await Deno.stat(bashrc).then(() => [bashrc], () => []);
  const bed = await startBed({
    nodes: hosts.map((name) => ({ name, templates: [TEMPLATE] })),
    frontEnd: false,
    hidePrograms: hide,
    nodeEnv: { OVZ_SIM_TIMES: `${NODE_ROOT}/sim-times` },
  });
  const dir = await Deno.makeTempDir({ dir: work, prefix: "agentless-" });
  // A short private runtime directory: ssh sockets and snapshots, nobody else's.
  const xdg = await Deno.makeTempDir({ dir: "/tmp", prefix: "ovzb" });
  const priv = `${xdg}/onevz-ssh-${Deno.uid()}`;
  const relay = countingRelay(bed.nodes[hosts[0]].port);
  const countedConfig = `${dir}/ssh_config_counted`;
  await Deno.writeTextFile(
    countedConfig,
    (await Deno.readTextFile(bed.sshConfig)).replace(
      `Port ${bed.nodes[hosts[0]].port}`,
      `Port ${relay.port}`,
    ),
  );
  const sshLog = `${dir}/ssh.log`;
  const wrapper = `${dir}/ssh-counted`;
  await Deno.writeTextFile(
    wrapper,
    `#!/bin/sh\nfor a; do t=$h; h=$a; [ "$t" = -- ] && break; done\necho "$h" >> '${sshLog}'\n` +
      `exec ssh "$@"\n`,
    { mode: 0o755 },
  );
  const env = {
    ...bed.env,
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    ONEVZ_MODE: "agentless",
    ONEVZ_VM_DIR: bed.vmDir,
    ONEVZ_POLL_WINDOW: "3600",
    XDG_RUNTIME_DIR: xdg,
  };
  const counted = { ...env, ONEVZ_SSH_CONFIG: countedConfig, ONEVZ_SSH: wrapper };
  const ssh = (args: string[]) =>
    new Deno.Command("ssh", { args, stdout: "null", stderr: "piped" }).output();
  const closeMasters = async () => {
    await Promise.all(
      [bed.sshConfig, countedConfig].flatMap((cfg) =>
        hosts.map((h) => ssh(["-F", cfg, "-o", `ControlPath=${priv}/%C`, "-O", "exit", h]))
      ),
    );
  };
  return {
    bed,
    hosts,
    env,
    counted,
    relay,
    async takeSshCalls() {
      const text = await Deno.readTextFile(sshLog).catch(() => "");
      await Deno.writeTextFile(sshLog, "");
      const by = new Map<string, number>();
      for (const h of text.split("\n").filter((l) => l)) by.set(h, (by.get(h) ?? 0) + 1);
      return by;
    },
    times: (host) => `${bed.nodes[host].fsDir}/sim-times`,
    async stale() {
      await new Promise((r) => setTimeout(r, 2));
      let names: Deno.DirEntry[] = [];
      try {
        names = [...Deno.readDirSync(priv)];
      } catch { /* nothing kept yet */ }
      for (const e of names) {
        if (e.name.endsWith(".changed")) {
          await Deno.writeTextFile(`${priv}/${e.name}`, String(Date.now()));
        }
      }
    },
    closeMasters,
    async masterPids() {
      const pids: number[] = [];
      for (const h of hosts) {
        const r = await ssh([
          "-F",
          bed.sshConfig,
          "-o",
          `ControlPath=${priv}/%C`,
          "-O",
          "check",
          h,
        ]);
        const m = /pid=(\d+)/.exec(new TextDecoder().decode(r.stderr));
        if (m) pids.push(Number(m[1]));
      }
      return pids;
    },
    nodeCpuMs: () => treeCpuMs(hosts.map((h) => bed.nodes[h].pid)),
    async stop() {
      relay.close();
      await closeMasters().catch(() => {});
      await bed.stop();
      await Deno.remove(xdg, { recursive: true }).catch(() => {});
    },
  };
}

export async function populate(bed: Bed, host: string, count: number) {
  const r = await bed.ssh(
    host,
    `ovzsim populate ${bed.simRoot} ${count} --first ${FIRST} --ostemplate ${TEMPLATE}`,
  );
  if (r.code !== 0) throw new Error(`ovzsim populate on ${host}: ${r.stderr.trim()}`);
}

// -------------------------------------------------------------------------- formatting

const own = (runs: Run[]) => stats(runs.map((r) => r.wallMs - r.toolMs));
const wall = (runs: Run[]) => stats(runs.map((r) => r.wallMs));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

function fmtBytes(b: number): string {
  if (b >= 1024 * 1024) return `${(b / 1024 / 1024).toFixed(1)} MiB`;
  return b >= 1024 ? `${(b / 1024).toFixed(1)} KiB` : `${b} B`;
}

function programNames(files: string[]): string {
  const counts = new Map<string, number>();
  for (const f of files) {
    const n = f.slice(f.lastIndexOf("/") + 1);
    counts.set(n, (counts.get(n) ?? 0) + 1);
  }
  return [...counts].map(([n, c]) => c > 1 ? `${n} ×${c}` : n).join(", ") || "none";
}

/** What one run of an action costs in round trips, bytes and processes (separate runs). */
interface Cost {
  sshCalls: number;
  sent: number;
  received: number;
  programs: string[];
}

function costNotes(c: Cost, nodeCpu?: number): string[] {
  return [
    `ssh round trips: ${c.sshCalls}; processes: ${c.programs.length} (${programNames(c.programs)})`,
    `bytes moved: ${fmtBytes(c.sent)} sent, ${fmtBytes(c.received)} received` +
    (nodeCpu === undefined ? "" : `; node CPU ${nodeCpu.toFixed(1)} ms`),
  ];
}

// ------------------------------------------------------------------ one node, by size

/** A timed run with the node's CPU measured around it (kept in nodeMs). */
async function timedOnNode(ab: AgentlessBed, spawn: Spawn, nodeMs: number[]): Promise<Run> {
  const before = ab.nodeCpuMs();
  const r = await timed(spawn);
  nodeMs.push(ab.nodeCpuMs() - before);
  return r;
}

export async function agentlessSize(size: number, c: AgentlessContext): Promise<void> {
  const section = `Agentless, node with ${size} container${size > 1 ? "s" : ""} (real sshd)`;
  const ab = await startAgentlessBed(["cn1"], c.work);
  // Node mode's poll on a node of the same size, the baseline of the snapshot's answer.
  const local = await makeSimNode({ flavour: "ubc", templates: [TEMPLATE] });
  try {
    const t0 = performance.now();
    await populate(ab.bed, "cn1", size);
    must(
      await local.tool("ovzsim", [
        "populate",
        local.root,
        String(size),
        "--first",
        String(FIRST),
        "--ostemplate",
        TEMPLATE,
      ]),
      "ovzsim populate",
    );
    c.log(
      `  ${size} running containers made twice in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s`,
    );
    const ctid = String(FIRST + size - 1); // the last one: the end of every table
    const times = ab.times("cn1");
    const on = (argv: string[], env: Record<string, string>, stdin?: string): Spawn => ({
      argv: [...c.onevz, ...argv],
      env,
      cwd: REPO,
      times,
      stdin,
    });
    const poll = (env: Record<string, string>) => on(["poll", "cn1", ctid], env);
    const off = { ...ab.env, ONEVZ_POLL_WINDOW: "0" };
    const nodePoll: Spawn = {
      argv: [...c.onevz, "poll", ctid],
      env: local.env,
      cwd: REPO,
    };
    const active = (r: Run, what: string) => {
      must(r, what);
      if (!r.stdout.startsWith("STATE=a ")) throw new Error(`${what} said ${r.stdout}`);
      return r;
    };

    // The snapshot's answer against node mode's poll, interleaved.
    active(await timed(poll(ab.env)), "agentless poll");
    const hits: Run[] = [];
    const nodeMode: Run[] = [];
    for (let i = 0; i < c.runs + 2; i++) {
      const a = active(await timed(nodePoll), "node-mode poll");
      const b = active(await timed(poll(ab.env)), "agentless poll (snapshot)");
      if (i >= 2) nodeMode.push(a), hits.push(b);
    }

    // Reads of the node: the first poll of a window, and every poll with the snapshot off;
    // the master kept from the previous action (warm) or a new connection (cold).
    const n = Math.max(5, Math.ceil(c.runs / 3));
    const reads = {
      fetchWarm: [] as Run[],
      fetchCold: [] as Run[],
      offWarm: [] as Run[],
      offCold: [] as Run[],
    };
    const nodeMs = { fetchWarm: [], fetchCold: [], offWarm: [], offCold: [] } as Record<
      keyof typeof reads,
      number[]
    >;
    for (let i = 0; i < n + 1; i++) {
      const keep = i > 0;
      const run = async (k: keyof typeof reads, env: Record<string, string>, cold: boolean) => {
        if (cold) await ab.closeMasters();
        await ab.stale();
        const ms: number[] = [];
        const r = active(await timedOnNode(ab, poll(env), ms), `poll (${k})`);
        if (keep) reads[k].push(r), nodeMs[k].push(ms[0]);
      };
      await run("fetchWarm", ab.env, false);
      await run("fetchCold", ab.env, true);
      await run("offWarm", off, false);
      await run("offCold", off, true);
    }

    // Cost of one run, counted apart: round trips (wrapper), bytes (relay), processes.
    const cost = async (spawn: Spawn, prepare?: () => Promise<void>): Promise<Cost> => {
      await prepare?.();
      await ab.takeSshCalls();
      ab.relay.reset();
      must(
        await timed({ ...spawn, env: { ...spawn.env, ...countedEnv(spawn.env!, ab) } }),
        "counted",
      );
      const sshCalls = [...(await ab.takeSshCalls()).values()].reduce((a, b) => a + b, 0);
      const sent = ab.relay.sent();
      const received = ab.relay.received();
      await prepare?.();
      const programs = await childPrograms(spawn);
      return { sshCalls, sent, received, programs };
    };
    // Warm the counted configuration's master first.
    must(await timed(poll({ ...ab.env, ...countedEnv(ab.env, ab) })), "warm-up");
    const hitCost = await cost(poll(ab.env), async () => void await timed(poll(ab.env)));
    const fetchCost = await cost(poll(ab.env), () => ab.stale());
    const offCost = await cost(poll(off));

    const ratio = wall(hits).median / wall(nodeMode).median;
    c.rows.push({
      section,
      what: "`poll` answered from the host's snapshot (no ssh)",
      value: wall(hits),
      baseline: { what: "node-mode `poll`, same node size", value: wall(nodeMode) },
      notes: costNotes(hitCost),
      target: { text: `≤ 1.2× node mode's poll (${ratio.toFixed(2)}×)`, met: ratio <= 1.2 },
    });
    for (
      const [what, k, base, baseWhat, costOf] of [
        [
          "`poll` reading the node (first of a window), master warm",
          "fetchWarm",
          "offWarm",
          "snapshot off, master warm",
          fetchCost,
        ],
        [
          "`poll` reading the node (first of a window), master cold",
          "fetchCold",
          "offCold",
          "snapshot off, master cold",
          undefined,
        ],
        [
          "`poll` with the snapshot off (`ONEVZ_POLL_WINDOW=0`), master warm",
          "offWarm",
          undefined,
          "",
          offCost,
        ],
        [
          "`poll` with the snapshot off, master cold",
          "offCold",
          undefined,
          "",
          undefined,
        ],
      ] as const
    ) {
      c.rows.push({
        section,
        what,
        value: wall(reads[k]),
        baseline: base ? { what: baseWhat, value: wall(reads[base]) } : undefined,
        notes: costOf
          ? costNotes(costOf, mean(nodeMs[k]))
          : [`node CPU ${mean(nodeMs[k]).toFixed(1)} ms`],
      });
    }

    // im-probe (steady state: the previous probe's CPU sample is kept on the front-end).
    const remotes = `${c.work}/remotes-agentless-${size}`;
    await Deno.mkdir(remotes, { recursive: true });
    const probeEnv = { ...ab.env, ONEVZ_REMOTES: remotes };
    const probe = on(["im-probe", "ovz", "cn1"], probeEnv);
    must(await timed(probe), "im-probe");
    const probes = { warm: [] as Run[], cold: [] as Run[] };
    const probeNode = { warm: [] as number[], cold: [] as number[] };
    for (let i = 0; i < n; i++) {
      probes.warm.push(await timedOnNode(ab, probe, probeNode.warm));
      await ab.closeMasters();
      probes.cold.push(await timedOnNode(ab, probe, probeNode.cold));
    }
    [...probes.warm, ...probes.cold].forEach((r) => must(r, "im-probe"));
    const probeCost = await cost(probe);
    for (const k of ["warm", "cold"] as const) {
      c.rows.push({
        section,
        what: `\`im-probe\`: own time, master ${k}`,
        value: own(probes[k]),
        notes: [
          `wall ${fmt(wall(probes[k]))} ms, inside vzctl/vzlist on the node ${
            fmt(stats(probes[k].map((r) => r.toolMs)))
          } ms`,
          ...(k === "warm" ? costNotes(probeCost, mean(probeNode[k])) : [
            `node CPU ${mean(probeNode[k]).toFixed(1)} ms`,
          ]),
        ],
      });
    }

    await lifecycle(ab, c, section, on, size);
  } finally {
    await ab.stop();
    await local.cleanup();
  }
}

/** The counted variant of an env: same settings, through the relay and the wrapper. */
function countedEnv(env: Record<string, string>, ab: AgentlessBed): Record<string, string> {
  return {
    ONEVZ_SSH_CONFIG: ab.counted.ONEVZ_SSH_CONFIG,
    ONEVZ_SSH: ab.counted.ONEVZ_SSH,
    ONEVZ_POLL_WINDOW: env.ONEVZ_POLL_WINDOW,
  };
}

function fmt(s: Stats): string {
  return `${s.median.toFixed(1)} / ${s.p95.toFixed(1)}`;
}

/** deploy → save → restore → shutdown of vps145, master warm and cold in turn. */
async function lifecycle(
  ab: AgentlessBed,
  c: AgentlessContext,
  section: string,
  on: (argv: string[], env: Record<string, string>, stdin?: string) => Spawn,
  size: number,
) {
  const xml = await Deno.readTextFile(`${REPO}/fixtures/templates/vps145.xml`);
  const doc = xml.replace(/<CONTEXT>.*<\/CONTEXT>/s, "");
  const tarball = await makeTemplateTarball("gz");
  const R = `${ab.bed.vmDir}45/images`;
  const nodeR = `${ab.bed.nodes.cn1.fsDir}/vm/45/images`;
  const deployment = `${c.work}/one-${size}/var/45/deployment.0`;
  await Deno.mkdir(`${c.work}/one-${size}/var/45`, { recursive: true });
  await Deno.writeTextFile(deployment, doc);
  const fresh = async () => {
    await Deno.remove(`${ab.bed.nodes.cn1.fsDir}/vm/45`, { recursive: true }).catch(() => {});
    await Deno.mkdir(nodeR, { recursive: true });
    await Deno.writeFile(`${nodeR}/disk.0`, tarball);
  };
  const actions = {
    deploy: on(["deploy", "cn1", deployment], ab.env),
    save: on(["save", "cn1", "1045", `${R}/checkpoint`], ab.env),
    restore: on(["restore", "cn1", `${R}/checkpoint`], ab.env),
    shutdown: on(["shutdown", "cn1", "1045"], ab.env),
  };
  type Timed = "deploy" | "save" | "shutdown";
  const runs: Record<string, Run[]> = {};
  const nodeMs: Record<string, number[]> = {};
  const n = Math.max(3, Math.ceil(c.runs / 6));
  for (let i = 0; i < 2 * n + 1; i++) {
    const cold = i % 2 === 1;
    await fresh();
    for (const a of ["deploy", "save", "restore", "shutdown"] as const) {
      if (cold) await ab.closeMasters();
      const key = `${a} ${cold ? "cold" : "warm"}`;
      const ms: number[] = [];
      const r = await timedOnNode(ab, actions[a], ms);
      must(r, `agentless ${a}`);
      if (i > 0) (runs[key] ??= []).push(r), (nodeMs[key] ??= []).push(ms[0]);
    }
  }
  // One counted run of each (warm), and their processes.
  const costs: Record<string, Cost> = {};
  await fresh();
  for (const a of ["deploy", "save", "restore", "shutdown"] as const) {
    await ab.takeSshCalls();
    ab.relay.reset();
    const spawn = actions[a];
    must(await timed({ ...spawn, env: { ...spawn.env, ...countedEnv(spawn.env!, ab) } }), a);
    costs[a] = {
      sshCalls: [...(await ab.takeSshCalls()).values()].reduce((x, y) => x + y, 0),
      sent: ab.relay.sent(),
      received: ab.relay.received(),
      programs: [],
    };
  }
  await fresh();
  for (const a of ["deploy", "save", "restore", "shutdown"] as const) {
    const programs = await childPrograms(actions[a]);
    costs[a].programs = programs;
  }
  for (const a of ["deploy", "save", "shutdown"] as Timed[]) {
    for (const k of ["warm", "cold"]) {
      const key = `${a} ${k}`;
      c.rows.push({
        section,
        what: `\`${a}\`${a === "save" ? "" : " (vps145)"}: own time, master ${k}`,
        value: own(runs[key]),
        notes: [
          `wall ${fmt(wall(runs[key]))} ms, inside the OpenVZ tools on the node ${
            fmt(stats(runs[key].map((r) => r.toolMs)))
          } ms`,
          ...(k === "warm" ? costNotes(costs[a], mean(nodeMs[key])) : [
            `node CPU ${mean(nodeMs[key]).toFixed(1)} ms`,
          ]),
        ],
      });
    }
  }
}

// ------------------------------------------------------------------- a polling interval

export async function pollingInterval(
  vms: number,
  hostCount: number,
  c: AgentlessContext,
  opts: { repeat: number; nodeModeSample: number },
): Promise<void> {
  const section = `Agentless polling interval: ${vms} VMs on ${hostCount} hosts (real sshd)`;
  const hosts = Array.from({ length: hostCount }, (_, i) => `cn${i + 1}`);
  const perHost = Math.ceil(vms / hostCount);
  const ab = await startAgentlessBed(hosts, c.work);
  try {
    const t0 = performance.now();
    await Promise.all(hosts.map((h) => populate(ab.bed, h, perHost)));
    for (const h of hosts) await installDevRemotes(ab.bed, h); // node mode's remotes
    c.log(
      `  ${perHost * hostCount} running containers on ${hostCount} nodes in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s`,
    );
    const empty = `${c.work}/empty.ts`;
    await Deno.writeTextFile(empty, "");
    const lanes = (perLane: number) =>
      hosts.map((h) => Array.from({ length: perLane }, (_, i) => [h, String(FIRST + i)]));

    /** Every lane in parallel, each one command at a time (one action per host). */
    const interval = async (
      perLane: number,
      spawn: (host: string, ctid: string) => Spawn,
      check: (r: Run) => void,
    ) => {
      const masters0 = new Map((await ab.masterPids()).map((p) => [p, processCpuMs(p)]));
      const cpu0 = reapedChildrenCpuMs();
      const node0 = ab.nodeCpuMs();
      const start = performance.now();
      await Promise.all(
        lanes(perLane).map(async (lane) => {
          for (const [h, ctid] of lane) check(await timed(spawn(h, ctid)));
        }),
      );
      const wallMs = performance.now() - start;
      const nodeMs = ab.nodeCpuMs() - node0;
      let cpuMs = reapedChildrenCpuMs() - cpu0;
      // ssh masters opened or used meanwhile left their parent: their CPU is read directly.
      for (const p of await ab.masterPids()) cpuMs += processCpuMs(p) - (masters0.get(p) ?? 0);
      return { wallMs, cpuMs, nodeMs };
    };
    const ok = (what: string) => (r: Run) => {
      must(r, what);
      if (what.includes("poll") && !/STATE=a /.test(r.stdout + r.stderr)) {
        throw new Error(`${what} said ${r.stdout}`);
      }
    };
    const agentless = (env: Record<string, string>) => (h: string, ctid: string): Spawn => ({
      argv: [...c.onevz, "poll", h, ctid],
      env,
      cwd: REPO,
    });
    const floorSpawn = (): Spawn => ({ argv: [c.deno, "run", "-A", "--quiet", empty], cwd: REPO });

    // The floor and the interval with the snapshot, in turn; the interval starts with cold
    // masters and stale snapshots, as it does when the polling interval (600 s by default)
    // is longer than the masters' lifetime (60 s).
    const floor: { wallMs: number; cpuMs: number }[] = [];
    const snap: { wallMs: number; cpuMs: number; nodeMs: number; calls: Map<string, number> }[] =
      [];
    for (let i = 0; i < opts.repeat; i++) {
      floor.push(await interval(perHost, () => floorSpawn(), ok("deno run")));
      await ab.closeMasters();
      await ab.stale();
      await ab.takeSshCalls();
      const r = await interval(
        perHost,
        agentless({ ...ab.env, ONEVZ_SSH: ab.counted.ONEVZ_SSH }),
        ok("poll"),
      );
      snap.push({ ...r, calls: await ab.takeSshCalls() });
    }
    // Snapshot off: every poll reads its node (the way before the snapshot).
    await ab.closeMasters();
    const before = await interval(
      perHost,
      agentless({ ...ab.env, ONEVZ_POLL_WINDOW: "0" }),
      ok("poll"),
    );
    // Round trips of one such poll, counted apart (the wrapper would weigh on the timing).
    await ab.takeSshCalls();
    must(
      await timed(
        agentless({ ...ab.env, ONEVZ_POLL_WINDOW: "0", ONEVZ_SSH: ab.counted.ONEVZ_SSH })(
          hosts[0],
          String(FIRST),
        ),
      ),
      "counted poll",
    );
    const perPoll = [...(await ab.takeSshCalls()).values()].reduce((a, b) => a + b, 0);

    // Node mode as oned runs it: one_vmm_ssh's `ssh -n host '…/vmm/ovz/poll CTID'`, a new ssh
    // connection each time, onevz on the node. Sampled (a handshake each), then scaled.
    const perLaneSample = Math.max(1, Math.round(opts.nodeModeSample / hostCount));
    const sampled = perLaneSample * hostCount;
    const srd = ab.bed.remoteDir;
    const nodeMode = await interval(
      perLaneSample,
      (h, ctid) => ({
        argv: [
          "sh",
          "-c",
          `ssh -F '${ab.bed.sshConfig}' -n ${h} 'if [ -x "${srd}/vmm/ovz/poll" ]; then ` +
          `${srd}/vmm/ovz/poll ${ctid}; else exit 42; fi' ; echo ExitCode: $? 1>&2`,
        ],
        cwd: REPO,
      }),
      ok("node-mode poll"),
    );
    const scale = (perHost * hostCount) / sampled;

    const total = perHost * hostCount;
    const med = (xs: number[]) => stats(xs);
    const sec = (xs: number[]) => med(xs.map((x) => x / 1000));
    const floorCpu = sec(floor.map((f) => f.cpuMs));
    const snapCpu = sec(snap.map((s) => s.cpuMs));
    const cpuRatio = snapCpu.median / floorCpu.median;
    const calls = snap.at(-1)!.calls;
    const perHostCalls = hosts.map((h) => calls.get(h) ?? 0);
    const oneEach = snap.every((s) => hosts.every((h) => s.calls.get(h) === 1));
    c.rows.push({
      section,
      what: "with the snapshot: front-end CPU (s)",
      value: snapCpu,
      unit: "s",
      baseline: { what: `${total} empty \`deno run\` starts, same lanes`, value: floorCpu },
      notes: [
        `wall ${(med(snap.map((s) => s.wallMs)).median / 1000).toFixed(2)} s (floor ${
          (med(floor.map((f) => f.wallMs)).median / 1000).toFixed(2)
        } s); masters cold at the start; ${opts.repeat} run${opts.repeat > 1 ? "s" : ""}`,
        `nodes' CPU answering: ${
          (med(snap.map((s) => s.nodeMs)).median / 1000).toFixed(2)
        } s in all`,
      ],
      target: { text: `≤ 1.3× the floor (${cpuRatio.toFixed(2)}×)`, met: cpuRatio <= 1.3 },
    });
    c.rows.push({
      section,
      what: "with the snapshot: ssh round trips per host",
      value: stats(perHostCalls),
      unit: "count",
      notes: [`${perHostCalls.reduce((a, b) => a + b, 0)} in all for ${total} polls`],
      target: { text: "one per host per window", met: oneEach },
    });
    c.rows.push({
      section,
      what: "snapshot off (`ONEVZ_POLL_WINDOW=0`): front-end CPU (s)",
      value: sec([before.cpuMs]),
      unit: "s",
      baseline: { what: "the floor", value: floorCpu },
      notes: [
        `wall ${(before.wallMs / 1000).toFixed(2)} s; ssh round trips ${perPoll} per poll, ${
          perPoll * perHost
        } per host`,
        `nodes' CPU answering: ${(before.nodeMs / 1000).toFixed(2)} s`,
      ],
    });
    c.rows.push({
      section,
      what:
        `node mode (one_vmm_ssh, new ssh connection per poll): front-end CPU (s), ${sampled} polls ×${
          scale.toFixed(0)
        }`,
      value: sec([nodeMode.cpuMs * scale]),
      unit: "s",
      baseline: { what: "the floor", value: floorCpu },
      notes: [
        `wall ${(nodeMode.wallMs * scale / 1000).toFixed(2)} s scaled (${
          (nodeMode.wallMs / 1000).toFixed(2)
        } s for ${sampled}); ${total / hostCount} ssh connections per host`,
        `nodes' CPU answering: ${(nodeMode.nodeMs * scale / 1000).toFixed(2)} s scaled`,
      ],
    });
  } finally {
    await ab.stop();
  }
}
