/**
 * Steps shared by the VMM actions (shutdown, cancel, save, restore, migrate, poll, reboot):
 * argument validation, vzctl calls, the container's state, the checkpoint record and handing
 * root-written files over to the images directory's owner. Kept free of the XML parser and zod
 * (see driver_files.ts) so that poll starts fast.
 */
import type { CommandContext } from "../../cli/context.ts";
import { InvalidInputError, OnevzError } from "../../cli/errors.ts";
import type { Host, RunResult } from "../../host/host.ts";
import { parseCtid } from "../../one/ctid.ts";
import { parseVzctlStatus, type VzctlStatus } from "../../ovz/parsers.ts";

// ---------------------------------------------------------------------------------------------
// Arguments (validated before anything runs)

export function deployIdArg(text: string | undefined): number {
  const ctid = text === undefined ? undefined : parseCtid(text);
  if (ctid === undefined) {
    throw new InvalidInputError(
      `invalid deploy id ${JSON.stringify(text ?? "")}: expected a CTID (101..2147483644)`,
    );
  }
  return ctid;
}

/** An absolute path without `..` components or control characters (checkpoint files). */
export function absolutePathArg(text: string | undefined, what: string): string {
  if (
    !text || !text.startsWith("/") || text.split("/").includes("..") ||
    [...text].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)
  ) {
    throw new InvalidInputError(
      `invalid ${what} ${JSON.stringify(text ?? "")}: expected an absolute path without ..`,
    );
  }
  return text;
}

/**
 * The checkpoint must be a file directly in the container's VM directory R (OpenNebula passes
 * R/checkpoint): save removes and writes files beside it, restore links and records there.
 */
export function checkpointInside(checkpoint: string, imagesDir: string): void {
  // oned's VM_DIR ends in "/", so it passes paths like /var/lib/one//7/images/checkpoint.
  const norm = (p: string) => p.replace(/\/+/g, "/").replace(/\/$/, "");
  if (norm(dirOf(norm(checkpoint))) !== norm(imagesDir)) {
    throw new InvalidInputError(
      `invalid checkpoint path ${JSON.stringify(checkpoint)}: not in the VM directory ${imagesDir}`,
    );
  }
}

/** A host name or address as OpenNebula passes it (letters, digits, `.`, `-`, `_`, `:`). */
export function hostArg(text: string | undefined): string {
  if (!text || !/^[A-Za-z0-9_][A-Za-z0-9_.:-]*$/.test(text) || text.length > 253) {
    throw new InvalidInputError(`invalid host name ${JSON.stringify(text ?? "")}`);
  }
  return text;
}

// ---------------------------------------------------------------------------------------------
// OpenVZ tools

export function vzctl(
  ctx: CommandContext,
  args: string[],
  opts: { check?: boolean } = {},
): Promise<RunResult> {
  return ctx.host.run(["vzctl", ...args], { privileged: true, check: opts.check });
}

/** `vzctl status CTID` (never locks, always exit 0). */
export async function ctStatus(ctx: CommandContext, ctid: number): Promise<VzctlStatus> {
  const r = await vzctl(ctx, ["status", String(ctid)]);
  const st = parseVzctlStatus(r.stdout);
  if (!st) {
    throw new OnevzError(`cannot understand 'vzctl status ${ctid}' output: ${r.stdout.trim()}`);
  }
  return st;
}

/**
 * Stop (if running) and unmount (if mounted): leaves the container ready for destroy.
 * Returns the status it last saw.
 */
export async function stopContainer(
  ctx: CommandContext,
  ctid: number,
  opts: { fast?: boolean } = {},
): Promise<VzctlStatus> {
  let st = await ctStatus(ctx, ctid);
  if (st.running) {
    await vzctl(ctx, ["stop", String(ctid), ...(opts.fast ? ["--fast"] : [])]);
    st = await ctStatus(ctx, ctid);
    if (st.running) throw new OnevzError(`container ${ctid} is still running after vzctl stop`);
  }
  if (st.mounted) {
    await vzctl(ctx, ["umount", String(ctid)]);
    st = { ...st, mounted: false };
  }
  return st;
}

/** `vzctl destroy` of a stopped container (its config becomes CTID.conf.destroyed). */
export async function destroyContainer(ctx: CommandContext, ctid: number): Promise<void> {
  await vzctl(ctx, ["destroy", String(ctid)]);
}

// ---------------------------------------------------------------------------------------------
// Checkpoint record: <checkpoint>.onevz.json, written by save, read by restore and poll.

export interface CheckpointRecord {
  ctid: number;
  vmid?: number;
  savedAt: string;
  /** Set by restore; a checkpoint kept after restore no longer means "suspended". */
  restoredAt?: string;
}

export const recordPathFor = (checkpoint: string) => `${checkpoint}.onevz.json`;
/** Copy of CTID.conf kept beside the checkpoint so restore can recreate it on another node. */
export const confCopyPathFor = (checkpoint: string) => `${dirOf(checkpoint)}/ctid.conf`;

export function dirOf(path: string): string {
  const i = path.replace(/\/+$/, "").lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

export async function readRecord(
  host: Host,
  checkpoint: string,
): Promise<CheckpointRecord | undefined> {
  const text = await host.readFile(recordPathFor(checkpoint), { privileged: true })
    .catch(() => null);
  if (!text) return undefined;
  try {
    const rec = JSON.parse(text) as CheckpointRecord;
    return parseCtid(String(rec.ctid)) !== undefined ? rec : undefined;
  } catch {
    return undefined;
  }
}

export async function writeRecord(host: Host, checkpoint: string, rec: CheckpointRecord) {
  await host.writeFileAtomic(recordPathFor(checkpoint), JSON.stringify(rec) + "\n", {
    mode: 0o644,
  });
}

// ---------------------------------------------------------------------------------------------
// Files written as root inside R are handed to R's owner (oneadmin), mode 0600, so the TM can
// move them (scp as oneadmin) and nobody else can read a memory dump or a disk archive.

export async function handOver(host: Host, path: string, imagesDir: string): Promise<void> {
  const r = await host.run(["stat", "-c", "%u:%g", "--", imagesDir], { check: false });
  const owner = r.stdout.trim();
  if (r.status === 0 && /^\d+:\d+$/.test(owner)) {
    await host.run(["chown", owner, "--", path], { privileged: true });
  }
  await host.run(["chmod", "600", "--", path], { privileged: true });
}

/** Message helper for stderr notes (never a line starting with "ExitCode:"). */
export function note(ctx: CommandContext, text: string): void {
  ctx.io.err(noteLine(text));
}

/** A note as written on stderr: one line, never one that oned's driver reads as `ExitCode:`. */
export function noteLine(text: string): string {
  return `onevz: ${text.replace(/^ExitCode:/gm, "ExitCode -")}\n`;
}
