/**
 * OpenNebula 2.2.1's driver calls, reproduced exactly (see
 * /work/shared/reference/opennebula-2.2.1-drivers.md §2.3, §4, §6 and "Observed by running the
 * real 2.2.1 Ruby drivers"). The only addition is `-F <bed ssh config>` on ssh and scp, which
 * stands in for oneadmin's ~/.ssh/config.
 */
import { join } from "node:path";
import { type Bed, type Output, run } from "./bed.ts";

export type Result = "SUCCESS" | "FAILURE";

export interface DriverReply extends Output {
  result: Result;
  /** What oned sees after `<ACTION> <RESULT> <id> `: the first line of the info ("-" if empty). */
  info: string;
  /** The full info text the driver sends (stdout on success, stderr on failure, or "-"). */
  rawInfo: string;
  /** The first line of the driver's reply, e.g. `POLL SUCCESS 7 STATE=a ...`. */
  reply: string;
  /** The local shell command line that was run (the last one, after a remotes copy). */
  command: string;
  /** True when the script exited 42 and the remotes were copied before a second run. */
  copiedRemotes: boolean;
}

/** 2.2.1's magic "remote script missing" code (CommandManager.rb MAGIC_RC). */
export const MAGIC_RC = 42;

/** Quote for sh (for our own additions: the -F config path). */
export function sq(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * Run `sh -c <line>` locally like Open3.popen3 and take the exit code as CommandManager.rb
 * does: "taken from the **first** line of stderr matching `^ExitCode: (\d*)$`".
 */
async function runLine(
  bed: Bed,
  line: string,
  stdin: string | Uint8Array,
): Promise<{ out: Output; code: number }> {
  const out = await run("sh", ["-c", line], { stdin, env: bed.env });
  const m = out.stderr.split("\n").map((l) => /^ExitCode: (\d*)$/.exec(l)).find((x) => x);
  // Ruby: "".to_i == 0; a missing line leaves the code unset (nil), which is not 0.
  const code = m ? Number(m[1] || "0") : 255;
  return { out, code };
}

function reply(
  action: string,
  id: string | number,
  r: { out: Output; code: number },
  command: string,
  copiedRemotes: boolean,
  failureInfo?: string,
): DriverReply {
  // §2.3: "code 0 → <ACTION> SUCCESS <vid> <stdout>; otherwise → <ACTION> FAILURE <vid>
  // <stderr>. Stderr includes the trailing `ExitCode: N` line. Empty output is replaced by `-`."
  const result: Result = r.code === 0 ? "SUCCESS" : "FAILURE";
  let rawInfo = result === "SUCCESS" ? r.out.stdout : (failureInfo ?? r.out.stderr);
  if (rawInfo.trim() === "") rawInfo = "-";
  // send_message does STDOUT.puts "#{action} #{result} #{id} #{info}"; oned reads line by line.
  const reply = `${action} ${result} ${id} ${rawInfo}`.split("\n")[0];
  const info = reply.slice(`${action} ${result} ${id} `.length);
  return { ...r.out, code: r.code, result, info, rawInfo, reply, command, copiedRemotes };
}

/**
 * `scp -r <dir>/. HOST:SRD`, the driver's remotes copy (OpenSSH 9 uses SFTP mode: file
 * symlinks arrive as copies; directory symlinks are not copied).
 */
export async function scpRemotes(bed: Bed, fromDir: string, host: string): Promise<Output> {
  return await run("scp", ["-F", bed.sshConfig, "-r", `${fromDir}/.`, `${host}:${bed.remoteDir}`]);
}

/**
 * one_vmm_ssh: RemotesCommand.run. §2.3:
 *   cmd_string = "'if [ -x \"#{cmd_file}\" ]; then #{command}; else exit 42; fi'"
 *   "ssh #{host} #{cmd_string} ; echo ExitCode: $? 1>&2"      # when stdin given (deploy)
 *   "ssh -n #{host} #{cmd_string} ; echo ExitCode: $? 1>&2"   # otherwise
 * On exit 42 the driver copies the front-end remotes (scp -r) and reruns once.
 * `args` are joined with blanks, unquoted, as the driver does.
 */
export async function vmmSsh(
  bed: Bed,
  host: string,
  action: string,
  args: string[],
  stdin?: string | Uint8Array,
  opts: { vid?: number | string; hypervisor?: string } = {},
): Promise<DriverReply> {
  const hyp = opts.hypervisor ?? "ovz";
  const cmdFile = `${bed.remoteDir}/vmm/${hyp}/${action}`;
  const command = [cmdFile, ...args].join(" ");
  const cmdString = `'if [ -x "${cmdFile}" ]; then ${command}; else exit ${MAGIC_RC}; fi'`;
  const line = `ssh -F ${sq(bed.sshConfig)}${
    stdin === undefined ? " -n" : ""
  } ${host} ${cmdString} ; echo ExitCode: $? 1>&2`;
  const input = stdin ?? "";
  let r = await runLine(bed, line, input);
  let copied = false;
  if (r.code === MAGIC_RC) {
    await scpRemotes(bed, bed.frontRemotes, host);
    copied = true;
    r = await runLine(bed, line, input);
  }
  return reply(action.toUpperCase(), opts.vid ?? 0, r, line, copied);
}

/**
 * one_vmm_sh (agentless): runs locally
 *   sh -c "<remotes>/vmm/<hyp>/<action> <host> <args> ; echo ExitCode: $? 1>&2"
 * with empty stdin. argv: deploy [host, front-end path of the deployment file]; poll
 * [host, ctid]; save [host, ctid, R/checkpoint]; restore [host, R/checkpoint]; …
 */
export async function vmmSh(
  bed: Bed,
  host: string,
  action: string,
  args: string[],
  opts: { vid?: number | string; hypervisor?: string; remotes?: string } = {},
): Promise<DriverReply> {
  const remotes = opts.remotes ?? bed.frontRemotes;
  const hyp = opts.hypervisor ?? "ovz_fe";
  const line = `${
    [join(remotes, "vmm", hyp, action), host, ...args].join(" ")
  } ; echo ExitCode: $? 1>&2`;
  const r = await runLine(bed, line, "");
  return reply(action.toUpperCase(), opts.vid ?? 0, r, line, false);
}

/**
 * one_im_ssh MONITOR: with the update flag, `scp -r <remotes>//. HOST:SRD` (failure only
 * logged), then RemotesCommand.run("SRD/im/run_probes <hyp> <host>") over ssh WITHOUT -n:
 * "@retries lands in the stdin parameter ... ssh ... receives "0" on stdin". Probes run as
 * `./probe <hyp> <host>` with cwd SRD/im/<hyp>.d. Reply: `MONITOR SUCCESS <hid> <stdout>` or
 * `MONITOR FAILURE <hid> Could not monitor host <host>.`
 */
export async function imSsh(
  bed: Bed,
  host: string,
  opts: { hid?: number; hypervisor?: string; update?: boolean } = {},
): Promise<DriverReply> {
  const hyp = opts.hypervisor ?? "ovz";
  if (opts.update) await scpRemotes(bed, bed.frontRemotes, host);
  const cmdFile = `${bed.remoteDir}/im/run_probes`;
  const cmdString =
    `'if [ -x "${cmdFile}" ]; then ${cmdFile} ${hyp} ${host}; else exit ${MAGIC_RC}; fi'`;
  const line = `ssh -F ${sq(bed.sshConfig)} ${host} ${cmdString} ; echo ExitCode: $? 1>&2`;
  let r = await runLine(bed, line, "0");
  let copied = false;
  if (r.code === MAGIC_RC) {
    await scpRemotes(bed, bed.frontRemotes, host);
    copied = true;
    r = await runLine(bed, line, "0");
  }
  return reply("MONITOR", opts.hid ?? 0, r, line, copied, `Could not monitor host ${host}.`);
}

/** one_im_sh MONITOR: `<remotes>/im/run_probes <hyp> <host>` locally, empty stdin. */
export async function imSh(
  bed: Bed,
  host: string,
  opts: { hid?: number; hypervisor?: string; remotes?: string } = {},
): Promise<DriverReply> {
  const remotes = opts.remotes ?? bed.frontRemotes;
  const hyp = opts.hypervisor ?? "ovz_fe";
  const line = `${join(remotes, "im/run_probes")} ${hyp} ${host} ; echo ExitCode: $? 1>&2`;
  const r = await runLine(bed, line, "");
  return reply("MONITOR", opts.hid ?? 0, r, line, false, `Could not monitor host ${host}.`);
}

/**
 * one_hm remote hook, §6: `ssh -n <host> '<command> <args>' ; echo ExitCode: $? 1>&2`;
 * empty arguments become a literal `-`. Reply `EXECUTE SUCCESS|FAILURE <vid> <hook_name>`.
 */
export async function hookSsh(
  bed: Bed,
  host: string,
  command: string,
  args: string,
  opts: { vid?: number; hookName?: string } = {},
): Promise<DriverReply> {
  const a = args.trim() === "" ? "-" : args;
  const line = `ssh -F ${sq(bed.sshConfig)} -n ${host} '${command} ${a}' ; echo ExitCode: $? 1>&2`;
  const r = await runLine(bed, line, "");
  const out = reply("EXECUTE", opts.vid ?? 0, r, line, false);
  const hookReply = `EXECUTE ${out.result} ${opts.vid ?? 0} ${opts.hookName ?? "hook"}`;
  return { ...out, reply: hookReply, info: opts.hookName ?? "hook" };
}
