/**
 * onevz benchmark: `deno task bench` (or `npm run bench`). Not part of the test suite; takes
 * several minutes (root for the parts on real sshd). Measures onevz from source (`deno run`);
 * writes BENCHMARKS.md.
 *
 * Sections, each figure a median and p95 over repeated runs beside a baseline measured in the
 * same run:
 *   - startup against `deno run` of an empty script (the runtime's floor), and the compiled
 *     executable when build.ts can make it here (the row says why when it cannot);
 *   - agentless (bench/agentless.ts): poll, im-probe, deploy, save and shutdown on a node with
 *     1, 100 and 1000 running containers over real sshd, ssh master warm and cold, with their
 *     ssh round trips, processes and bytes; a whole polling interval (--interval VMSxHOSTS)
 *     against the floor of as many empty `deno run` starts, snapshot off, and node mode;
 *   - node mode on simulated nodes of the same sizes: poll against bench/baseline/poll.sh, the
 *     stock shell way (vzctl status, vzlist, awk); im-probe, deploy, shutdown;
 *   - tm-clone over a real sshd against bench/baseline/tm_clone.sh, the stock full scp.
 * "Own time" is the wall time minus the time spent inside the OpenVZ tools the action called
 * (the simulator records each call's lifetime in OVZ_SIM_TIMES); the tools stand for work a
 * real node does in the kernel and vzctl, which onevz cannot make faster.
 *
 * Usage: deno run -A bench/bench.ts [--runs N] [--sizes 1,100,1000] [--image-mb 100]
 *          [--only startup,agentless,interval,nodes,tm] [--interval 1000x10]
 *          [--node-mode-sample 100] [--out BENCHMARKS.md] [--no-write]
 */
import { parseArgs } from "node:util";
import {
  DENO as NPM_DENO,
  makeSimNode,
  makeTemplateTarball,
  REPO,
} from "../tests/helpers/simnode.ts";
import { agentlessSize, pollingInterval } from "./agentless.ts";
import { startBed } from "../tests/testbed/bed.ts";
import {
  buildPeakRss,
  childPrograms,
  countingRelay,
  must,
  peakRssKb,
  type Row,
  type Run,
  type Spawn,
  type Stats,
  stats,
  timed,
} from "./measure.ts";

