/**
 * tm-context <context.sh> [files…] <host:R/disk.N>: TM CONTEXT. Instead of an ISO image (no
 * mkisofs), the node gets a DIRECTORY R/disk.N holding context.sh and each FILES entry by its
 * basename; deploy copies it into the container. The directory is unpacked under a temporary
 * name and renamed into place, so running the action again replaces it whole.
 *
 * tm-context runs on the front-end as oneadmin, who can read one_auth, oned.db and the ssh key
 * that logs into every node; CONTEXT/FILES comes from the VM's template. So a file is copied
 * only when, after resolving symbolic links and `..`:
 *   - it is oned's own `<var>/<vid>/context.sh` for this VM (the first argument), or
 *   - it lies in a directory listed in ONEVZ/CONTEXT_FILES_DIRS of the defaults file
 *     (default: $ONE_LOCATION/share/context, or /usr/share/one/context), and
 *   - it does not lie in oneadmin's home, $ONE_LOCATION/etc or /etc/one, $ONE_LOCATION/var or
 *     /var/lib/one, nor under any `.ssh` directory — whatever the list says.
 * A FILES entry that is a symbolic link is followed when its target passes these rules (the
 * VM gets the target's content under the entry's name) and refused otherwise. Each file is
 * opened without following a link and without blocking, must be a regular file once open,
 * and must still be the checked path; its bytes go to the node as a tar stream onevz writes
 * itself, so nothing else on the front-end is read.
 */
import * as fs from "node:fs";
import { basename } from "../../host/posix_path.ts";
import type { CommandContext } from "../../cli/context.ts";
import { OnevzError } from "../../cli/errors.ts";
import { describeType, fileTypeOf } from "../../host/files.ts";
import {
  closeHosts,
  hostFor,
  loadFrontEndConfig,
  nodeJoin,
  parseTmArg,
  pipe,
  requireAbsolute,
  runTm,
  splitVmPath,
  tarExtract,
  tempName,
} from "./common.ts";

const ATTR = "CONTEXT/FILES";
const SETTING = "ONEVZ/CONTEXT_FILES_DIRS in vmm_ssh_ovz.conf";

/** The built-in CONTEXT_FILES_DIRS. */
export function defaultContextFilesDirs(env: (k: string) => string | undefined): string[] {
  const loc = env("ONE_LOCATION");
  return [loc ? `${loc.replace(/\/+$/, "")}/share/context` : "/usr/share/one/context"];
}

/** Where files may and may never come from, resolved. */
export interface ContextPolicy {
  /** Allowed directories as configured, and resolved (missing ones dropped). */
  allowed: string[];
  allowedReal: string[];
  /** Never copied, whatever `allowed` says. */
  forbidden: { path: string; what: string }[];
  /** oned's var directory (<var>/<vid>/context.sh is this VM's context.sh). */
  varDir: string;
}

function real(p: string): string | undefined {
  try {
    return Deno.realPathSync(p);
  } catch {
    return undefined;
  }
}

/** oneadmin's home from /etc/passwd (HOME may be unset under oned). */
function passwdHome(uid: number): string | undefined {
  try {
    for (const line of Deno.readTextFileSync("/etc/passwd").split("\n")) {
      const f = line.split(":");
      if (f.length >= 7 && Number(f[2]) === uid) return f[5];
    }
  } catch { /* no passwd file */ }
  return undefined;
}

export function contextPolicy(
  env: (k: string) => string | undefined,
  configured: string[] | undefined,
): ContextPolicy {
  const loc = env("ONE_LOCATION")?.replace(/\/+$/, "");
  const varDir = loc ? `${loc}/var` : "/var/lib/one";
  const forbidden: { path: string; what: string }[] = [];
  const add = (p: string | undefined, what: string) => {
    if (!p || !p.startsWith("/") || p.replace(/\/+$/, "") === "") return; // never "/" itself
    for (const form of new Set([p.replace(/\/+$/, ""), real(p)])) {
      if (form && form !== "/") forbidden.push({ path: form, what });
    }
  };
  for (const home of [env("HOME"), passwdHome(Deno.uid() ?? -1)]) {
    // A world-writable "home" (HOME=/tmp for a service account) holds no secrets of its own:
    // then only its .one and .ssh are kept out, not everything below it.
    let open = false;
    try {
      open = home !== undefined && ((Deno.statSync(home).mode ?? 0) & 0o002) !== 0;
    } catch { /* missing: forbid the path anyway */ }
    if (open) {
      add(`${home}/.one`, "oneadmin's ~/.one");
      add(`${home}/.ssh`, "oneadmin's ~/.ssh");
    } else add(home, "oneadmin's home");
  }
  if (loc) {
    add(`${loc}/etc`, "$ONE_LOCATION/etc");
    add(`${loc}/var`, "$ONE_LOCATION/var");
  }
  add("/etc/one", "OpenNebula's configuration directory /etc/one");
  add("/var/lib/one", "OpenNebula's var directory /var/lib/one");
  const allowed = configured ?? defaultContextFilesDirs(env);
  const allowedReal = allowed.map(real).filter((p): p is string => p !== undefined);
  return { allowed, allowedReal, forbidden, varDir };
}

