/**
 * poll <deploy_id>: one stdout line for oned,
 * `STATE=<a|p|d|-> USEDMEMORY=<KB> USEDCPU=<%> NETRX=<bytes> NETTX=<bytes>`.
 * Each state is chosen for what oned 2.2.1 does with it (a → RUNNING; p → SUSPENDED, capacity
 * released; d → UNKNOWN, from where a restart redeploys; `-` → nothing; e → FAILED and an
 * EPILOG_DELETE that removes R, private area included, so e is never answered):
 *  - Listed in /proc/vz/veinfo (the kernel's running containers, which vzlist also reads) → a.
 *  - No CTID.conf on a node where OpenVZ is observable (/proc/vz/veinfo and /etc/vz/vz.conf
 *    present, the files readable) → d. When OpenVZ cannot be observed (no OpenVZ kernel, no
 *    vzctl, sudo refused), poll fails instead: "not found" would be a guess.
 *  - Otherwise `vzctl status` tells the rest apart: deleted (the private area is gone) → d;
 *    mounted but not running (an operator's maintenance mount, or an action between its
 *    steps) → `-`; stopped with R/checkpoint present (and not marked restored in its record)
 *    or vzctl's `suspended` → p; stopped without a checkpoint (the guest halted, or shutdown
 *    left it for the epilog) → d.
 *  - Memory (KB) from the container's own /proc/bc/<CTID>/resources, else the tables of every
 *    container (/proc/bc/resources, /proc/user_beancounters): on a VSwap kernel
 *    (/proc/vz/vswap exists) physpages.held × 4 (RAM incl. page cache, what VSwap limits);
 *    on a UBC kernel privvmpages.held × 4 (allocated memory, what UBC limits).
 *  - CPU (% of one CPU) from /proc/vz/vestat columns 8 (uptime) and 9 (used): 100 × Δused /
 *    Δuptime against the previous sample kept in R/.onevz-poll.json (agentless snapshot: the
 *    host's previous read, kept on the front-end); the first poll (or after a restart)
 *    reports the average since start.
 *  - Network: veth → host-side vethCTID.N counters (/proc/net/dev, rx/tx swapped); venet →
 *    the kernel's per-container accounting in /proc/vz/venetstat (all traffic classes
 *    summed); both when the CT has both. Never runs anything inside the CT.
 *  - Values are clamped to 2147483647 (oned reads 32-bit ints), with a note on stderr.
 * Cost (oned polls every VM of every node): a running container costs no external process as
 * root; CTID.conf and the root-only /proc files come in one batch (Host.readFiles: one
 * `sudo -n tail` as non-root, one round trip over ssh), and only the container's own rows are
 * parsed out of tables listing every container. Only a container that is not running costs
 * one `vzctl status`. Agentless, a running container is answered from the host's snapshot
 * (poll_snapshot.ts: one ssh round trip per host per polling window), with the same decision
 * and values as below; anything else is read from the node directly.
 */
import type { CommandContext } from "../../cli/context.ts";
import { OnevzError } from "../../cli/errors.ts";
import { allFinished, type Host } from "../../host/host.ts";
import { confPathFor, type ContainerInfo, describeContainer } from "../../ovz/container.ts";
import { cpuPercent, parseVeinfo, veidSection, type VestatRow } from "../../ovz/parsers.ts";
import { ctStatus, deployIdArg, note, readRecord } from "./common.ts";
import { formatReply, type PollFiles, runningValues, vestatRow } from "./poll_answer.ts";

export const POLL_SAMPLE = ".onevz-poll.json";

export default async function poll(ctx: CommandContext): Promise<number> {
  const ctid = deployIdArg(ctx.args[0]);
  // Agentless: a running CT is answered from the host's snapshot when there is one.
  if (ctx.mode === "agentless") {
    const answer = await snapshotAnswer(ctx, ctid);
    if (answer) {
      answer.notes.forEach((line) => ctx.io.err(line));
      ctx.io.out(answer.reply + "\n");
      return 0;
    }
  }
  let files = await readPollFiles(ctx.host, ctid);
  if (files.conf === null) {
    await requireObservable(ctx.host, files);
    return print(ctx, "d");
  }
  const ct = describeContainer(ctid, confPathFor(ctx.host, ctid), files.conf);
  if (!files.running) {
    // Not among the kernel's running containers: vzctl tells the other states apart.
    const st = await ctStatus(ctx, ctid);
    if (!st.exists) return print(ctx, "d");
    if (!st.running) {
      if (st.mounted) return print(ctx, "-");
      const checkpoint = `${ct.imagesDir}/checkpoint`;
      const rec = await readRecord(ctx.host, checkpoint);
      const saved = (rec === undefined || (!rec.restoredAt && rec.ctid === ctid)) &&
        (await ctx.host.exists(checkpoint, { privileged: true }));
      return print(ctx, st.suspended || saved ? "p" : "d");
    }
    files = await readPollFiles(ctx.host, ctid, true); // it started since the first read
  }
  const row = vestatRow(files, ctid);
  const cpu = row ? await cpuAgainstSample(ctx, ct, row) : 0;
  return print(ctx, "a", runningValues(ct, files, cpu));
}

