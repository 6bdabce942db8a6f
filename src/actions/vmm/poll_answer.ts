/**
 * poll's answer for a running container, from files already read (README §8): memory, CPU and
 * traffic as poll.ts's header describes them, and the reply line with its notes. Shared by a
 * direct poll (poll.ts) and the agentless snapshot (poll_snapshot.ts), which keeps each running
 * container's answer when it reads the node.
 */
import type { ContainerInfo } from "../../ovz/container.ts";
import {
  cpuPercent,
  netifHostNames,
  parseBeancounters,
  parseNetDev,
  parseVenetstat,
  parseVestat,
  veidSection,
} from "../../ovz/parsers.ts";
import { noteLine } from "./common.ts";

const INT_MAX = 2147483647;

/** What poll reads, in one batch: CTID.conf and the kernel's accounting tables. */
export interface PollFiles {
  conf: string | null;
  /** /proc/vz/veinfo exists: an OpenVZ kernel whose state this poll can see. */
  kernel: boolean;
  /** Listed in /proc/vz/veinfo, the kernel's running containers. */
  running: boolean;
  beancounters: string | null;
  /** The beancounters text is the container's own file (rows without the id column). */
  ownBeancounters: boolean;
  vswap: boolean;
  vestat: string | null;
  venetstat: string | null;
  netDev: string | null;
}

/**
 * poll's answer for a running container from files already read, its CPU measured against
 * the vestat row of an earlier read ("": none, the average since start): what the agentless
 * snapshot keeps for each running container (poll_snapshot.ts).
 */
export function runningReply(
  ct: ContainerInfo,
  files: PollFiles,
  previousVestat: string,
): { reply: string; notes: string[] } {
  const row = vestatRow(files, ct.ctid);
  const cpu = row ? cpuPercent(row, parseVestat(previousVestat).get(ct.ctid)) : 0;
  return formatReply("a", runningValues(ct, files, cpu));
}

/** The stdout line (without its newline) and the stderr notes of an answer. */
export function formatReply(state: string, values?: Record<string, number>) {
  const parts = [`STATE=${state}`];
  const notes: string[] = [];
  for (const [key, raw] of Object.entries(values ?? {})) {
    let v = Number.isFinite(raw) && raw > 0 ? Math.trunc(raw) : 0;
    if (v > INT_MAX) {
      notes.push(noteLine(`${key}=${v} exceeds what oned can read; reported as ${INT_MAX}`));
      v = INT_MAX;
    }
    parts.push(`${key}=${v}`);
  }
  return { reply: parts.join(" "), notes };
}

export function runningValues(ct: ContainerInfo, files: PollFiles, cpu: number) {
  return { USEDMEMORY: memoryKb(files, ct.ctid), USEDCPU: Math.round(cpu), ...network(files, ct) };
}

export function vestatRow(files: PollFiles, ctid: number) {
  return files.vestat ? parseVestat(veidSection(files.vestat, ctid)).get(ctid) : undefined;
}

function memoryKb(files: PollFiles, ctid: number): number {
  const text = files.beancounters ?? "";
  const bc = files.ownBeancounters
    ? parseBeancounters(text, ctid).get(ctid)
    : parseBeancounters(veidSection(text, ctid, { block: true })).get(ctid);
  if (!bc) return 0;
  const held = (files.vswap ? bc.physpages : bc.privvmpages)?.held ?? 0;
  return held * 4;
}

/** CPU % against the sample the previous poll kept in R (node mode, snapshot off). */
function network(files: PollFiles, ct: ContainerInfo): { NETRX: number; NETTX: number } {
  let rx = 0n;
  let tx = 0n;
  const veths = netifHostNames(ct.conf.NETIF);
  if (veths.length > 0 && files.netDev) {
    const devs = parseNetDev(files.netDev);
    for (const name of veths) {
      const c = devs.get(name);
      if (c) {
        rx += c.txBytes; // the host side sends what the container receives
        tx += c.rxBytes;
      }
    }
  }
  if (ct.conf.IP_ADDRESS?.trim() && files.venetstat) {
    // venet addresses: the kernel's per-container venet accounting (readable by root only).
    const c = parseVenetstat(veidSection(files.venetstat, ct.ctid)).get(ct.ctid);
    if (c) {
      rx += c.rxBytes;
      tx += c.txBytes;
    }
  }
  return { NETRX: Number(rx), NETTX: Number(tx) };
}
