/**
 * Measuring tools for bench/bench.ts: timed runs of a command, the time it spent inside the
 * simulated OpenVZ tools (OVZ_SIM_TIMES), its own peak memory (bench/peak_rss.c), the
 * processes it started (strace), and a TCP relay that counts the bytes an ssh session sends.
 */
import { descendantsOf } from "../tests/helpers/procs.ts";

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit, ms. */
  wallMs: number;
  /** Time inside the OpenVZ tools it called (sum of their lifetimes), ms. */
  toolMs: number;
}

/** One line of a BENCHMARKS.md table. */
export interface Row {
  section: string;
  what: string;
  /** The measured figure (ms unless unit says otherwise). */
  value: Stats;
  /** "ms" (default), "s", "count", or "n/a" for a figure that could not be measured. */
  unit?: string;
  baseline?: { what: string; value: Stats };
  /** Extra lines: processes started, peak memory, bytes sent … */
  notes?: string[];
  target?: { text: string; met: boolean };
}

export interface Stats {
  median: number;
  p95: number;
  n: number;
}

/** Median and p95 (nearest rank) of a sample. */
export function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
  return { median: median(s), p95: at(0.95), n: s.length };
}

function median(sorted: number[]): number {
  const m = sorted.length >> 1;
  return sorted.length % 2 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
}

/**
 * Time covered by the simulator tools' lifetimes recorded in OVZ_SIM_TIMES (`tool start end
 * exit` per call, bash $EPOCHREALTIME seconds): the union of the intervals, since calls made
 * at the same time overlap. Then empty the file for the next run.
 */
export async function takeToolMs(timesFile: string): Promise<number> {
  let text = "";
  try {
    text = await Deno.readTextFile(timesFile);
  } catch { /* no tool was called */ }
  await Deno.writeTextFile(timesFile, "");
  const spans = text.split("\n").map((line) => line.trim().split(/\s+/))
    .filter(([, start, end]) => start && end)
    .map(([, start, end]) => [Number(start) * 1000, Number(end) * 1000])
    .sort((a, b) => a[0] - b[0]);
  let ms = 0;
  let reached = -Infinity;
  for (const [start, end] of spans) {
    if (end > reached) ms += end - Math.max(start, reached);
    reached = Math.max(reached, end);
  }
  return ms;
}

export interface Spawn {
  argv: string[];
  env?: Record<string, string>;
  stdin?: string | Uint8Array;
  cwd?: string;
  /** The OVZ_SIM_TIMES file to read, when it is not the env's (a node reached over ssh). */
  times?: string;
}

/** Start argv (prefixed by `before`) with the command's env, cwd and stdin; await its end. */
async function outputOf(
  cmd: Spawn,
  opts: { before?: string[]; env?: Record<string, string> } = {},
) {
  const argv = [...(opts.before ?? []), ...cmd.argv];
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: opts.env ?? cmd.env,
    cwd: cmd.cwd,
    stdin: cmd.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (cmd.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(typeof cmd.stdin === "string" ? new TextEncoder().encode(cmd.stdin) : cmd.stdin);
    await w.close();
  }
  return { pid: child.pid, out: await child.output() };
}

/** Run once, timing spawn to exit; toolMs from OVZ_SIM_TIMES when the env sets it. */
export async function timed(cmd: Spawn): Promise<Run> {
  const times = cmd.times ?? cmd.env?.OVZ_SIM_TIMES;
  if (times) await Deno.writeTextFile(times, "");
  const t0 = performance.now();
  const { out } = await outputOf(cmd);
  const wallMs = performance.now() - t0;
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
    wallMs,
    toolMs: times ? await takeToolMs(times) : 0,
  };
}