const inside = (p: string, dir: string) => dir === "/" || p === dir || p.startsWith(dir + "/");

/** One file to send: its name in the VM and the checked, resolved path. */
export interface ContextSource {
  name: string;
  path: string;
  /** The argument as oned wrote it. */
  arg: string;
}

/**
 * Check every source argument (pure apart from resolving paths): the rules above, distinct
 * basenames. Throws with the attribute, the path and what the operator can allow.
 */
export function contextSources(
  args: string[],
  policy: ContextPolicy,
  vid: string | undefined,
): ContextSource[] {
  const seen = new Map<string, string>();
  const out: ContextSource[] = [];
  for (const [i, a] of args.entries()) {
    const arg = parseTmArg(a);
    if (!arg.local) throw new OnevzError(`${ATTR}: ${a} is not on this front-end`);
    const path = arg.path;
    if (!path.startsWith("/") || /[\n\r\0]/.test(path)) {
      throw new OnevzError(`${ATTR}: ${JSON.stringify(path)} is not an absolute path`);
    }
    let resolved: string;
    try {
      resolved = Deno.realPathSync(path);
    } catch {
      throw new OnevzError(`${ATTR}: ${path} does not exist (or is a link to nothing)`);
    }
    const shown = resolved === path ? path : `${path} (${describeLink(path)} ${resolved})`;
    const own = i === 0 && vid !== undefined && basename(path) === "context.sh" &&
      resolved === real(`${policy.varDir}/${vid}/context.sh`);
    if (!own) {
      if ([...path.split("/"), ...resolved.split("/")].includes(".ssh")) {
        throw new OnevzError(
          `${ATTR}: ${shown} lies under a .ssh directory, which is never copied into a VM`,
        );
      }
      const bad = policy.forbidden.find((f) => inside(resolved, f.path));
      if (bad) {
        throw new OnevzError(
          `${ATTR}: ${shown} lies in ${bad.what} (${bad.path}), which is never copied into a VM`,
        );
      }
      if (!policy.allowedReal.some((d) => inside(resolved, d))) {
        throw new OnevzError(
          `${ATTR}: ${shown} is not in a directory the operator allows (${
            policy.allowed.join(" ") || "none"
          }): the operator can add its directory to ${SETTING}`,
        );
      }
    }
    const name = basename(path);
    const prev = seen.get(name);
    if (prev) {
      throw new OnevzError(
        `${ATTR}: two context files share the name '${name}': ${prev} and ${path}`,
      );
    }
    if (new TextEncoder().encode(name).length > 98) {
      throw new OnevzError(`${ATTR}: the file name '${name}' is longer than 98 bytes`);
    }
    seen.set(name, path);
    out.push({ name, path: resolved, arg: path });
  }
  return out;
}

function describeLink(path: string): string {
  try {
    return Deno.lstatSync(path).isSymlink ? "a symbolic link to" : "resolved to";
  } catch {
    return "resolved to";
  }
}

interface OpenSource extends ContextSource {
  fd: number;
  size: number;
  mtime: number;
  closed?: boolean;
}

/** Close once: a closed descriptor's number may already belong to another open file. */
function closeSource(o: OpenSource) {
  if (o.closed) return;
  o.closed = true;
  fs.closeSync(o.fd);
}

/**
 * Open each checked file without following a link or blocking, and make sure what is open is
 * a regular file at the checked path (a path swapped since the check is refused).
 */
export function openSources(sources: ContextSource[]): OpenSource[] {
  const c = fs.constants;
  const open: OpenSource[] = [];
  try {
    for (const s of sources) {
      let fd: number;
      try {
        fd = fs.openSync(s.path, c.O_RDONLY | c.O_NOFOLLOW | c.O_NONBLOCK | c.O_NOCTTY);
      } catch (e) {
        throw new OnevzError(`${ATTR}: cannot open ${s.arg}: ${(e as Error).message}`);
      }
      open.push({ ...s, fd, size: 0, mtime: 0 });
      const st = fs.fstatSync(fd);
      const type = fileTypeOf(st);
      if (type !== "file") {
        throw new OnevzError(`${ATTR}: ${s.arg} is ${describeType(type)}, not a regular file`);
      }
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) !== s.path) {
        throw new OnevzError(`${ATTR}: ${s.arg} changed while it was checked: refusing it`);
      }
      if (st.size >= 8 * 2 ** 30) throw new OnevzError(`${ATTR}: ${s.arg} is 8 GiB or more`);
      open.at(-1)!.size = st.size;
      open.at(-1)!.mtime = Math.floor(st.mtimeMs / 1000);
    }
    return open;
  } catch (e) {
    for (const o of open) closeSource(o);
    throw e;
  }
}

