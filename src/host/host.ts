/**
 * The Host port: the only way onevz touches a machine. Every external command is an argv
 * array passed to `run`, never a shell string built from template values. File helpers are
 * expressed as fixed commands over `run` so that local, sudo and ssh hosts behave the same;
 * LocalHost overrides them with direct file access where no privilege change is needed.
 */
import { CommandError } from "../cli/errors.ts";

export interface RunOptions {
  /** Bytes or text fed to the command's stdin. */
  stdin?: string | Uint8Array;
  /** The command needs root: run through `sudo -n` when the host user is not root. */
  privileged?: boolean;
  /** Throw CommandError on a non-zero exit (default true). */
  check?: boolean;
  /** Kill the command after this many milliseconds. */
  timeoutMs?: number;
}

export interface RunResult {
  argv: readonly string[];
  status: number;
  stdout: string;
  stderr: string;
  /** stdout as bytes, when the host kept them (binary reads). */
  bytes?: Uint8Array;
}

/** One executed command, as observers (demo output, tests, logs) see it. */
export interface CommandRecord {
  host: string;
  argv: readonly string[];
  status: number;
  stderr: string;
}

export type CommandObserver = (record: CommandRecord) => void;

export abstract class Host {
  /** Host name used in messages ("localhost", "cn1"). */
  abstract readonly name: string;
  /**
   * Prefix for OpenVZ system paths (/etc/vz, /proc/vz, /proc/user_beancounters, /proc/stat).
   * Empty on a real node; tests and chroots point it at a simulated root (ONEVZ_SYSROOT).
   */
  sysroot = "";
  /** Prefix privileged commands with `sudo -n` (false when already root). */
  useSudo = false;
  private observers: CommandObserver[] = [];

  /** Spawn the command exactly as given; implementations never involve a local shell. */
  protected abstract spawn(argv: readonly string[], opts: RunOptions): Promise<RunResult>;

  /** Release what the host holds open (an ssh master connection); a no-op by default. */
  async close(): Promise<void> {}

  observe(observer: CommandObserver): () => void {
    this.observers.push(observer);
    return () => {
      this.observers = this.observers.filter((o) => o !== observer);
    };
  }

