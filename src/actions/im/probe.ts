/**
 * im-probe: the OpenVZ host probe, run by run_probes as `./probe ovz <host>` from
 * remotes/im/ovz.d (one_im_ssh, on the node) or remotes/im/ovz_fe.d (one_im_sh, agentless: the
 * node is reached through ctx.host over ssh).
 *
 * Prints KEY=VALUE lines; run_probes joins them into one line and oned replaces every comma by
 * a newline before parsing, so values never contain commas, values with blanks are quoted, and
 * quoted values hold no `"` or `=`. Units follow the stock probes: CPU in percent (100 per
 * core), memory in KB. CPU usage comes from /proc/stat (never top): over the monitoring
 * interval, against the sample the previous probe of the host left (probeSamplePath); the
 * first probe, or one after a reboot, takes two samples ~150 ms apart.
 *
 * Reading (readProbeFacts, through the Host) is separate from formatting (formatProbe, pure).
 */
import type { CommandContext } from "../../cli/context.ts";
import { allFinished, type Host } from "../../host/host.ts";
import { LocalHost } from "../../host/local.ts";

export interface CpuSample {
  /** Sum of user..steal jiffies over all CPUs. */
  total: number;
  /** idle + iowait jiffies. */
  idle: number;
}

export interface ProbeFacts {
  hostname: string;
  arch: string;
  modelName: string;
  cpuMhz: number;
  cores: number;
  /** Fraction of CPU time busy between the two samples, 0..1. */
  busy: number;
  memTotalKb: number;
  memFreeKb: number;
  buffersKb: number;
  cachedKb: number;
  netRx: number;
  netTx: number;
  kernel: "vswap" | "ubc";
  vzctlVersion: string;
  runningCts: number;
  templates: string[];
  /** Problems met while probing (e.g. vzlist refused by sudo), reported as OVZ_PROBLEM. */
  problems: string[];
}

// ---------------------------------------------------------------- pure parsing helpers

export function parseCpuinfo(text: string): { model: string; mhz: number; processors: number } {
  let model = "";
  let mhz = 0;
  let processors = 0;
  for (const line of text.split("\n")) {
    const i = line.indexOf(":");
    if (i < 0) continue;
    const key = line.slice(0, i).trim();
    const value = line.slice(i + 1).trim();
    if (key === "processor") processors++;
    else if (key === "model name" && !model) model = value;
    else if (key === "cpu MHz" && !mhz) mhz = Math.round(parseFloat(value)) || 0;
  }
  return { model, mhz, processors };
}

export function parseProcStat(text: string): { sample: CpuSample; cores: number } {
  let sample: CpuSample = { total: 0, idle: 0 };
  let cores = 0;
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f[0] === "cpu") {
      const n = f.slice(1, 9).map((x) => parseInt(x, 10) || 0);
      sample = { total: n.reduce((a, b) => a + b, 0), idle: (n[3] ?? 0) + (n[4] ?? 0) };
    } else if (/^cpu\d+$/.test(f[0])) {
      cores++;
    }
  }
  return { sample, cores };
}

/** Busy fraction between two samples (0 when the counters did not move). */
export function busyFraction(a: CpuSample, b: CpuSample): number {
  const dt = b.total - a.total;
  const di = b.idle - a.idle;
  if (dt <= 0) return 0;
  return Math.min(1, Math.max(0, 1 - di / dt));
}

export function parseMeminfo(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m = /^(\w+(?:\(\w+\))?):\s+(\d+)/.exec(line);
    if (m) out[m[1]] = parseInt(m[2], 10);
  }
  return out;
}

export function parseNetDev(text: string): { rx: number; tx: number } {
  let rx = 0;
  let tx = 0;
  for (const line of text.split("\n")) {
    const i = line.indexOf(":");
    if (i < 0) continue;
    const name = line.slice(0, i).trim();
    if (!name || name === "lo" || name.includes("|")) continue;
    const f = line.slice(i + 1).trim().split(/\s+/);
    if (f.length < 9) continue;
    rx += parseInt(f[0], 10) || 0;
    tx += parseInt(f[8], 10) || 0;
  }
  return { rx, tx };
}

/** `KEY=value` lines of a shell-style config (vz.conf), unquoted. */
export function parseShellConf(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2].trim();
    if (/^".*"$/.test(v) || /^'.*'$/.test(v)) v = v.slice(1, -1);
    out[m[1]] = v;
  }
  return out;
}

const TEMPLATE_SUFFIX = /\.tar(\.(gz|bz2|xz|lzo|lz4|zst))?$|\.tgz$/;

/**
 * OS template names from the file names in $TEMPLATE/cache: the administrator's, not the
 * VMs' own images deploy placed there (`<name>-onevz-<digest12>`, see src/ovz/caches.ts).
 */
