/**
 * Shared helpers of the transfer manager actions (tm-clone, tm-ln, tm-mv, tm-delete, tm-mkswap,
 * tm-mkimage, tm-context). They run on the FRONT-END under one_tm, one per line of a transfer
 * script, and behave like the stock tm_common.sh scripts: progress lines `tm-x: …` on stdout,
 * and on failure the reason between `ERROR MESSAGE --8<------` and `ERROR MESSAGE ------>8--`
 * on stderr (one_tm turns that text into the TRANSFER FAILURE message), exit code 1.
 *
 * Nodes are reached through SshHost (ONEVZ_SSH, ONEVZ_SSH_CONFIG; ONEVZ_NODE_SYSROOT for
 * simulated nodes), the front-end through
 * LocalHost. Arguments are never pasted into shell strings: every remote command is an argv
 * that SshHost quotes; bulk data travels as the stdin/stdout of a remote `dd`/`tar`.
 */
import type { CommandContext } from "../../cli/context.ts";
import { CommandError, OnevzError, shellQuote } from "../../cli/errors.ts";
import type { Host } from "../../host/host.ts";
import { LocalHost } from "../../host/local.ts";
import { basename, dirname, join, squeezeSlashes } from "../../host/posix_path.ts";
import { SshHost } from "../../host/ssh.ts";
import { readDefaultsFile } from "../../one/defaults_file.ts";

export { CACHE_DIR_NAME } from "../../ovz/caches.ts";

export const ERROR_BEGIN = "ERROR MESSAGE --8<------";
export const ERROR_END = "ERROR MESSAGE ------>8--";

/** One `host:path` (or plain path) argument of a transfer line. */
export interface TmArg {
  /** The host as written, or undefined for a plain path (the front-end). */
  host?: string;
  path: string;
  /** True when the path lives on this machine (front-end). */
  local: boolean;
}

/** Names under which this front-end appears in transfer scripts (gethostname(), localhost). */
export function localNames(env: (k: string) => string | undefined = (k) => Deno.env.get(k)) {
  const names = new Set(["localhost", "127.0.0.1", "::1"]);
  const h = Deno.hostname();
  if (h) {
    names.add(h);
    names.add(h.split(".")[0]);
  }
  for (const n of (env("ONEVZ_FE_NAMES") ?? "").split(/[\s,]+/)) if (n) names.add(n);
  return names;
}

/**
 * Split a transfer argument like tm_common.sh's arg_host/arg_path: `host:path` → host and
 * path; a plain path (starting with "/" or without ":") belongs to the front-end.
 */
export function parseTmArg(arg: string, names: Set<string> = localNames()): TmArg {
  if (arg === "") throw new OnevzError("empty path argument");
  const colon = arg.indexOf(":");
  const slash = arg.indexOf("/");
  if (colon < 0 || (slash >= 0 && slash < colon)) {
    return { path: arg, local: true };
  }
  const host = arg.slice(0, colon);
  const path = arg.slice(colon + 1);
  if (!path) throw new OnevzError(`no path in '${arg}'`);
  if (!host) return { path, local: true };
  const short = host.split(".")[0];
  return { host, path, local: names.has(host) || names.has(short) };
}

/** Refuse relative paths and `.`/`..` segments: everything a TM touches is absolute. */
export function requireAbsolute(path: string, what: string): string {
  if (!path.startsWith("/")) throw new OnevzError(`${what} '${path}' is not an absolute path`);
  if (path.split("/").some((seg) => seg === ".." || seg === ".")) {
    throw new OnevzError(`${what} '${path}' contains '.' or '..' segments`);
  }
  if (/[\n\r\0]/.test(path)) throw new OnevzError(`${what} contains a control character`);
  return squeezeSlashes(path);
}

/** The Host a transfer argument lives on. Nodes are reached over ssh. */
export function hostFor(arg: TmArg): Host {
  const sysroot = Deno.env.get("ONEVZ_NODE_SYSROOT") ?? "";
  if (arg.local) return new LocalHost({ name: "front-end", sysroot, useSudo: false });
  return new SshHost(arg.host!, { sysroot });
}

