/**
 * File primitives of install and uninstall: content digests, atomic writes, and backups that
 * never overwrite anything (a backup takes the first free name `<name>`, `<name>.1`, …) and
 * keep the bytes, the mode and, for a symbolic link, the link itself.
 */
import { createHash } from "node:crypto";
import { basename, dirname } from "node:path";

export function sha256(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

export async function lexists(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.lstat(path);
  } catch {
    return undefined;
  }
}

/**
 * Digest of what is at `path`: a regular file's bytes, or `symlink:<target>` for a link;
 * undefined when nothing (or a directory) is there.
 */
export async function pathSha(path: string): Promise<string | undefined> {
  const st = await lexists(path);
  if (!st || st.isDirectory) return undefined;
  if (st.isSymlink) return sha256(`symlink:${await Deno.readLink(path)}`);
  try {
    return sha256(await Deno.readFile(path));
  } catch {
    return undefined;
  }
}

/** Create `dir` and its missing ancestors, remembering which ones were created. */
export async function mkdirs(dir: string, created: Set<string>) {
  const missing: string[] = [];
  for (let d = dir; d !== "/" && d !== "."; d = dirname(d)) {
    if (await lexists(d)) break;
    missing.push(d);
  }
  await Deno.mkdir(dir, { recursive: true });
  for (const d of missing) created.add(d);
}

function tmpBeside(path: string): string {
  return `${dirname(path)}/.${basename(path)}.onevz-tmp-${crypto.randomUUID().slice(0, 8)}`;
}

export async function writeAtomic(path: string, data: string | Uint8Array, mode: number) {
  const tmp = tmpBeside(path);
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data, { mode });
    else await Deno.writeFile(tmp, data, { mode });
    await Deno.chmod(tmp, mode);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** The first of `base`, `base.1`, `base.2`, … that nothing occupies. */
export async function freeName(base: string): Promise<string> {
  if (!(await lexists(base))) return base;
  for (let i = 1;; i++) {
    if (!(await lexists(`${base}.${i}`))) return `${base}.${i}`;
  }
}

/**
 * Put a copy of `from` (bytes and mode, or the link itself) at `to`, atomically: `to` is
 * replaced only once the copy is complete.
 */
export async function copyExact(from: string, to: string) {
  const st = await Deno.lstat(from);
  const tmp = tmpBeside(to);
  try {
    if (st.isSymlink) await Deno.symlink(await Deno.readLink(from), tmp);
    else {
      await Deno.copyFile(from, tmp);
      await Deno.chmod(tmp, st.mode! & 0o7777);
    }
    await Deno.rename(tmp, to);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** Move `from` to `to` (a rename, or copy and remove across file systems). */
export async function moveExact(from: string, to: string) {
  try {
    await Deno.rename(from, to);
  } catch (e) {
    if (!(e instanceof Error) || !/cross-device|EXDEV/i.test(e.message)) throw e;
    await copyExact(from, to);
    await Deno.remove(from);
  }
}
