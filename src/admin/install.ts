/**
 * onevz install [--one-location DIR | --system] [--oned-conf] [--sudoers [--group G]]
 *               [--binary PATH] [--scripts-remote-dir DIR]
 *
 * Lays out the remotes tree (one executable, tiny shims, hook), the front-end tm-* entries,
 * vmm_ssh_ovz.conf and tm_ssh.conf (the original kept once as tm_ssh.conf.orig), and records
 * everything in a manifest so that re-running upgrades in place and `onevz uninstall` can
 * undo it. Prints the oned.conf snippet, or with --oned-conf merges it between
 * `# BEGIN onevz` / `# END onevz` markers (replaced on re-run).
 */
import { createHash } from "node:crypto";
import { basename, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import type { CommandContext } from "../cli/context.ts";
import { OnevzError, UsageError } from "../cli/errors.ts";
import { VERSION } from "../version.ts";
import {
  type BinarySource,
  type Entry,
  type InstallPaths,
  installPaths,
  loadAssets,
  onedSnippet,
  planLayout,
  sudoersLines,
  withOnedBlock,
  withoutOnedBlock,
} from "./layout.ts";

export interface ManifestFile {
  path: string;
  kind: "file" | "symlink";
  /** sha256 of what install wrote (files), to tell operator edits apart. */
  sha256?: string;
  target?: string;
}

export interface Manifest {
  tool: "onevz";
  version: string;
  mode: InstallPaths["mode"];
  installedAt: string;
  files: ManifestFile[];
  /** Directories install created (removed by uninstall when empty). */
  dirs: string[];
  /** Files moved aside once: original → backup. */
  backups: { original: string; backup: string }[];
  /** oned.conf that holds a `# BEGIN onevz` block, if --oned-conf was used. */
  onedConf?: string;
}

export function sha256(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

async function fileSha(path: string): Promise<string | undefined> {
  try {
    return sha256(await Deno.readFile(path));
  } catch {
    return undefined;
  }
}

async function lexists(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.lstat(path);
  } catch {
    return undefined;
  }
}

export async function readManifest(path: string): Promise<Manifest | undefined> {
  try {
    const m = JSON.parse(await Deno.readTextFile(path)) as Manifest;
    return m.tool === "onevz" ? m : undefined;
  } catch {
    return undefined;
  }
}

/** Create `dir` and its missing ancestors, remembering which ones were created. */
async function mkdirs(dir: string, created: Set<string>) {
  const missing: string[] = [];
  for (let d = dir; d !== "/" && d !== "."; d = dirname(d)) {
    if (await lexists(d)) break;
    missing.push(d);
  }
  await Deno.mkdir(dir, { recursive: true });
  for (const d of missing) created.add(d);
}

async function writeAtomic(path: string, data: string | Uint8Array, mode: number) {
  const tmp = `${dirname(path)}/.${basename(path)}.onevz-tmp-${crypto.randomUUID().slice(0, 8)}`;
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

export interface InstallOptions {
  paths: InstallPaths;
  binary: BinarySource;
  onedConf?: boolean;
  scriptsRemoteDir?: string;
  assetsBase?: URL;
  say: (line: string) => void;
}

export interface InstallResult {
  manifest: Manifest;
  snippet: string;
  notes: string[];
}

/** Where the running program comes from: a compiled binary, or deno running main.ts. */
export function runningBinary(): BinarySource {
  const exe = Deno.execPath();
  if (/^deno(\.exe)?$/.test(basename(exe))) {
    const root = fileURLToPath(new URL("../../", import.meta.url));
    return {
      kind: "launcher",
      deno: `${root}node_modules/.bin/deno`,
      main: `${root}main.ts`,
    };
  }
  return { kind: "copy", from: exe };
}

/** SCRIPTS_REMOTE_DIR from oned.conf (for the hook's absolute path). */
export function scriptsRemoteDirOf(onedConf: string): string | undefined {
  for (const line of onedConf.split("\n")) {
    const m = /^\s*SCRIPTS_REMOTE_DIR\s*=\s*"?([^"\s#]+)"?/.exec(line);
    if (m) return m[1];
  }
  return undefined;
}

export async function install(opts: InstallOptions): Promise<InstallResult> {
  const { paths, say } = opts;
  const assets = await loadAssets(opts.assetsBase);
  const notes: string[] = [];
  if (!assets.defaultsShipped) {
    notes.push("vmm_ssh_ovz.conf template not shipped: wrote a minimal one");
  }
  const previous = await readManifest(paths.manifest);
  const prevSha = new Map((previous?.files ?? []).map((f) => [f.path, f.sha256]));
  const created = new Set<string>(previous?.dirs ?? []);
  const backups = [...(previous?.backups ?? [])];
  const files: ManifestFile[] = [];
  const entries: Entry[] = planLayout(paths, assets, opts.binary);

  for (const e of entries) {
    await mkdirs(dirname(e.path), created);
    const existing = await lexists(e.path);
    if (e.kind === "symlink") {
      if (existing?.isSymlink && (await Deno.readLink(e.path)) === e.target) {
        files.push({ path: e.path, kind: "symlink", target: e.target });
        continue;
      }
      if (existing) await Deno.remove(e.path, { recursive: existing.isDirectory });
      await Deno.symlink(e.target, e.path);
      files.push({ path: e.path, kind: "symlink", target: e.target });
      continue;
    }
    const data = e.kind === "copy" ? await Deno.readFile(e.from) : e.content;
    const digest = sha256(data);
    if (e.kind === "file" && existing && !existing.isDirectory) {
      const current = await fileSha(e.path);
      if (e.policy === "config" && current !== digest) {
        const ours = prevSha.get(e.path);
        if (ours === undefined || ours !== current) {
          // The operator's file: leave it, put ours beside it.
          await writeAtomic(`${e.path}.new`, data, e.mode);
          files.push({ path: `${e.path}.new`, kind: "file", sha256: digest });
          if (ours !== undefined) files.push({ path: e.path, kind: "file", sha256: ours });
          notes.push(`${e.path} was edited: left as it is, the new version is ${e.path}.new`);
          continue;
        }
      }
      if (e.policy === "backup" && current !== prevSha.get(e.path) && current !== digest) {
        const backup = `${e.path}.orig`;
        if (!(await lexists(backup))) {
          await Deno.rename(e.path, backup);
          backups.push({ original: e.path, backup });
          notes.push(`saved the original ${basename(e.path)} as ${backup}`);
        } else {
          notes.push(`${backup} already exists: replaced ${e.path} without a new backup`);
        }
      }
    }
    await writeAtomic(e.path, data, e.mode);
    files.push({ path: e.path, kind: "file", sha256: digest });
  }
  // Remove files a previous version installed that this one no longer writes.
  const now = new Set(files.map((f) => f.path));
  for (const f of previous?.files ?? []) {
    if (now.has(f.path)) continue;
    const cur = await lexists(f.path);
    if (!cur) continue;
    if (f.kind === "symlink" ? cur.isSymlink : (await fileSha(f.path)) === f.sha256) {
      await Deno.remove(f.path);
    } else {
      files.push(f); // edited: keep tracking it
    }
  }

  // The IM driver re-copies the remotes to a host when this directory is newer than the
  // host's last monitoring: touch it so nodes get the new version.
  const t = new Date();
  await Deno.utime(paths.remotes, t, t).catch(() => {});
  if (!(await lexists(`${paths.remotes}/im/run_probes`))) {
    notes.push(
      `${paths.remotes}/im/run_probes (part of OpenNebula) is missing: is OpenNebula installed here?`,
    );
  }

  const onedText = await Deno.readTextFile(paths.onedConf).catch(() => "");
  const srd = opts.scriptsRemoteDir ?? scriptsRemoteDirOf(onedText) ?? "/var/tmp/one";
  const snippet = onedSnippet(
    assets.remotes["etc/oned.conf.snippet"],
    srd,
    withoutOnedBlock(onedText),
  );
  let onedConf = previous?.onedConf;
  if (opts.onedConf) {
    if (!(await lexists(paths.onedConf))) {
      throw new OnevzError(`${paths.onedConf} does not exist: is OpenNebula installed there?`);
    }
    const next = withOnedBlock(onedText, snippet);
    if (next !== onedText) await writeAtomic(paths.onedConf, next, 0o644);
    onedConf = paths.onedConf;
    say(`merged the onevz block into ${paths.onedConf} (restart oned to apply)`);
  }

  const manifest: Manifest = {
    tool: "onevz",
    version: VERSION,
    mode: paths.mode,
    installedAt: t.toISOString(),
    files,
    dirs: [...created].sort(),
    backups,
    onedConf,
  };
  await mkdirs(dirname(paths.manifest), created);
  manifest.dirs = [...created].sort();
  await writeAtomic(paths.manifest, JSON.stringify(manifest, null, 2) + "\n", 0o644);
  return { manifest, snippet, notes };
}

export default async function (ctx: CommandContext): Promise<number> {
  const f = ctx.flags;
  const system = f.system === true;
  const loc = typeof f["one-location"] === "string" ? f["one-location"] : ctx.env("ONE_LOCATION");
  if (system && typeof f["one-location"] === "string") {
    throw new UsageError("install: give either --one-location or --system, not both");
  }
  // --group: the nodes' group of the OpenNebula user, when it is not `cloud`.
  const group = typeof f.group === "string" ? f.group : undefined;
  if (group !== undefined && !/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(group)) {
    throw new UsageError(`install: --group ${JSON.stringify(group)} is not a group name`);
  }
  if (f.sudoers === true && !system && !loc && f["oned-conf"] !== true) {
    ctx.io.out(sudoersLines(group));
    return 0;
  }
  if (!system && !loc) {
    throw new UsageError(
      "install: say where OpenNebula is: --one-location DIR (or $ONE_LOCATION) or --system",
    );
  }
  let paths: InstallPaths;
  try {
    paths = installPaths({ system, oneLocation: loc });
  } catch (e) {
    throw new UsageError(`install: ${(e as Error).message}`);
  }
  const binary: BinarySource = typeof f.binary === "string"
    ? { kind: "copy", from: f.binary }
    : runningBinary();
  if (binary.kind === "copy") {
    try {
      if (!(await Deno.stat(binary.from)).isFile) throw new Error();
    } catch {
      throw new UsageError(`install: --binary ${binary.from} is not a file`);
    }
  }
  const say = (line: string) => ctx.io.out(line + "\n");
  const srd = f["scripts-remote-dir"];
  const result = await install({
    paths,
    binary,
    onedConf: f["oned-conf"] === true,
    scriptsRemoteDir: typeof srd === "string" ? srd : undefined,
    say,
  });
  say(`onevz ${VERSION} installed (${paths.mode}):`);
  say(
    `  remotes      ${paths.remotes} (bin/onevz, vmm/ovz, vmm/ovz_fe, im/ovz.d, im/ovz_fe.d, hooks)`,
  );
  say(`  copy         ${paths.remotesCopy}`);
  say(`  tm entries   ${paths.tmDir}`);
  say(`  config       ${paths.etc}/vmm_ssh/vmm_ssh_ovz.conf, ${paths.etc}/tm_ssh/tm_ssh.conf`);
  say(`  manifest     ${paths.manifest}`);
  say(
    binary.kind === "launcher"
      ? "  executable   development launcher (runs main.ts with deno from this checkout)"
      : `  executable   copied from ${binary.from}`,
  );
  for (const n of result.notes) say(`note: ${n}`);
  if (f["oned-conf"] !== true) {
    say("");
    say(`Add to ${paths.onedConf} (or re-run with --oned-conf):`);
    say("");
    ctx.io.out(result.snippet.endsWith("\n") ? result.snippet : result.snippet + "\n");
  }
  if (f.sudoers === true) {
    say("");
    say("On every node, as root (visudo -f /etc/sudoers.d/onevz):");
    say("");
    ctx.io.out(sudoersLines(group));
  }
  return 0;
}