const { values: opt } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "30" },
    sizes: { type: "string", default: "1,100,1000" },
    "image-mb": { type: "string", default: "100" },
    out: { type: "string", default: `${REPO}/BENCHMARKS.md` },
    "no-write": { type: "boolean", default: false },
    only: { type: "string", default: "startup,nodes,agentless,interval,tm" },
    interval: { type: "string", default: "1000x10" },
    "node-mode-sample": { type: "string", default: "100" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (opt.help) {
  console.log(
    "usage: deno task bench [--runs N] [--sizes 1,100,1000] [--image-mb 100]\n" +
      "                       [--only startup,nodes,tm] [--out BENCHMARKS.md] [--no-write]\n" +
      "Measures onevz on simulated nodes and writes BENCHMARKS.md (a few minutes; root for tm).",
  );
  Deno.exit(0);
}
const RUNS = Math.max(3, Number(opt.runs));
const SIZES = opt.sizes!.split(",").map(Number);
const IMAGE_MB = Number(opt["image-mb"]);
const ONLY = new Set(opt.only!.split(","));
// Deno from npm (node_modules/.bin), else the one running the bench (a system Deno).
const DENO = await Deno.stat(NPM_DENO).then(() => NPM_DENO, () => Deno.execPath());
const ONEVZ = [DENO, "run", "-A", "--quiet", `${REPO}/main.ts`];
const [INTERVAL_VMS, INTERVAL_HOSTS] = opt.interval!.split("x").map(Number);

// ---------------------------------------------------------------------------- result rows

const rows: Row[] = [];

function log(line: string) {
  console.error(line);
}

function fmt(s: Stats, unit = "ms"): string {
  if (unit === "n/a") return "n/a";
  const n = (x: number) =>
    unit === "ms" ? x.toFixed(1) : unit === "s" ? x.toFixed(2) : String(Math.round(x));
  // One run (an interval, a scaled sample): the figure itself.
  return s.n === 1 ? n(s.median) : `${n(s.median)} / ${n(s.p95)}`;
}

async function repeat(n: number, fn: () => Promise<Run>): Promise<Run[]> {
  const out: Run[] = [];
  for (let i = 0; i < n; i++) out.push(await fn());
  return out;
}

const own = (runs: Run[]) => stats(runs.map((r) => r.wallMs - r.toolMs));
const wall = (runs: Run[]) => stats(runs.map((r) => r.wallMs));
const tool = (runs: Run[]) => stats(runs.map((r) => r.toolMs));

// ------------------------------------------------------------------------------- startup

async function startup(work: string) {
  const empty = `${work}/empty.ts`;
  await Deno.writeTextFile(empty, "");
  const viaName = (name: string, argv: string[]): Spawn => ({
    argv: ["bash", "-c", `exec -a ${name} "$@"`, "bash", ...argv],
    cwd: REPO,
  });
  const floor = { argv: [DENO, "run", "-A", "--quiet", empty], cwd: REPO };
  const version = { argv: [...ONEVZ, "--version"], cwd: REPO };
  const floorByName = viaName("poll", [DENO, "run", "-A", "--quiet", empty]);
  const noopByName = viaName("poll", [...ONEVZ, "--help"]);
  // Interleaved, so that both sides of a ratio see the same machine load.
  const runs: Record<string, Run[]> = { floor: [], version: [], floorByName: [], noop: [] };
  for (let i = 0; i < RUNS + 3; i++) {
    const r = {
      floor: await timed(floor),
      version: await timed(version),
      floorByName: await timed(floorByName),
      noop: await timed(noopByName),
    };
    if (i < 3) continue; // warm-up: module cache, page cache
    for (const [k, v] of Object.entries(r)) {
      must(v, k);
      runs[k].push(v);
    }
  }
  const ratio = wall(runs.version).median / wall(runs.floor).median;
  rows.push({
    section: "Startup",
    what: "`onevz --version`",
    value: wall(runs.version),
    baseline: { what: "`deno run` of an empty script", value: wall(runs.floor) },
    target: { text: `≤ 1.3× the empty script (${ratio.toFixed(2)}×)`, met: ratio <= 1.3 },
  });
  await compiled(work, floor);
  const ratio2 = wall(runs.noop).median / wall(runs.floorByName).median;
  rows.push({
    section: "Startup",
    what: "no-op dispatch by name (`exec -a poll onevz --help`)",
    value: wall(runs.noop),
    baseline: { what: "`exec -a poll deno run` of an empty script", value: wall(runs.floorByName) },
    target: { text: `≤ 1.3× the empty script (${ratio2.toFixed(2)}×)`, met: ratio2 <= 1.3 },
  });
}

/**
 * The compiled executable (build.ts, `deno compile`): measured when it can be built here;
 * otherwise the row says why (denort, the runtime it needs, is downloaded unless DENORT_BIN
 * names a copy).
 */
async function compiled(work: string, floor: Spawn) {
  const exe = `${work}/onevz`;
  const build = await new Deno.Command(DENO, {
    args: ["run", "-A", `${REPO}/build.ts`, "--output", exe],
    cwd: REPO,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const what = "`onevz --version`, compiled executable (`deno run -A build.ts`)";
  if (!build.success) {
    const why = new TextDecoder().decode(build.stderr).trim().split("\n")[0]
      .replace(/^build: /, "").replace(/\|/g, "\\|");
    rows.push({
      section: "Startup",
      what,
      value: stats([0]),
      unit: "n/a",
      notes: [`not measured: it could not be built here: ${why}`],
    });
    log(`compiled executable not measured: ${why}`);
    return;
  }
  const version = { argv: [exe, "--version"], cwd: REPO };
  const a: Run[] = [];
  const b: Run[] = [];
  for (let i = 0; i < RUNS + 3; i++) {
    const x = await timed(version);
    const y = await timed(floor);
    must(x, "compiled --version");
    if (i >= 3) a.push(x), b.push(y);
  }
  const ratio = wall(a).median / wall(b).median;
  rows.push({
    section: "Startup",
    what,
    value: wall(a),
    baseline: { what: "`deno run` of an empty script", value: wall(b) },
    target: { text: `≤ 1.3× the empty script (${ratio.toFixed(2)}×)`, met: ratio <= 1.3 },
  });
}

// --------------------------------------------------------------------- simulated node sizes

async function nodeSize(size: number, work: string, preload?: string) {
  const node = await makeSimNode({ flavour: "ubc", templates: ["centos-6-x86_64"] });
  try {
    const times = `${work}/times-${size}`;
    const env = { ...node.env, OVZ_SIM_TIMES: times };
    const t0 = performance.now();
    const pop = await node.tool("ovzsim", [
      "populate",
      node.root,
      String(size),
      "--first",
      "2001",
      "--ostemplate",
      "centos-6-x86_64",
    ]);
    must(pop, "ovzsim populate");
    log(`  ${size} running containers made in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const ctid = String(2000 + size); // the last one: the end of every /proc table

    // poll: onevz and the stock shell way, interleaved.
    const poll: Spawn = { argv: [...ONEVZ, "poll", ctid], env, cwd: REPO };
    const shell: Spawn = { argv: [`${REPO}/bench/baseline/poll.sh`, ctid], env, cwd: REPO };
    const onevzRuns: Run[] = [];
    const shellRuns: Run[] = [];
    for (let i = 0; i < RUNS + 2; i++) {
      const a = await timed(poll);
      const b = await timed(shell);
      must(a, "poll");
      must(b, "baseline poll");
      if (!a.stdout.startsWith("STATE=a ")) throw new Error(`poll said ${a.stdout}`);
      if (i >= 2) onevzRuns.push(a), shellRuns.push(b);
    }
    const pollProcs = await childPrograms(poll);
    const shellProcs = await childPrograms(shell);
    const pollRss = preload ? await peakRssKb(poll, preload) : undefined;
    rows.push({
      section: `Node mode, node with ${size} container${size > 1 ? "s" : ""}`,
      what: "`poll`: wall time",
      value: wall(onevzRuns),
      baseline: { what: "bench/baseline/poll.sh", value: wall(shellRuns) },
      notes: [
        `processes: ${pollProcs.length} (${names(pollProcs)}); baseline ${shellProcs.length}`,
        `inside vzctl: ${fmt(tool(onevzRuns))} ms`,
        ...(pollRss ? [`peak memory ${(pollRss / 1024).toFixed(1)} MiB`] : []),
      ],
    });
    rows.push({
      section: `Node mode, node with ${size} container${size > 1 ? "s" : ""}`,
      what: "`poll`: onevz's own time",
      value: own(onevzRuns),
      baseline: { what: "baseline's own time", value: own(shellRuns) },
      target: {
        text: "≤ 25 ms median, one process at most",
        met: own(onevzRuns).median <= 25 && pollProcs.length <= 1,
      },
    });
    pollByNodeSize.set(size, wall(onevzRuns));

    // im-probe (steady state: the previous probe's CPU sample is there after the warm-up).
    const remotes = `${work}/remotes-${size}`;
    await Deno.mkdir(remotes, { recursive: true });
    const probe: Spawn = {
      argv: [...ONEVZ, "im-probe", "ovz", "cn1"],
      env: { ...env, ONEVZ_REMOTES: remotes },
      cwd: REPO,
    };
    const probeRuns = (await repeat(RUNS + 1, () => timed(probe))).slice(1);
    probeRuns.forEach((r) => must(r, "im-probe"));
    const probeProcs = await childPrograms(probe);
    const probeRss = preload ? await peakRssKb(probe, preload) : undefined;
    rows.push({
      section: `Node mode, node with ${size} container${size > 1 ? "s" : ""}`,
      what: "`im-probe`: onevz's own time",
      value: own(probeRuns),
      notes: [
        `wall ${fmt(wall(probeRuns))} ms, inside vzctl/vzlist ${fmt(tool(probeRuns))} ms`,
        `processes: ${probeProcs.length} (${names(probeProcs)}), run at the same time`,
        ...(probeRss ? [`peak memory ${(probeRss / 1024).toFixed(1)} MiB`] : []),
      ],
      target: { text: "≤ 30 ms median", met: own(probeRuns).median <= 30 },
    });

    // deploy and shutdown of vps145 (VMID 45 → CTID 1045), repeated.
    const xml = await Deno.readTextFile(`${REPO}/fixtures/templates/vps145.xml`);
    const doc = xml.replace(/<CONTEXT>.*<\/CONTEXT>/s, "");
    const images = `${node.vmDir}45/images`;
    const tarball = await makeTemplateTarball("gz");
    const deploy: Spawn = {
      argv: [...ONEVZ, "deploy", `${images}/deployment.0`],
      env,
      stdin: doc,
      cwd: REPO,
    };
    const shutdown: Spawn = { argv: [...ONEVZ, "shutdown", "1045"], env, cwd: REPO };
    const deployRuns: Run[] = [];
    const shutdownRuns: Run[] = [];
    const fresh = async () => {
      // What the epilog's DELETE does after a shutdown: the container goes, then R.
      await node.tool("vzctl", ["--quiet", "destroy", "1045"]);
      await Deno.remove(images, { recursive: true }).catch(() => {});
      await Deno.mkdir(images, { recursive: true });
      await Deno.writeFile(`${images}/disk.0`, tarball);
    };
    const n = Math.max(5, Math.ceil(RUNS / 3));
    for (let i = 0; i < n + 1; i++) {
      await fresh();
      const d = await timed(deploy);
      must(d, "deploy");
      const s = await timed(shutdown);
      must(s, "shutdown");
      if (i > 0) deployRuns.push(d), shutdownRuns.push(s);
    }
    await fresh();
    const deployProcs = await childPrograms(deploy);
    const shutdownProcs = await childPrograms(shutdown);
    await fresh();
    const deployRss = preload ? await peakRssKb(deploy, preload) : undefined;
    const shutdownRss = preload ? await peakRssKb(shutdown, preload) : undefined;
    for (
      const [what, runs, procs, rss] of [
        ["`deploy` (vps145)", deployRuns, deployProcs, deployRss],
        ["`shutdown` (vps145)", shutdownRuns, shutdownProcs, shutdownRss],
      ] as const
    ) {
      rows.push({
        section: `Node mode, node with ${size} container${size > 1 ? "s" : ""}`,
        what: `${what}: onevz's own time`,
        value: own(runs),
        notes: [
          `wall ${fmt(wall(runs))} ms, inside the OpenVZ tools ${fmt(tool(runs))} ms`,
          `processes: ${procs.length} (${names(procs)})`,
          ...(rss ? [`peak memory ${(rss / 1024).toFixed(1)} MiB`] : []),
        ],
        target: { text: "≤ 100 ms median", met: own(runs).median <= 100 },
      });
    }
  } finally {
    await node.cleanup();
  }
}

const pollByNodeSize = new Map<number, Stats>();

/** `vzctl ×1, tail ×2`: program names counted. */
function names(files: string[]): string {
  const counts = new Map<string, number>();
  for (const f of files) {
    const n = f.slice(f.lastIndexOf("/") + 1);
    counts.set(n, (counts.get(n) ?? 0) + 1);
  }
  return [...counts].map(([n, c]) => c > 1 ? `${n} ×${c}` : n).join(", ") || "none";
}

// ------------------------------------------------------------------------------- tm-clone

async function tmClone(work: string, preload?: string) {
  if (Deno.uid() !== 0) {
    log("tm-clone skipped: the ssh test bed needs root");
    return;
  }
  // The login shell on the node sources ~/.bashrc for ssh commands; this machine's root has
  // one that initialises pyenv (~90 ms per session). A node's oneadmin has no such file, so
  // it is hidden inside the simulated node (a bind mount of /dev/null in its namespace).
  const bashrc = `${Deno.env.get("HOME") ?? "/root"}/.bashrc`;
  const hide = await Deno.stat(bashrc).then(() => [bashrc], () => []);
  const bed = await startBed({
    nodes: [{ name: "cn1" }],
    frontEnd: false,
    initSimulator: false,
    hidePrograms: hide,
  });
  try {
    const relay = countingRelay(bed.nodes.cn1.port);
    // The bed's ssh config, with cn1 reached through the counting relay.
    const config = `${work}/ssh_config`;
    await Deno.writeTextFile(
      config,
      (await Deno.readTextFile(bed.sshConfig)).replace(
        `Port ${bed.nodes.cn1.port}`,
        `Port ${relay.port}`,
      ),
    );
    const image = `${work}/image.img`;
    const size = IMAGE_MB * 1024 * 1024;
    const f = await Deno.open(image, { write: true, create: true, truncate: true });
    const chunk = new Uint8Array(1024 * 1024);
    for (let i = 0; i < IMAGE_MB; i++) {
      crypto.getRandomValues(chunk.subarray(0, 65536));
      for (let j = 65536; j < chunk.length; j += 65536) chunk.copyWithin(j, 0, 65536);
      chunk[0] = i & 0xff; // no two megabytes alike
      await f.write(chunk);
    }
    f.close();
    // Timed runs go straight to the node; the byte counts come from separate runs through
    // the relay (its own ssh connections), so that its latency never enters the timings.
    const direct = { ...bed.env, ONEVZ_SSH_CONFIG: bed.sshConfig, SSH_CONFIG: bed.sshConfig };
    const counted = { ...bed.env, ONEVZ_SSH_CONFIG: config, SSH_CONFIG: config };
    const vmDir = bed.vmDir.replace(/\/$/, "");
    let vid = 100;
    const target = () => `cn1:${vmDir}/${vid++}/images/disk.0`;
    const clone = (env: Record<string, string> = direct): Spawn => ({
      argv: [...ONEVZ, "tm-clone", image, target()],
      env,
      cwd: REPO,
    });
    const stock = (env: Record<string, string> = direct): Spawn => ({
      argv: [`${REPO}/bench/baseline/tm_clone.sh`, image, target()],
      env,
      cwd: REPO,
    });
    const msOf = async (spawn: Spawn) => {
      const r = await timed(spawn);
      must(r, spawn.argv.join(" "));
      return r.wallMs;
    };
    const bytesOf = async (spawn: Spawn) => {
      relay.reset();
      await msOf(spawn);
      return relay.sent();
    };
    const coldStart = async () => {
      // A first copy: no cache on the node, no digest beside the image yet.
      await bed.ssh("cn1", `rm -rf ${vmDir}/.onevz-cache ${vmDir}/[0-9]*`);
      await Deno.remove(`${image}.sha256`).catch(() => {});
    };
    const n = Math.max(3, Math.ceil(RUNS / 6));
    const first: number[] = [];
    const full: number[] = [];
    for (let i = 0; i < n; i++) {
      await coldStart();
      first.push(await msOf(clone()));
      full.push(await msOf(stock()));
    }
    const warm: number[] = [];
    for (let i = 0; i < RUNS; i++) warm.push(await msOf(clone()));
    // A hit is used only when the entry is provably unchanged since it was verified (inode,
    // size, mtime, ctime); anything that moves its ctime (a chmod here, a VM directory deleted
    // in real life) makes the node hash it again with sha256sum before linking it.
    const digest = (await Deno.readTextFile(`${image}.sha256`)).trim().split(" ").pop();
    const entry = `${vmDir}/.onevz-cache/${digest}`;
    const rehash: number[] = [];
    for (let i = 0; i < Math.max(3, Math.ceil(RUNS / 3)); i++) {
      await bed.ssh("cn1", `chmod 0444 ${entry}`);
      rehash.push(await msOf(clone()));
    }
    const fresh: number[] = [];
    const noPersist = { ...direct, ONEVZ_SSH_PERSIST: "0" };
    for (let i = 0; i < Math.max(3, Math.ceil(RUNS / 3)); i++) {
      fresh.push(await msOf(clone(noPersist)));
    }
    await coldStart();
    const firstBytes = await bytesOf(clone(counted));
    const stockBytes = await bytesOf(stock(counted));
    const freshBytes = await bytesOf(clone({ ...counted, ONEVZ_SSH_PERSIST: "0" }));
    const warmBytes = await bytesOf(clone(counted)); // reuses the connection of the first copy
    const cloneRss = preload ? await peakRssKb(clone(), preload) : undefined;
    relay.close();
    const section = `tm-clone of a ${IMAGE_MB} MB image (real sshd)`;
    const speedup = stats(full).median / stats(warm).median;
    const share = warmBytes / size;
    rows.push({
      section,
      what: "first copy to a node (hashes the image, sends it, verifies it on the node)",
      value: stats(first),
      baseline: { what: "stock tm_clone.sh (full scp)", value: stats(full) },
      notes: [`bytes sent ${fmtBytes(firstBytes)}; stock ${fmtBytes(stockBytes)}`],
    });
    rows.push({
      section,
      what: "repeat copy to the same node (cache hit, ssh connection kept from the last action)",
      value: stats(warm),
      baseline: { what: "stock tm_clone.sh (full scp every time)", value: stats(full) },
      notes: [
        `bytes sent ${fmtBytes(warmBytes)} (${(share * 100).toFixed(4)} % of the image)`,
        ...(cloneRss ? [`peak memory ${(cloneRss / 1024).toFixed(1)} MiB`] : []),
      ],
      target: {
        text: `< 1 % of the bytes and ≥ 10× faster than the full scp (${speedup.toFixed(1)}×)`,
        met: share < 0.01 && speedup >= 10,
      },
    });
    rows.push({
      section,
      what: "repeat copy after the cache entry's ctime moved (hashed again on the node)",
      value: stats(rehash),
      baseline: { what: "verified cache hit (entry unchanged since verified)", value: stats(warm) },
      notes: [`${IMAGE_MB} MB read by sha256sum on the node; 0 image bytes sent`],
    });
    rows.push({
      section,
      what: "repeat copy with a new ssh connection (`ONEVZ_SSH_PERSIST=0`)",
      value: stats(fresh),
      baseline: { what: "stock tm_clone.sh (full scp every time)", value: stats(full) },
      notes: [`bytes sent ${fmtBytes(freshBytes)} (the ssh handshake included)`],
    });
  } finally {
    await bed.stop();
  }
}

function fmtBytes(b: number): string {
  return b >= 1024 * 1024 ? `${(b / 1024 / 1024).toFixed(1)} MiB` : `${(b / 1024).toFixed(1)} KiB`;
}

// --------------------------------------------------------------------------------- report

async function machine(): Promise<string[]> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo");
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? "unknown CPU";
  const cores = (cpuinfo.match(/^processor\s*:/gm) ?? []).length;
  const memKb = Number(/MemTotal:\s*(\d+)/.exec(await Deno.readTextFile("/proc/meminfo"))?.[1]);
  const text = async (cmd: string, args: string[]) =>
    new TextDecoder().decode((await new Deno.Command(cmd, { args, cwd: REPO }).output()).stdout)
      .trim();
  const commit = await text("git", ["rev-parse", "--short", "HEAD"]);
  const dirty = (await text("git", ["status", "--porcelain", "--", "src", "main.ts"])) !== "";
  return [
    `- Date: ${new Date().toISOString().replace(/\.\d+Z$/, "Z")}`,
    `- Machine: ${model}, ${cores} cores, ${
      (memKb / 1024 / 1024).toFixed(0)
    } GiB, Linux ${(await text("uname", ["-r"]))}`,
    `- onevz ${commit}${dirty ? " (with uncommitted changes)" : ""}, from source with ${
      (await text(DENO, ["--version"])).split("\n")[0]
    }`,
    `- Runs: ${RUNS} per figure (tm-clone first copies: ${Math.max(3, Math.ceil(RUNS / 6))})`,
  ];
}