/** Close ssh connections opened for an action. */
export async function closeHosts(...hosts: Host[]) {
  for (const h of hosts) if (h instanceof SshHost) await h.close().catch(() => {});
}

/**
 * VM layout facts from a node path `$VM_DIR/<vid>/images/disk.<i>` (or the images dir itself).
 * Returns undefined when the path does not have that shape.
 */
export function splitVmPath(
  path: string,
): { vmDir: string; vid: string; rest: string } | undefined {
  const m = /^(\/.*?)\/(\d+)\/(images(?:\/.*)?)$/.exec(squeezeSlashes(path));
  if (!m || m[1] === "") return undefined;
  return { vmDir: m[1], vid: m[2], rest: m[3] };
}

/** VM_DIR as oned sees it: ONEVZ_VM_DIR, else `VM_DIR=` of $ONE_LOCATION/var/config. */
export async function configuredVmDir(
  env: (k: string) => string | undefined,
): Promise<string | undefined> {
  const fromEnv = env("ONEVZ_VM_DIR");
  if (fromEnv) return squeezeSlashes(fromEnv);
  const oneLocation = env("ONE_LOCATION");
  const config = oneLocation ? `${oneLocation}/var/config` : "/var/lib/one/config";
  let text: string;
  try {
    text = await Deno.readTextFile(config);
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const m = /^\s*VM_DIR\s*=\s*"?([^"\s]+)"?\s*$/.exec(line);
    if (m) return squeezeSlashes(m[1]);
  }
  return undefined;
}

/** `${path}.onevz-tmp-<random>`: the temporary name a transfer writes before renaming. */
export function tempName(path: string): string {
  return `${dirname(path)}/.${basename(path)}.onevz-tmp-${crypto.randomUUID().slice(0, 8)}`;
}

/** Logger writing tm_common.sh style lines. */
export interface TmLog {
  (line: string): void;
}

/**
 * Run a TM action body with tm_common.sh conventions: log lines prefixed with the action
 * name, errors framed for one_tm, exit code 1 on failure (never 42).
 */
export async function runTm(
  ctx: CommandContext,
  name: string,
  body: (log: TmLog) => Promise<void>,
): Promise<number> {
  const log: TmLog = (line) => ctx.io.out(`${name}: ${line}\n`);
  try {
    log(ctx.args.join(" "));
    await body(log);
    return 0;
  } catch (e) {
    const msg = e instanceof OnevzError
      ? e.message
      : `internal error: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}`;
    log(`ERROR: ${msg}`);
    ctx.io.err(`${ERROR_BEGIN}\n${name}: ${msg}\n${ERROR_END}\n`);
    return e instanceof OnevzError && e.exitCode !== 1 ? e.exitCode : 1;
  }
}

/**
 * The driver settings as the front-end has them (built-in defaults when no file exists). A
 * file that exists but does not parse is an error: the TM never guesses the operator's limits.
 */
export async function loadFrontEndConfig(ctx: CommandContext) {
  const { parseDriverConfig } = await import("../../one/config.ts"); // zod: only when needed
  const { file, text } = await readDefaultsFile(ctx.env, ctx.remotesDir);
  return { file, config: parseDriverConfig(text, file) };
}

/** Result of a streamed transfer. */
export interface PipeResult {
  bytes: number;
}

function sshCommand(host: SshHost, argv: readonly string[], privileged?: boolean): string[] {
  const full = privileged && host.useSudo ? ["sudo", "-n", ...argv] : [...argv];
  return [...host.sshArgv(), full.map(shellQuote).join(" ")];
}

/** argv that runs `argv` on `host` as a local process (ssh for a node, itself for the FE). */
export function processArgv(host: Host, argv: readonly string[], privileged = false): string[] {
  if (host instanceof SshHost) return sshCommand(host, argv, privileged);
  return privileged && host.useSudo ? ["sudo", "-n", ...argv] : [...argv];
}