/** A ustar header for a regular file `./name`, mode 0644, owned by 0:0. */
export function tarHeader(name: string, size: number, mtime: number): Uint8Array {
  const h = new Uint8Array(512);
  const enc = new TextEncoder();
  const put = (off: number, len: number, text: string) =>
    h.set(enc.encode(text).subarray(0, len), off);
  const oct = (n: number, len: number) => n.toString(8).padStart(len - 1, "0") + "\0";
  put(0, 100, `./${name}`);
  put(100, 8, oct(0o644, 8));
  put(108, 8, oct(0, 8));
  put(116, 8, oct(0, 8));
  put(124, 12, oct(size, 12));
  put(136, 12, oct(mtime, 12));
  put(148, 8, "        ");
  h[156] = 0x30; // regular file
  put(257, 6, "ustar\0");
  put(263, 2, "00");
  put(265, 32, "root");
  put(297, 32, "root");
  const sum = h.reduce((s, b) => s + b, 0);
  put(148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

/** The tar stream of the open files (closed when done); a file that changed size is an error. */
export function tarStream(files: OpenSource[]): ReadableStream<Uint8Array> {
  let i = 0;
  let header = true;
  let left = 0;
  const close = () => {
    for (const f of files) closeSource(f);
    i = files.length;
  };
  return new ReadableStream<Uint8Array>({
    pull(c) {
      try {
        if (i >= files.length) {
          c.enqueue(new Uint8Array(1024));
          c.close();
          return;
        }
        const f = files[i];
        if (header) {
          c.enqueue(tarHeader(f.name, f.size, f.mtime));
          header = false;
          left = f.size;
          return;
        }
        if (left > 0) {
          const buf = new Uint8Array(Math.min(left, 1 << 20));
          const n = fs.readSync(f.fd, buf, 0, buf.length, null);
          if (n === 0) throw new OnevzError(`${ATTR}: ${f.arg} shrank while it was sent`);
          left -= n;
          c.enqueue(buf.subarray(0, n));
          return;
        }
        if (fs.readSync(f.fd, new Uint8Array(1), 0, 1, null) !== 0) {
          throw new OnevzError(`${ATTR}: ${f.arg} grew while it was sent`);
        }
        const pad = (512 - (f.size % 512)) % 512;
        if (pad) c.enqueue(new Uint8Array(pad));
        closeSource(f);
        i++;
        header = true;
      } catch (e) {
        close();
        c.error(e);
      }
    },
    cancel() {
      close();
    },
  });
}

export default function (ctx: CommandContext): Promise<number> {
  return runTm(ctx, "tm-context", async (log) => {
    const dstArg = ctx.args[ctx.args.length - 1];
    const dst = parseTmArg(dstArg);
    const dstPath = requireAbsolute(dst.path, "destination");
    const { file, config } = await loadFrontEndConfig(ctx);
    const policy = contextPolicy(ctx.env, config.contextFilesDirs);
    const vid = splitVmPath(dstPath)?.vid;
    const sources = contextSources(ctx.args.slice(0, -1), policy, vid);
    const open = openSources(sources);
    log(
      `${sources.length} file(s) checked against ${policy.allowed.join(" ")} (${
        file ?? "built-in defaults"
      })`,
    );
    const node = hostFor(dst);
    try {
      log(`Creating directory ${nodeJoin(dstPath, "..")}`);
      await node.mkdirp(nodeJoin(dstPath, ".."));
      const stage = tempName(dstPath);
      await node.mkdirp(stage);
      try {
        const { bytes } = await pipe(
          { stream: tarStream(open), what: "context files" },
          { host: node, argv: [...tarExtract(stage).filter((a) => a !== "-p"), "--no-same-owner"] },
        );
        if (await node.exists(dstPath)) await node.remove(dstPath, { recursive: true });
        await node.rename(stage, dstPath);
        log(`Placed ${sources.length} file(s) (${bytes} bytes) in ${node.name}:${dstPath}`);
      } catch (e) {
        await node.run(["rm", "-rf", "--", stage], { check: false });
        throw e;
      }
    } finally {
      for (const o of open) closeSource(o);
      await closeHosts(node);
    }
  });
}