export function templateNames(files: string[]): string[] {
  return [
    ...new Set(
      files.filter((f) =>
        TEMPLATE_SUFFIX.test(f) && !f.startsWith(".") && !/-onevz-[0-9a-f]{12}\./.test(f) &&
        !f.includes(".onevz-tmp-")
      )
        .map((f) => f.replace(TEMPLATE_SUFFIX, "")),
    ),
  ].sort();
}

// ---------------------------------------------------------------- formatting (pure)

/** A value oned's template parser reads back unchanged: no commas, quoted when needed. */
export function formatValue(value: string | number, forceQuote = false): string {
  if (typeof value === "number") return String(Math.max(0, Math.round(value)));
  const v = value.replace(/[,\n\r\t]/g, " ").replace(/\s+/g, " ").trim();
  if (!forceQuote && v !== "" && /^[A-Za-z0-9_.:\/+@%-]+$/.test(v)) return v;
  return `"${v.replace(/["=]/g, "").replace(/\s+/g, " ").trim()}"`;
}

/** The probe's output: one KEY=VALUE per line (run_probes joins them with blanks). */
export function formatProbe(f: ProbeFacts): string {
  const totalCpu = Math.max(1, f.cores) * 100;
  const usedCpu = Math.min(totalCpu, Math.round(f.busy * totalCpu));
  const usedMem = Math.max(0, f.memTotalKb - f.memFreeKb - f.buffersKb - f.cachedKb);
  const pairs: [string, string][] = [
    ["HYPERVISOR", "ovz"],
    ["HOSTNAME", formatValue(f.hostname || "unknown")],
    ["ARCH", formatValue(f.arch || "unknown")],
    ["MODELNAME", formatValue(f.modelName || "unknown", true)],
    ["CPUSPEED", formatValue(f.cpuMhz)],
    ["TOTALCPU", formatValue(totalCpu)],
    ["USEDCPU", formatValue(usedCpu)],
    ["FREECPU", formatValue(totalCpu - usedCpu)],
    ["TOTALMEMORY", formatValue(f.memTotalKb)],
    ["USEDMEMORY", formatValue(usedMem)],
    ["FREEMEMORY", formatValue(Math.max(0, f.memTotalKb - usedMem))],
    ["NETRX", formatValue(f.netRx)],
    ["NETTX", formatValue(f.netTx)],
    ["OVZ_KERNEL", f.kernel],
    ["VZCTL_VERSION", formatValue(f.vzctlVersion || "none")],
    ["OVZ_RUNNING_CTS", formatValue(f.runningCts)],
    ["OVZ_TEMPLATES", formatValue(f.templates.join(" "), true)],
  ];
  if (f.problems.length) pairs.push(["OVZ_PROBLEM", formatValue(f.problems.join("; "), true)]);
  return pairs.map(([k, v]) => `${k}=${v}\n`).join("");
}

// ---------------------------------------------------------------- reading (through the Host)

const PROC_FILES = ["/proc/stat", "/proc/cpuinfo", "/proc/meminfo", "/proc/net/dev"];

/** The /proc files, in one batch: from the sysroot where it has them, else the real ones. */
async function readProcFiles(host: Host, extra: string[]): Promise<(string | null)[]> {
  const inRoot = host.sysroot ? PROC_FILES.map((p) => host.sysPath(p)) : PROC_FILES;
  const texts = await host.readFiles([...inRoot, ...extra]);
  const missing = PROC_FILES.filter((_, i) => host.sysroot && texts[i] === null);
  if (missing.length > 0) {
    const real = await host.readFiles(missing);
    for (const [i, p] of PROC_FILES.entries()) {
      if (texts[i] === null) texts[i] = real[missing.indexOf(p)] ?? null;
    }
  }
  return texts;
}

