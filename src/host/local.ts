/**
 * LocalHost runs commands on this machine (the node itself under one_vmm_ssh, or the
 * front-end). When no privilege change is needed, file helpers use the file system directly,
 * with Deno's synchronous calls: the files are small, and an asynchronous call's first use
 * costs a poll about 2 ms of its budget. The methods stay `async` so that a failure is still a
 * rejected promise for callers that `.catch()`.
 */
// deno-lint-ignore-file require-await
import { OnevzError } from "../cli/errors.ts";
import { describeType, fileTypeOf } from "./files.ts";
import { Host, type RunOptions, type RunResult } from "./host.ts";

export class LocalHost extends Host {
  readonly name: string;

  constructor(opts: { name?: string; sysroot?: string; useSudo?: boolean } = {}) {
    super();
    this.name = opts.name ?? (Deno.hostname() || "localhost");
    this.sysroot = opts.sysroot ?? Deno.env.get("ONEVZ_SYSROOT") ?? "";
    this.useSudo = opts.useSudo ?? (Deno.uid() !== 0);
  }

  protected async spawn(argv: readonly string[], opts: RunOptions): Promise<RunResult> {
    const [cmd, ...args] = argv;
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(cmd, {
        args,
        stdin: opts.stdin !== undefined ? "piped" : "null",
        stdout: "piped",
        stderr: "piped",
        env: { LANG: "C", LC_ALL: "C" },
      }).spawn();
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        return { argv, status: 127, stdout: "", stderr: `${cmd}: command not found` };
      }
      throw e;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (opts.timeoutMs) {
      timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* already gone */ }
      }, opts.timeoutMs);
    }
    if (opts.stdin !== undefined) {
      const w = child.stdin.getWriter();
      const data = typeof opts.stdin === "string"
        ? new TextEncoder().encode(opts.stdin)
        : opts.stdin;
      try {
        await w.write(data);
        await w.close();
      } catch { /* the command may exit without reading its input */ }
    }
    const out = await child.output();
    if (timer !== undefined) clearTimeout(timer);
    const dec = new TextDecoder();
    return {
      argv,
      status: out.signal ? 128 + 9 : out.code,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr),
      bytes: out.stdout,
    };
  }

  private direct(opts: { privileged?: boolean }): boolean {
    return !(opts.privileged && this.useSudo);
  }

  /**
   * open(O_RDONLY|O_NOFOLLOW|O_NONBLOCK), then fstat the open file: a link is never followed,
   * a FIFO never waited on, a device never read, and what is read is what was checked.
   */
  override readRegularDirect(
    path: string,
    maxBytes: number,
    opts: { privileged?: boolean; what?: string; head?: boolean },
  ): Promise<Uint8Array | null> | undefined {
    if (!this.direct(opts)) return undefined;
    return readRegularLocal(path, maxBytes, opts.what ?? path, opts.head ?? false);
  }

  override async readFile(path: string, opts: { privileged?: boolean } = {}) {
    if (!this.direct(opts)) return super.readFile(path, opts);
    try {
      return Deno.readTextFileSync(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    }
  }

  override readFiles(paths: readonly string[], opts: { privileged?: boolean } = {}) {
    if (!this.direct(opts)) return super.readFiles(paths, opts);
    return Promise.all(paths.map((p) => this.readFile(p)));
  }

  override async exists(path: string, opts: { privileged?: boolean } = {}) {
    if (!this.direct(opts)) return super.exists(path, opts);
    try {
      Deno.lstatSync(path);
      return true;
    } catch {
      return false;
    }
  }

  override async listDir(path: string) {
    try {
      return [...Deno.readDirSync(path)].map((e) => e.name);
    } catch {
      return null;
    }
  }

  override async isSymlink(path: string, opts: { privileged?: boolean } = {}) {
    if (!this.direct(opts)) return super.isSymlink(path, opts);
    try {
      return Deno.lstatSync(path).isSymlink;
    } catch {
      return false;
    }
  }

  override async isDirectory(path: string, opts: { privileged?: boolean } = {}) {
    if (!this.direct(opts)) return super.isDirectory(path, opts);
    try {
      return Deno.statSync(path).isDirectory;
    } catch {
      return false;
    }
  }

  override async writeFileAtomic(
    path: string,
    data: string | Uint8Array,
    opts: { privileged?: boolean; mode?: number } = {},
  ) {
    if (!this.direct(opts)) return super.writeFileAtomic(path, data, opts);
    writeFileAtomicSync(path, data, opts.mode);
  }

  override async mkdirp(path: string, opts: { privileged?: boolean; mode?: number } = {}) {
    if (!this.direct(opts)) return super.mkdirp(path, opts);
    Deno.mkdirSync(path, { recursive: true, mode: opts.mode });
  }

  override async rename(from: string, to: string, opts: { privileged?: boolean } = {}) {
    if (!this.direct(opts)) return super.rename(from, to, opts);
    Deno.renameSync(from, to);
  }

  override async remove(path: string, opts: { privileged?: boolean; recursive?: boolean } = {}) {
    if (!this.direct(opts)) return super.remove(path, opts);
    try {
      Deno.removeSync(path, { recursive: opts.recursive });
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
}

async function readRegularLocal(
  path: string,
  maxBytes: number,
  what: string,
  head: boolean,
): Promise<Uint8Array | null> {
  const fs = await import("node:fs"); // only for this read: keeps the start of other actions light
  const c = fs.constants;
  let fd: number;
  try {
    fd = fs.openSync(path, c.O_RDONLY | c.O_NOFOLLOW | c.O_NONBLOCK | c.O_NOCTTY);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ENOENT" || code === "ENOTDIR") return null;
    if (code === "ELOOP") {
      throw new OnevzError(
        `${what} is ${describeType("symlink")}, not a regular file: refusing to read it`,
      );
    }
    throw new OnevzError(`cannot open ${what}: ${(e as Error).message}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) {
      throw new OnevzError(
        `${what} is ${describeType(fileTypeOf(st))}, not a regular file: refusing to read it`,
      );
    }
    if (st.size > maxBytes && !head) {
      throw new OnevzError(`${what} is ${st.size} bytes, over the ${maxBytes} byte limit`);
    }
    const buf = new Uint8Array(maxBytes + (head ? 0 : 1));
    let n = 0;
    while (n < buf.length) {
      const got = fs.readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
    }
    if (n > maxBytes) {
      throw new OnevzError(`${what} grew over the ${maxBytes} byte limit while read`);
    }
    return buf.slice(0, n);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Write a file here under a temporary name beside it, then rename it into place: a reader sees
 * the old contents or the new, never part of them. With a mode, the file gets exactly that mode.
 */
export function writeFileAtomicSync(path: string, data: string | Uint8Array, mode?: number) {
  const tmp = `${path}.onevz-tmp-${crypto.randomUUID().slice(0, 8)}`;
  try {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    Deno.writeFileSync(tmp, bytes, { mode: mode ?? 0o644 });
    if (mode !== undefined) Deno.chmodSync(tmp, mode);
    Deno.renameSync(tmp, path);
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch { /* never written */ }
    throw e;
  }
}