/** Fail loudly: a benchmark of a failing action measures nothing. */
export function must(r: { code: number; stderr: string }, what: string): void {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${r.stderr.trim()}`);
}

// ------------------------------------------------------------------------------- peak memory

/** Build bench/peak_rss.c into dir; undefined (with the reason printed) when no C compiler. */
export async function buildPeakRss(repo: string, dir: string): Promise<string | undefined> {
  const so = `${dir}/peak_rss.so`;
  try {
    const r = await new Deno.Command("cc", {
      args: ["-O2", "-shared", "-fPIC", "-o", so, `${repo}/bench/peak_rss.c`],
      stderr: "piped",
    }).output();
    if (r.code === 0) return so;
    console.error(`peak memory not measured: cc failed: ${new TextDecoder().decode(r.stderr)}`);
  } catch {
    console.error("peak memory not measured: no C compiler (cc)");
  }
  return undefined;
}

/** Peak RSS (kB) of the spawned process itself, not of the tools it ran. */
export async function peakRssKb(cmd: Spawn, preload: string): Promise<number> {
  const log = await Deno.makeTempFile({ prefix: "onevz-rss-" });
  try {
    const { pid, out } = await outputOf(cmd, {
      env: { ...cmd.env, LD_PRELOAD: preload, ONEVZ_BENCH_RSS_LOG: log },
    });
    must({ code: out.code, stderr: new TextDecoder().decode(out.stderr) }, cmd.argv.join(" "));
    for (const line of (await Deno.readTextFile(log)).split("\n")) {
      const [p, kb] = line.split(" ").map(Number);
      if (p === pid) return kb;
    }
    throw new Error(`no peak memory recorded for ${cmd.argv.join(" ")}`);
  } finally {
    await Deno.remove(log);
  }
}

// ------------------------------------------------------------------------ processes started

/**
 * The programs the spawned process started itself (its direct children that called execve),
 * from `strace -f`: threads (CLONE_THREAD) belong to their process, everything else is a new
 * process whose parent is the cloning thread's process.
 */
export async function childPrograms(cmd: Spawn): Promise<string[]> {
  const out = await Deno.makeTempFile({ prefix: "onevz-strace-" });
  try {
    const strace = [
      "strace",
      "-f",
      "-qq",
      "-s",
      "200",
      "-e",
      "trace=execve,clone,clone3,fork,vfork",
    ];
    const { out: res } = await outputOf(cmd, {
      before: [...strace, "-e", "signal=none", "-o", out],
    });
    must({ code: res.code, stderr: new TextDecoder().decode(res.stderr) }, "strace");
    return directChildren(await Deno.readTextFile(out));
  } finally {
    await Deno.remove(out);
  }
}

/** Parse `strace -f -o` output (see childPrograms). Exported for its unit test. */
export function directChildren(text: string): string[] {
  const processOf = new Map<number, number>(); // tid → tgid
  const parentOf = new Map<number, number>(); // tgid → parent tgid
  const pendingFlags = new Map<number, string>(); // tid → flags of an unfinished clone
  const pendingExec = new Map<number, string>(); // tid → file of an unfinished execve
  const programs = new Map<number, string>(); // process → the first program it executed
  let root: number | undefined;
  const tgid = (tid: number) => processOf.get(tid) ?? tid;
  for (const line of text.split("\n")) {
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const tid = Number(m[1]);
    const rest = m[2];
    root ??= tid;
    const call = /^(?:<\.\.\. )?(clone3?|fork|vfork)\b(.*)$/.exec(rest);
    if (call) {
      let body = call[2];
      if (/<unfinished \.\.\.>$/.test(body)) {
        pendingFlags.set(tid, body);
        continue;
      }
      if (rest.startsWith("<...")) body = (pendingFlags.get(tid) ?? "") + body;
      pendingFlags.delete(tid);
      const ret = /=\s*(\d+)\s*$/.exec(body);
      if (!ret) continue;
      const child = Number(ret[1]);
      if (/CLONE_THREAD/.test(body)) processOf.set(child, tgid(tid));
      else parentOf.set(child, tgid(tid));
      continue;
    }
    let file: string | undefined;
    const exec = /^execve\("([^"]*)"(.*)$/.exec(rest);
    if (exec && /<unfinished \.\.\.>$/.test(exec[2])) pendingExec.set(tid, exec[1]);
    else if (exec && /=\s*0\s*$/.test(exec[2])) file = exec[1];
    else if (/^<\.\.\. execve resumed>.*=\s*0\s*$/.test(rest)) file = pendingExec.get(tid);
    if (file !== undefined && !programs.has(tgid(tid))) programs.set(tgid(tid), file);
  }
  return [...programs].filter(([pid]) => pid !== root && parentOf.get(pid) === root)
    .map(([, file]) => file);
}

// ------------------------------------------------------------------------------ byte counter

/** A TCP relay to `port` on 127.0.0.1 that counts the bytes going through it each way. */
export function countingRelay(port: number): {
  port: number;
  /** Client to server. */
  sent: () => number;
  /** Server to client. */
  received: () => number;
  reset: () => void;
  close: () => void;
} {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let sent = 0;
  let received = 0;
  (async () => {
    for await (const client of listener) {
      (async () => {
        let server: Deno.Conn;
        try {
          server = await Deno.connect({ hostname: "127.0.0.1", port });
        } catch {
          client.close();
          return;
        }
        const count = new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, c) {
            sent += chunk.length;
            c.enqueue(chunk);
          },
        });
        const back = new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, c) {
            received += chunk.length;
            c.enqueue(chunk);
          },
        });
        await Promise.allSettled([
          client.readable.pipeThrough(count).pipeTo(server.writable),
          server.readable.pipeThrough(back).pipeTo(client.writable),
        ]);
      })();
    }
  })().catch(() => {/* closed */});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    sent: () => sent,
    received: () => received,
    reset: () => {
      sent = 0;
      received = 0;
    },
    close: () => listener.close(),
  };
}

// ------------------------------------------------------------------------------ CPU time

/** Clock ticks per second of /proc's times (USER_HZ; 100 on Linux x86). */
const TICK_MS = 10;

/** utime, stime, cutime, cstime of one /proc/<pid>/stat, in ms; undefined when it is gone. */
function statTimes(pid: number | "self"): number[] | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return [f[11], f[12], f[13], f[14]].map((x) => Number(x) * TICK_MS);
  } catch {
    return undefined;
  }
}

/**
 * CPU time (ms) of this process's children that ended and were waited for: every onevz, ssh
 * or deno started with Deno.Command, with what they waited for in turn.
 */
export function reapedChildrenCpuMs(): number {
  const t = statTimes("self")!;
  return t[2] + t[3];
}

/** CPU time (ms) of one process itself (an ssh master that left its parent), 0 when gone. */
export function processCpuMs(pid: number): number {
  const t = statTimes(pid);
  return t ? t[0] + t[1] : 0;
}

/**
 * CPU time (ms) of the process trees under `roots` (each process's own time and that of the
 * children it waited for): a node's sshd and everything its sessions ran.
 */
export function treeCpuMs(roots: number[]): number {
  let ms = 0;
  for (const pid of [...roots, ...descendantsOf(roots)]) {
    const t = statTimes(pid);
    if (t) ms += t[0] + t[1] + t[2] + t[3];
  }
  return ms;
}