function firstLine(text: string): string {
  return text.trim().split("\n")[0]?.trim() ?? "";
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

export interface ProbeOptions {
  /** Length of the CPU sample when there is no usable previous one (default 150 ms). */
  sampleMs?: number;
  /** /proc/stat totals seen by the previous probe of this host (the monitoring interval). */
  previous?: CpuSample;
}

/**
 * Everything the probe reports. The tools (uname, vzctl --version, vzlist) and one batch of
 * files are read at the same time. CPU use is measured over the interval since the previous
 * probe when its sample is given; otherwise over a ~150 ms window.
 */
export async function readProbeFacts(
  host: Host,
  opts: ProbeOptions = {},
): Promise<ProbeFacts & { cpuSample: CpuSample }> {
  const problems: string[] = [];
  const t0 = Date.now();
  const [files, vswap, uname, vzctl, vzlist] = await allFinished([
    readProcFiles(host, [host.sysPath("/etc/vz/vz.conf")]),
    host.exists(host.sysPath("/proc/vz/vswap")),
    host.run(["uname", "-n", "-m"], { check: false }),
    host.run(["vzctl", "--version"], { privileged: true, check: false }),
    host.run(["vzlist", "-H", "-o", "ctid"], { privileged: true, check: false }),
  ]);
  const [statText, cpuinfo, meminfo, netdev, vzconfText] = files;
  let vzctlVersion = "none";
  if (vzctl.status === 0) {
    const m = /(\d+(?:\.\d+)+)/.exec(vzctl.stdout + vzctl.stderr);
    vzctlVersion = m ? m[1] : firstLine(vzctl.stdout) || "unknown";
  } else {
    problems.push(`vzctl --version: ${firstLine(vzctl.stderr) || "exit " + vzctl.status}`);
  }
  let runningCts = 0;
  if (vzlist.status === 0) {
    runningCts = vzlist.stdout.split("\n").filter((l) => /^\s*\d+\s*$/.test(l)).length;
  } else if (!/Container\(s\) not found/i.test(vzlist.stderr)) {
    problems.push(`vzlist: ${firstLine(vzlist.stderr) || "exit " + vzlist.status}`);
  }
  let templates: string[] = [];
  const conf = parseShellConf(vzconfText ?? "");
  const templateDir = (conf.TEMPLATE || "/vz/template").replace(/\/+$/, "");
  // Listed only once vz.conf has named the directory; on the node itself without a process.
  const cache = await host.listDir(`${templateDir}/cache`);
  if (cache) templates = templateNames(cache);
  let stat = parseProcStat(statText ?? "");
  let busy: number;
  const prev = opts.previous;
  if (prev && stat.sample.total > prev.total && stat.sample.idle >= prev.idle) {
    busy = busyFraction(prev, stat.sample);
  } else {
    // No usable previous probe (the first one, or the node rebooted): sample now.
    const waited = Date.now() - t0;
    const sampleMs = opts.sampleMs ?? 150;
    if (waited < sampleMs) await sleep(sampleMs - waited);
    const [again] = await readProcFiles(host, []);
    const first = stat;
    stat = parseProcStat(again ?? "");
    busy = busyFraction(first.sample, stat.sample);
  }
  const [name, arch] = uname.stdout.trim().split(/\s+/);
  const ci = parseCpuinfo(cpuinfo ?? "");
  const mem = parseMeminfo(meminfo ?? "");
  const net = parseNetDev(netdev ?? "");
  return {
    hostname: name ?? "",
    arch: arch ?? "",
    modelName: ci.model,
    cpuMhz: ci.mhz,
    cores: stat.cores || ci.processors || 1,
    busy,
    memTotalKb: mem.MemTotal ?? 0,
    memFreeKb: mem.MemFree ?? 0,
    buffersKb: mem.Buffers ?? 0,
    cachedKb: mem.Cached ?? 0,
    netRx: net.rx,
    netTx: net.tx,
    kernel: vswap ? "vswap" : "ubc",
    vzctlVersion,
    runningCts,
    templates,
    problems,
    cpuSample: stat.sample,
  };
}

/**
 * Where the previous probe's /proc/stat sample of a host is kept: beside the remotes (the
 * node's SCRIPTS_REMOTE_DIR under one_im_ssh, the front-end's remotes agentless), else in the
 * user's runtime directory ($XDG_RUNTIME_DIR). Run by hand without either, nothing is kept
 * (never in /tmp) and each probe samples for itself.
 */
export function probeSamplePath(ctx: CommandContext): string | undefined {
  const dir = ctx.remotesDir || ctx.env("XDG_RUNTIME_DIR");
  if (!dir) return undefined;
  return `${dir.replace(/\/+$/, "")}/.onevz-probe-${
    ctx.host.name.replace(/[^A-Za-z0-9_.-]/g, "_")
  }.json`;
}

/** The previous probe's sample, if it is there and sane (else the probe samples for itself). */
async function loadSample(local: LocalHost, path: string): Promise<CpuSample | undefined> {
  try {
    const s = JSON.parse((await local.readFile(path)) ?? "null");
    if (Number.isSafeInteger(s?.total) && Number.isSafeInteger(s?.idle)) {
      return { total: s.total, idle: s.idle };
    }
  } catch { /* unreadable: sample now */ }
  return undefined;
}

export default async function (ctx: CommandContext): Promise<number> {
  // The sample lives where onevz runs (the node, or the front-end when agentless).
  const local = new LocalHost({ useSudo: false });
  const samplePath = probeSamplePath(ctx);
  const previous = samplePath ? await loadSample(local, samplePath) : undefined;
  const facts = await readProbeFacts(ctx.host, { previous });
  if (samplePath) {
    await local.writeFileAtomic(samplePath, JSON.stringify(facts.cpuSample) + "\n")
      .catch(() => {}); // not kept: the next probe samples for itself
  }
  ctx.io.out(formatProbe(facts));
  return 0;
}