async function snapshotAnswer(ctx: CommandContext, ctid: number) {
  const { snapshotAnswer } = await import("./poll_snapshot.ts");
  return snapshotAnswer(ctx, ctid);
}

async function readPollFiles(host: Host, ctid: number, runningPerVzctl = false) {
  const paths = [
    confPathFor(host, ctid),
    host.sysPath("/proc/vz/veinfo"),
    host.sysPath(`/proc/bc/${ctid}/resources`),
    host.sysPath("/proc/vz/vestat"),
    host.sysPath("/proc/vz/venetstat"),
    host.sysPath("/proc/net/dev"),
  ];
  const [[conf, veinfo, ownBc, vestat, venetstat, netDev], vswap] = await allFinished([
    host.readFiles(paths, { privileged: true }),
    // vzctl's own test for a VSwap kernel (access(2) of /proc/vz/vswap, whatever its type).
    host.exists(host.sysPath("/proc/vz/vswap")),
  ]);
  const running = runningPerVzctl ||
    (veinfo !== null && parseVeinfo(veidSection(veinfo, ctid)).has(ctid));
  // A running container without its own file (older kernels): the tables of every CT.
  let beancounters = ownBc;
  if (conf !== null && running && ownBc === null) {
    const [all, ubc] = await host.readFiles(
      [host.sysPath("/proc/bc/resources"), host.sysPath("/proc/user_beancounters")],
      { privileged: true },
    );
    beancounters = all ?? ubc;
  }
  const files: PollFiles = {
    conf,
    kernel: veinfo !== null,
    running,
    beancounters,
    ownBeancounters: ownBc !== null,
    vswap,
    vestat,
    venetstat,
    netDev,
  };
  return files;
}

/**
 * A missing CTID.conf means "no such container" only where OpenVZ is there to be asked: an
 * OpenVZ kernel (/proc/vz/veinfo) and vzctl's configuration (/etc/vz/vz.conf).
 */
async function requireObservable(host: Host, files: PollFiles) {
  if (!files.kernel) {
    throw new OnevzError(
      `cannot observe OpenVZ on ${host.name}: ${
        host.sysPath("/proc/vz/veinfo")
      } does not exist (not an OpenVZ kernel?); not answering STATE=d`,
    );
  }
  if (!(await host.exists(host.sysPath("/etc/vz/vz.conf")))) {
    throw new OnevzError(
      `cannot observe OpenVZ on ${host.name}: ${
        host.sysPath("/etc/vz/vz.conf")
      } does not exist (vzctl not installed?); not answering STATE=d`,
    );
  }
}

function print(ctx: CommandContext, state: string, values?: Record<string, number>): number {
  const { reply, notes } = formatReply(state, values);
  notes.forEach((line) => ctx.io.err(line));
  ctx.io.out(reply + "\n");
  return 0;
}

async function cpuAgainstSample(ctx: CommandContext, ct: ContainerInfo, row: VestatRow) {
  const host = ctx.host;
  const samplePath = `${ct.imagesDir}/${POLL_SAMPLE}`;
  let prev: { uptime: bigint; used: bigint } | undefined;
  try {
    const s = JSON.parse((await host.readFile(samplePath)) ?? "null");
    if (s && s.ctid === ct.ctid) prev = { uptime: BigInt(s.uptime), used: BigInt(s.used) };
  } catch { /* no usable sample */ }
  const sample = { ctid: ct.ctid, uptime: String(row.uptime), used: String(row.used) };
  await host.writeFileAtomic(samplePath, JSON.stringify(sample) + "\n")
    .catch((e) => note(ctx, `cannot keep the CPU sample in ${samplePath}: ${e.message}`));
  return cpuPercent(row, prev);
}