function report(header: string[]): string {
  const out = [
    "# onevz benchmarks",
    "",
    "Written by `deno task bench` (bench/bench.ts); do not edit by hand. Figures are",
    'median / p95 in milliseconds unless stated. "Own time" is wall time minus the time',
    "spent inside the OpenVZ tools the action called (the simulator's vzctl, vzlist, … are",
    "Deno programs and take ~20 ms each; on a real node they take what the kernel takes).",
    "",
    ...header,
    "",
  ];
  let section = "";
  for (const r of rows) {
    if (r.section !== section) {
      section = r.section;
      out.push(`## ${section}`, "");
      out.push("| measured | median / p95 | baseline | baseline median / p95 | ratio | target |");
      out.push("|---|---|---|---|---|---|");
    }
    const ratio = r.baseline && r.unit !== "n/a"
      ? `${(r.value.median / r.baseline.value.median).toFixed(2)}×`
      : "";
    const target = r.target ? `${r.target.met ? "met" : "**missed**"}: ${r.target.text}` : "";
    out.push(
      `| ${r.what} | ${fmt(r.value, r.unit)} | ${r.baseline?.what ?? ""} | ${
        r.baseline ? fmt(r.baseline.value, r.unit) : ""
      } | ${ratio} | ${target} |`,
    );
    for (const n of r.notes ?? []) out.push(`| ↳ ${n} | | | | | |`);
  }
  out.push("");
  return out.join("\n");
}