function failure(argv: readonly string[], code: number, stderr: string, where: string) {
  return new CommandError(where, argv, code, "", stderr);
}

/**
 * Stream bytes from one process into another without buffering them: `from` (argv run on its
 * host, or a local file) feeds `to` (argv run on its host). Counts the bytes that passed.
 * Both processes must succeed.
 */
export async function pipe(
  from:
    | { host: Host; argv: readonly string[]; privileged?: boolean }
    | { file: string }
    | { stream: ReadableStream<Uint8Array>; what: string },
  to: { host: Host; argv: readonly string[]; privileged?: boolean },
): Promise<PipeResult> {
  let bytes = 0;
  const counter = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, c) {
      bytes += chunk.length;
      c.enqueue(chunk);
    },
  });
  let sender: Deno.ChildProcess | undefined;
  let source: ReadableStream<Uint8Array>;
  if ("file" in from) {
    const f = await Deno.open(from.file, { read: true }); // before anything runs remotely
    source = f.readable;
  } else if ("stream" in from) {
    source = from.stream;
  } else {
    const fromArgv = processArgv(from.host, from.argv, from.privileged);
    sender = new Deno.Command(fromArgv[0], {
      args: fromArgv.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    source = sender.stdout;
  }
  const toArgv = processArgv(to.host, to.argv, to.privileged);
  const receiver = new Deno.Command(toArgv[0], {
    args: toArgv.slice(1),
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const piping = source.pipeThrough(counter).pipeTo(receiver.stdin).then(
    () => undefined,
    (e: unknown) => e,
  );
  const finished = (child: Deno.ChildProcess) =>
    Promise.all([child.status, new Response(child.stderr).text()]);
  const [pipeErr, [recvStatus, recvErr], sent] = await Promise.all([
    piping,
    finished(receiver),
    sender ? finished(sender) : undefined,
  ]);
  // A source stream that refused its data (a file changed while read) says why first.
  if (pipeErr instanceof OnevzError) throw pipeErr;
  const senderFailed = sent !== undefined && sent[0].code !== 0;
  const senderWhere = "host" in from ? from.host.name : "front-end";
  const senderArgv = "argv" in from ? from.argv : [];
  if (senderFailed && recvStatus.code !== 0) {
    // Both ends failed: name both, the sender's reason first (usually the cause).
    const a = failure(senderArgv, sent![0].code, sent![1], senderWhere);
    const b = failure(to.argv, recvStatus.code, recvErr, to.host.name);
    throw new OnevzError(`${a.message}; then ${b.message}`);
  }
  if (senderFailed) throw failure(senderArgv, sent![0].code, sent![1], senderWhere);
  if (recvStatus.code !== 0) throw failure(to.argv, recvStatus.code, recvErr, to.host.name);
  if (pipeErr) {
    throw new OnevzError(`transfer to ${to.host.name} broke: ${(pipeErr as Error).message}`);
  }
  return { bytes };
}

/**
 * Sender argv that writes a tar stream of `path` (file or directory) under its basename.
 * GNU tar: numeric owners, sparse files, permissions; `extra` options (xattrs, excludes) go
 * before the member name.
 */
export function tarCreate(path: string, extra: string[] = []): string[] {
  return [
    "tar",
    "--numeric-owner",
    "-S",
    ...extra,
    "-C",
    dirname(path),
    "-cf",
    "-",
    "--",
    basename(path),
  ];
}

/** Receiver argv that unpacks a tar stream into `dir` keeping owners and modes. */
export function tarExtract(dir: string, extra: string[] = []): string[] {
  return ["tar", "--numeric-owner", "-p", ...extra, "-C", dir, "-xf", "-"];
}

/** Join for node paths (never touches the local file system). */
export function nodeJoin(...parts: string[]): string {
  return squeezeSlashes(join(...parts));
}

/** Does a remote/local run fail only because the path is missing? Helper for messages. */
export function describe(arg: TmArg): string {
  return arg.host ? `${arg.host}:${arg.path}` : arg.path;
}