  /** Map an absolute OpenVZ system path into this host's sysroot. */
  sysPath(path: string): string {
    return this.sysroot ? this.sysroot.replace(/\/+$/, "") + path : path;
  }

  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const full = opts.privileged && this.useSudo ? ["sudo", "-n", ...argv] : [...argv];
    const result = await this.spawn(full, opts);
    for (const o of this.observers) {
      o({ host: this.name, argv: full, status: result.status, stderr: result.stderr });
    }
    if (result.status !== 0 && opts.check !== false) {
      throw new CommandError(this.name, full, result.status, result.stdout, result.stderr);
    }
    return result;
  }

  /** Contents of a text file, or null when it does not exist (one command, see readFiles). */
  async readFile(path: string, opts: { privileged?: boolean } = {}): Promise<string | null> {
    return (await this.readFiles([path], opts))[0];
  }

  /**
   * Several text files at once, null for each that does not exist, in one command:
   * `tail -v -n +1 -- a b …` prints every file whole after a `==> name <==` header (GNU tail),
   * so a poll through sudo or ssh costs one process or round trip instead of one per file.
   */
  async readFiles(
    paths: readonly string[],
    opts: { privileged?: boolean } = {},
  ): Promise<(string | null)[]> {
    if (paths.length === 0) return [];
    const argv = ["tail", "-v", "-n", "+1", "--", ...paths];
    const r = await this.run(argv, { ...opts, check: false });
    const found = splitTailOutput(r.stdout, paths);
    if (r.status !== 0) {
      // Only files tail could not find may be missing; any other complaint is an error.
      const unexplained = r.stderr.split("\n").filter((line) =>
        line.trim() !== "" && !/No such file or directory/.test(line)
      );
      if (unexplained.length > 0 || paths.every((_, i) => found[i] !== null)) {
        throw new CommandError(this.name, argv, r.status, r.stdout, r.stderr);
      }
    }
    return found;
  }

  /**
   * Run a `test` that answers yes (0) or no (1). Anything else — sudo refusing, ssh failing,
   * a message on stderr — is an error, never a silent "no".
   */
  protected async probe(argv: string[], opts: { privileged?: boolean }): Promise<boolean> {
    const r = await this.run(argv, { ...opts, check: false });
    if (r.status === 0) return true;
    if (r.status === 1 && r.stderr.trim() === "") return false;
    const shown = opts.privileged && this.useSudo ? ["sudo", "-n", ...argv] : argv;
    throw new CommandError(this.name, shown, r.status, r.stdout, r.stderr);
  }

  /**
   * Read a regular file directly (no command) when this host can: undefined when it cannot
   * (see readRegular in files.ts, which then uses fixed commands). LocalHost overrides it.
   */
  readRegularDirect(
    _path: string,
    _maxBytes: number,
    _opts: { privileged?: boolean; what?: string; head?: boolean },
  ): Promise<Uint8Array | null> | undefined {
    return undefined;
  }

  /** Names in a directory, dot files included; null when it cannot be listed (missing). */
  async listDir(path: string): Promise<string[] | null> {
    const r = await this.run(["ls", "-1A", "--", path], { check: false });
    if (r.status !== 0) return null;
    return r.stdout.split("\n").filter((n) => n !== "");
  }

  /** The path exists, or is a symbolic link (even a dangling one). */
  async exists(path: string, opts: { privileged?: boolean } = {}): Promise<boolean> {
    return await this.probe(["test", "-e", path, "-o", "-L", path], opts);
  }

  /** True when the path itself is a symbolic link (not followed). */
  async isSymlink(path: string, opts: { privileged?: boolean } = {}): Promise<boolean> {
    return await this.probe(["test", "-L", path], opts);
  }

  async isDirectory(path: string, opts: { privileged?: boolean } = {}): Promise<boolean> {
    return await this.probe(["test", "-d", path], opts);
  }

  /**
   * Write a file so that readers see either the old or the complete new content:
   * write to a temporary name in the same directory, then rename.
   */
  async writeFileAtomic(
    path: string,
    data: string | Uint8Array,
    opts: { privileged?: boolean; mode?: number } = {},
  ): Promise<void> {
    const tmp = `${path}.onevz-tmp-${crypto.randomUUID().slice(0, 8)}`;
    try {
      await this.run(["dd", `of=${tmp}`, "status=none"], { ...opts, stdin: data });
      if (opts.mode !== undefined) {
        await this.run(["chmod", opts.mode.toString(8), "--", tmp], opts);
      }
      // -T: never move into a directory (or a link to one) that sits at `path`.
      await this.run(["mv", "-f", "-T", "--", tmp, path], opts);
    } catch (e) {
      await this.run(["rm", "-f", "--", tmp], { ...opts, check: false });
      throw e;
    }
  }

  async mkdirp(path: string, opts: { privileged?: boolean; mode?: number } = {}): Promise<void> {
    const args = ["mkdir", "-p"];
    if (opts.mode !== undefined) args.push("-m", opts.mode.toString(8));
    await this.run([...args, "--", path], opts);
  }

  async rename(from: string, to: string, opts: { privileged?: boolean } = {}): Promise<void> {
    await this.run(["mv", "-f", "--", from, to], opts);
  }

  async remove(path: string, opts: { privileged?: boolean; recursive?: boolean } = {}) {
    await this.run(["rm", opts.recursive ? "-rf" : "-f", "--", path], opts);
  }
}

/** Read everything from a stream into a string (used by spawning hosts). */
export async function readAll(stream: ReadableStream<Uint8Array> | null): Promise<Uint8Array> {
  if (!stream) return new Uint8Array();
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Split `tail -v -n +1 -- paths…` output into the files' contents (null where no header was
 * printed, i.e. tail could not open the file). Headers are `==> path <==` lines, each one
 * after the first preceded by an empty line that tail adds.
 */
export function splitTailOutput(out: string, paths: readonly string[]): (string | null)[] {
  const result: (string | null)[] = paths.map(() => null);
  let open = -1; // the file whose content is being read
  let contentStart = 0;
  for (let i = 0; i < paths.length; i++) {
    const header = `==> ${paths[i]} <==\n`;
    let contentEnd: number;
    let headerStart: number;
    if (open < 0) {
      if (!out.startsWith(header)) continue;
      contentEnd = headerStart = 0;
    } else {
      contentEnd = out.indexOf(`\n${header}`, contentStart);
      if (contentEnd < 0) continue;
      headerStart = contentEnd + 1;
    }
    if (open >= 0) result[open] = out.slice(contentStart, contentEnd);
    open = i;
    contentStart = headerStart + header.length;
  }
  if (open >= 0) result[open] = out.slice(contentStart);
  return result;
}

/**
 * Promise.all that waits for every promise before it throws the first failure: an action that
 * stops on one failed check never exits with the commands it started beside it still running
 * on the node.
 */
export async function allFinished<T extends readonly unknown[] | []>(
  values: T,
): Promise<{ -readonly [P in keyof T]: Awaited<T[P]> }> {
  const settled = await Promise.allSettled(values as readonly unknown[]);
  const results: unknown[] = [];
  for (const s of settled) {
    if (s.status === "rejected") throw s.reason;
    results.push(s.value);
  }
  return results as { -readonly [P in keyof T]: Awaited<T[P]> };
}