/** The hand-written reading of the figures (profiles, misses), kept in bench/analysis.md. */
async function analysis(): Promise<string> {
  try {
    return "\n" + await Deno.readTextFile(`${REPO}/bench/analysis.md`);
  } catch {
    return "";
  }
}

// ----------------------------------------------------------------------------------- main

const work = await Deno.makeTempDir({ prefix: "onevz-bench-" });
try {
  const preload = await buildPeakRss(REPO, work);
  if (ONLY.has("startup")) {
    log("startup …");
    await startup(work);
  }
  const agentless = { deno: DENO, onevz: ONEVZ, rows, log, work, runs: RUNS };
  for (const size of ONLY.has("agentless") ? SIZES : []) {
    if (Deno.uid() !== 0) break;
    log(`agentless, node with ${size} containers …`);
    await agentlessSize(size, agentless);
  }
  if (ONLY.has("interval") && Deno.uid() === 0) {
    log(`agentless polling interval: ${INTERVAL_VMS} VMs on ${INTERVAL_HOSTS} hosts …`);
    await pollingInterval(INTERVAL_VMS, INTERVAL_HOSTS, agentless, {
      repeat: RUNS >= 10 ? 3 : 1,
      nodeModeSample: Number(opt["node-mode-sample"]),
    });
  }
  if ((ONLY.has("agentless") || ONLY.has("interval")) && Deno.uid() !== 0) {
    log("agentless parts skipped: the ssh test bed needs root");
  }
  for (const size of ONLY.has("nodes") ? SIZES : []) {
    log(`node with ${size} containers …`);
    await nodeSize(size, work, preload);
  }
  if (pollByNodeSize.size > 1) {
    const smallest = Math.min(...pollByNodeSize.keys());
    const largest = Math.max(...pollByNodeSize.keys());
    const ratio = pollByNodeSize.get(largest)!.median / pollByNodeSize.get(smallest)!.median;
    rows.push({
      section: "Node mode, scaling",
      what: `\`poll\` at ${largest} containers`,
      value: pollByNodeSize.get(largest)!,
      baseline: { what: `\`poll\` at ${smallest}`, value: pollByNodeSize.get(smallest)! },
      target: { text: `within 1.5× (${ratio.toFixed(2)}×)`, met: ratio <= 1.5 },
    });
  }
  if (ONLY.has("tm")) {
    log(`tm-clone of ${IMAGE_MB} MB …`);
    await tmClone(work, preload);
  }
  const text = report(await machine()) + await analysis();
  console.log(text);
  if (!opt["no-write"]) {
    await Deno.writeTextFile(opt.out!, text);
    log(`written to ${opt.out}`);
  }
} finally {
  await Deno.remove(work, { recursive: true });
}
