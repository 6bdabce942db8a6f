/**
 * onevz install [--one-location DIR | --system] [--oned-conf] [--binary PATH]
 *               [--scripts-remote-dir DIR] [--dev-launcher]
 * onevz install --sudoers [--group NAME]
 *
 * Lays out the remotes tree (one executable, tiny shims, hook), the front-end tm-* entries,
 * vmm_ssh_ovz.conf and onevz's own transfer manager (etc/tm_ovz/tm_ovz.conf, TM_MAD tm_ovz),
 * and records everything in a manifest so that re-running upgrades in place and
 * `onevz uninstall` can undo it. OpenNebula's tm_ssh.conf is never written (an earlier onevz
 * that edited it gets it put back). Every file install replaces or edits is first copied
 * under lib/onevz/backups/ with a name that never overwrites another, and recorded, so that
 * uninstall can put the exact bytes back. Prints the oned.conf snippet, or with --oned-conf
 * merges it between `# BEGIN onevz` / `# END onevz` markers (replaced on re-run).
 * `--sudoers` prints the sudo rules for the nodes and nothing else, and changes nothing.
 */
import { basename, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import type { CommandContext } from "../cli/context.ts";
import { OnevzError, UsageError } from "../cli/errors.ts";
import { VERSION } from "../version.ts";
import {
  copyExact,
  freeName,
  lexists,
  mkdirs,
  moveExact,
  pathSha,
  sha256,
  writeAtomic,
} from "./files.ts";
import {
  type BinarySource,
  type Entry,
  executableKind,
  type InstallPaths,
  installPaths,
  lineDiff,
  loadAssets,
  onedSnippet,
  planLayout,
  STOCK_TM_SSH_CONF,
  sudoersLines,
  validGroupName,
  withOnedBlock,
  withoutOnedBlock,
} from "./layout.ts";

export { sha256 };

/** SCRIPTS_REMOTE_DIR when oned.conf does not set one (OpenNebula's shipped value). */
export const DEFAULT_SCRIPTS_REMOTE_DIR = "/var/tmp/one";

export interface ManifestFile {
  path: string;
  kind: "file" | "symlink";
  /** sha256 of what install wrote (files), to tell operator edits apart. */
  sha256?: string;
  target?: string;
}

/** A file install changed, and where its previous bytes are kept. */
export interface BackupRecord {
  original: string;
  backup: string;
  /** sha256 of the kept bytes (`symlink:<target>` for a link); absent in old manifests. */
  sha256?: string;
  /**
   * replaced: install wrote its own file there; edited: install changed it in place
   * (oned.conf); moved: install took it out of the way (a probe run_probes would also run).
   */
  change: "replaced" | "edited" | "moved";
}

export interface Manifest {
  tool: "onevz";
  version: string;
  mode: InstallPaths["mode"];
  installedAt: string;
  files: ManifestFile[];
  /** Directories install created (removed by uninstall when empty). */
  dirs: string[];
  /** Every file install replaced, edited or moved aside, oldest first. */
  backups: BackupRecord[];
  /** oned.conf that holds a `# BEGIN onevz` block, if --oned-conf was used. */
  onedConf?: string;
  /** sha256 of oned.conf as install --oned-conf left it. */
  onedConfSha?: string;
}

export async function readManifest(path: string): Promise<Manifest | undefined> {
  try {
    const m = JSON.parse(await Deno.readTextFile(path)) as Manifest;
    if (m.tool !== "onevz") return undefined;
    // Manifests of earlier versions list backups without `change` (always a replacement).
    m.backups = (m.backups ?? []).map((b) => ({ ...b, change: b.change ?? "replaced" }));
    return m;
  } catch {
    return undefined;
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
  /** The oned.conf lines onevz needs that oned.conf does not define itself ("" if none). */
  snippet: string;
  /** Whether oned.conf holds the onevz block, and whether it is this version's. */
  block: "absent" | "current" | "outdated";
  /** How the onevz block in oned.conf differs from this version's (when outdated). */
  blockDiff: string[];
  /** The SCRIPTS_REMOTE_DIR the hook's path was made with. */
  scriptsRemoteDir: string;
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
  let found: string | undefined;
  for (const line of onedConf.split("\n")) {
    const m = /^\s*SCRIPTS_REMOTE_DIR\s*=\s*"?([^"\s#]+)"?/.exec(line);
    if (m) found = m[1]; // oned keeps the last one
  }
  return found;
}

/** Does this tm_*.conf text name onevz's tm-* commands? */
export function namesOnevzTm(text: string): boolean {
  return /^\s*[A-Za-z]+\s*=\s*"?\S*\/tm-(clone|ln|mv|delete|mkswap|mkimage|context)"?\s*$/m
    .test(text);
}

/** The part of `path` below the installation root (backups mirror it). */
function below(paths: InstallPaths, path: string): string {
  const root = paths.root.replace(/\/+$/, "");
  return path.startsWith(root + "/") ? path.slice(root.length + 1) : basename(path);
}

export async function install(opts: InstallOptions): Promise<InstallResult> {
  const { paths } = opts;
  const assets = await loadAssets(opts.assetsBase);
  const onedText = await Deno.readTextFile(paths.onedConf).catch(() => null);
  if (opts.onedConf && onedText === null) {
    throw new OnevzError(
      `${paths.onedConf} does not exist, so --oned-conf has nothing to merge into: ` +
        `is OpenNebula installed under ${paths.root}? (nothing was changed)`,
    );
  }
  const notes: string[] = [];
  if (!assets.defaultsShipped) {
    notes.push("vmm_ssh_ovz.conf template not shipped: wrote a minimal one");
  }
  const previous = await readManifest(paths.manifest);
  const ours = new Map((previous?.files ?? []).map((f) => [f.path, f]));
  const created = new Set<string>(previous?.dirs ?? []);
  const backups: BackupRecord[] = [...(previous?.backups ?? [])];
  const files: ManifestFile[] = [];
  /** Is what is at `path` now exactly what onevz wrote there last time? */
  const isOurs = (path: string, sha: string | undefined) => {
    const f = ours.get(path);
    if (!f || sha === undefined) return false;
    return f.kind === "symlink" ? sha === sha256(`symlink:${f.target}`) : sha === f.sha256;
  };
  /** Keep what is at `path` under the backups directory (a copy, or moved there). */
  const keep = async (path: string, change: BackupRecord["change"]) => {
    const backup = await freeName(`${paths.backups}/${below(paths, path)}`);
    await mkdirs(dirname(backup), created);
    const digest = await pathSha(path);
    if (change === "moved") await moveExact(path, backup);
    else await copyExact(path, backup);
    backups.push({ original: path, backup, sha256: digest, change });
    notes.push(
      `${change === "moved" ? "moved" : "kept the previous"} ${path} ${
        change === "moved" ? "aside to" : "as"
      } ${backup}`,
    );
  };

  const entries: Entry[] = planLayout(paths, assets, opts.binary);
  for (const e of entries) {
    await mkdirs(dirname(e.path), created);
    const st = await lexists(e.path);
    if (st?.isDirectory) {
      throw new OnevzError(`${e.path} is a directory where install writes a file: move it away`);
    }
    const current = await pathSha(e.path);
    if (e.kind === "symlink") {
      if (!isOurs(e.path, current) || current !== sha256(`symlink:${e.target}`)) {
        if (st && !isOurs(e.path, current)) await keep(e.path, "replaced");
        if (st) await Deno.remove(e.path);
        await Deno.symlink(e.target, e.path);
      }
      files.push({ path: e.path, kind: "symlink", target: e.target });
      continue;
    }
    const data = e.kind === "copy" ? await Deno.readFile(e.from) : e.content;
    const digest = sha256(data);
    const mine = isOurs(e.path, current);
    if (st && !mine && e.kind === "file" && e.policy === "config") {
      // The operator's file (or onevz's, edited since): left as it is, ours beside it.
      if (current !== digest) {
        const beside = `${e.path}.new`;
        const target = isOurs(beside, await pathSha(beside)) || !(await lexists(beside))
          ? beside
          : await freeName(beside);
        await writeAtomic(target, data, e.mode);
        files.push({ path: target, kind: "file", sha256: digest });
        notes.push(
          `${e.path} is not the file onevz wrote: left as it is, this version's is ${target}`,
        );
      }
      const prev = ours.get(e.path);
      if (prev) files.push(prev); // still onevz's path: uninstall names it instead of removing
      continue;
    }
    if (mine && current === digest) {
      await Deno.chmod(e.path, e.mode);
      files.push({ path: e.path, kind: "file", sha256: digest });
      continue;
    }
    if (st && !mine) await keep(e.path, "replaced");
    await writeAtomic(e.path, data, e.mode);
    files.push({ path: e.path, kind: "file", sha256: digest });
  }
  const written = new Set(files.map((f) => f.path));

  // tm_ssh.conf: an earlier onevz pointed it at onevz's commands; put OpenNebula's back.
  const oldTmSsh = ours.get(paths.tmSshConf);
  if (oldTmSsh) {
    const current = await pathSha(paths.tmSshConf);
    const i = backups.findIndex((b) => b.original === paths.tmSshConf);
    if (current === undefined || current === oldTmSsh.sha256) {
      if (i >= 0 && await lexists(backups[i].backup)) {
        await moveExact(backups[i].backup, paths.tmSshConf);
        notes.push(
          `put back ${paths.tmSshConf} from ${backups[i].backup}: tm_ssh is OpenNebula's again`,
        );
        backups.splice(i, 1);
      } else if (await lexists(`${paths.tmSshConf}.orig`)) {
        await copyExact(`${paths.tmSshConf}.orig`, paths.tmSshConf);
        notes.push(
          `wrote ${paths.tmSshConf}.orig back to ${paths.tmSshConf}: tm_ssh is OpenNebula's again`,
        );
      } else {
        await writeAtomic(paths.tmSshConf, STOCK_TM_SSH_CONF, 0o644);
        notes.push(`wrote OpenNebula 2.2.1's seven tm_ssh commands to ${paths.tmSshConf}`);
      }
      notes.push(
        "OpenVZ nodes registered with tm_ssh must be registered with tm_ovz now (README §2)",
      );
      written.add(paths.tmSshConf); // OpenNebula's again: no longer onevz's to track
    } else {
      files.push(oldTmSsh);
      written.add(oldTmSsh.path);
      notes.push(
        `${paths.tmSshConf} was edited after an earlier onevz wrote it: left as it is` +
          (namesOnevzTm(await Deno.readTextFile(paths.tmSshConf).catch(() => ""))
            ? "; it still names onevz's commands, so KVM/Xen hosts using tm_ssh break (README §2)"
            : ""),
      );
    }
  }

  // Probes install did not write in onevz's probe directories: run_probes would run them
  // beside onevz's (openvz4opennebula's, say). Moved aside, put back by uninstall.
  for (const tree of [paths.remotes, paths.remotesCopy]) {
    for (const dir of [`${tree}/im/ovz.d`, `${tree}/im/ovz_fe.d`]) {
      let names: Deno.DirEntry[] = [];
      try {
        names = await Array.fromAsync(Deno.readDir(dir));
      } catch { /* none */ }
      for (const d of names) {
        const p = `${dir}/${d.name}`;
        if (written.has(p) || ours.has(p) || d.isDirectory) continue;
        await keep(p, "moved");
      }
    }
  }

  // Files a previous version installed that this one no longer writes.
  for (const f of previous?.files ?? []) {
    if (written.has(f.path)) continue;
    const current = await pathSha(f.path);
    if (current === undefined) continue;
    if (isOurs(f.path, current)) await Deno.remove(f.path);
    else files.push(f); // edited: keep tracking it
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

  // oned.conf: the hook's absolute path needs SCRIPTS_REMOTE_DIR.
  const srdFromConf = onedText === null ? undefined : scriptsRemoteDirOf(onedText);
  const srd = opts.scriptsRemoteDir ?? srdFromConf ?? DEFAULT_SCRIPTS_REMOTE_DIR;
  if (opts.scriptsRemoteDir === undefined && srdFromConf === undefined) {
    notes.push(
      `${paths.onedConf} ${
        onedText === null ? "does not exist" : "sets no SCRIPTS_REMOTE_DIR"
      }: the vzfirewall hook's path assumes SCRIPTS_REMOTE_DIR=${DEFAULT_SCRIPTS_REMOTE_DIR}; ` +
        "re-run with --scripts-remote-dir DIR if your nodes use another",
    );
  }
  const conf = onedText ?? "";
  const snippet = onedSnippet(assets.remotes["etc/oned.conf.snippet"], srd, withoutOnedBlock(conf));
  const hasBlock = withoutOnedBlock(conf) !== conf;
  const merged = snippet.trim() === "" && !hasBlock ? conf : withOnedBlock(conf, snippet);
  const block = !hasBlock ? "absent" : merged === conf ? "current" : "outdated";
  const blockDiff = block === "outdated" ? lineDiff(onedBlockOf(conf), onedBlockOf(merged)) : [];
  let onedConf = previous?.onedConf;
  let onedConfSha = previous?.onedConfSha;
  if (opts.onedConf && onedText !== null && merged !== onedText) {
    const current = sha256(onedText);
    // A new backup unless the file is exactly what onevz left (its backup is already kept).
    if (!(onedConf === paths.onedConf && onedConfSha === current)) {
      await keep(paths.onedConf, "edited");
    }
    const mode = ((await Deno.stat(paths.onedConf)).mode ?? 0o644) & 0o7777;
    await writeAtomic(paths.onedConf, merged, mode);
    onedConf = paths.onedConf;
    onedConfSha = sha256(merged);
  }

  const manifest: Manifest = {
    tool: "onevz",
    version: VERSION,
    mode: paths.mode,
    installedAt: t.toISOString(),
    files,
    dirs: [],
    backups,
    onedConf,
    onedConfSha,
  };
  await mkdirs(dirname(paths.manifest), created);
  manifest.dirs = [...created].sort();
  await writeAtomic(paths.manifest, JSON.stringify(manifest, null, 2) + "\n", 0o644);
  return { manifest, snippet, block, blockDiff, scriptsRemoteDir: srd, notes };
}

/** The `# BEGIN onevz` … `# END onevz` lines of an oned.conf text. */
function onedBlockOf(conf: string): string {
  const m = /^# BEGIN onevz.*\n[\s\S]*?^# END onevz[^\n]*\n?/m.exec(conf);
  return m ? m[0] : "";
}

/** Options that install (not --sudoers) takes. */
const INSTALL_ONLY = ["one-location", "system", "oned-conf", "binary", "scripts-remote-dir"];

export default async function (ctx: CommandContext): Promise<number> {
  const f = ctx.flags;
  if (f.sudoers === true) {
    // Print the rules, only the rules, and change nothing (they are piped into sudoers.d).
    const mixed = [...INSTALL_ONLY, "dev-launcher"].filter((k) => f[k] !== undefined);
    if (mixed.length) {
      throw new UsageError(
        `install --sudoers only prints the sudo rules and changes nothing: leave out ${
          mixed.map((k) => `--${k}`).join(", ")
        } (run install without --sudoers to install)`,
      );
    }
    const group = typeof f.group === "string" ? f.group : "cloud";
    if (!validGroupName(group)) {
      throw new UsageError(
        `install --sudoers --group: ${JSON.stringify(group)} is not a group name`,
      );
    }
    ctx.io.out(sudoersLines(group));
    return 0;
  }
  if (f.group !== undefined) {
    throw new UsageError("install: --group goes with --sudoers (the group the sudo rules name)");
  }
  const system = f.system === true;
  const loc = typeof f["one-location"] === "string" ? f["one-location"] : ctx.env("ONE_LOCATION");
  if (system && typeof f["one-location"] === "string") {
    throw new UsageError("install: give either --one-location or --system, not both");
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
  const devAllowed = f["dev-launcher"] === true || ctx.env("ONEVZ_DEV_LAUNCHER") === "1";
  const binary: BinarySource = typeof f.binary === "string"
    ? { kind: "copy", from: f.binary }
    : runningBinary();
  if (binary.kind === "copy") {
    let head = "";
    try {
      if (!(await Deno.stat(binary.from)).isFile) throw new Error();
      const file = await Deno.open(binary.from);
      const buf = new Uint8Array(4096);
      const n = await file.read(buf);
      file.close();
      head = new TextDecoder().decode(buf.subarray(0, n ?? 0));
    } catch {
      throw new UsageError(`install: --binary ${binary.from} is not a file`);
    }
    const kind = executableKind(head);
    if (kind !== "elf" && !devAllowed) {
      throw new UsageError(
        `install: --binary ${binary.from} is ${
          kind === "other" ? "not an executable" : "a script"
        }, not the compiled onevz (build it: README §10); --dev-launcher installs it anyway`,
      );
    }
  } else if (!devAllowed) {
    throw new UsageError(
      "install: this onevz runs from a source checkout (deno main.ts), and the launcher it would " +
        "install runs that checkout on this machine only: no node can run it. Build the " +
        "executable (README §10) and install with it (dist/onevz install …, or --binary " +
        "dist/onevz); --dev-launcher installs the development launcher anyway (tests, demo)",
    );
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
  say(`  config       ${paths.etc}/vmm_ssh/vmm_ssh_ovz.conf, ${paths.tmOvzConf}`);
  say(`  manifest     ${paths.manifest}`);
  say(
    binary.kind === "launcher"
      ? "  executable   DEVELOPMENT LAUNCHER: runs main.ts of this checkout with its deno, " +
        "on this machine only (no node can run it; doctor fails it)"
      : `  executable   copied from ${binary.from}`,
  );
  for (const n of result.notes) say(`note: ${n}`);
  say("");
  const conf = paths.onedConf;
  if (result.block === "current") {
    say(`${conf} already holds this version's onevz block: nothing to add.`);
  } else if (result.block === "outdated" && f["oned-conf"] === true) {
    say(`replaced the onevz block in ${conf} (restart oned to apply):`);
    for (const l of result.blockDiff) say(`  ${l}`);
  } else if (result.block === "outdated") {
    say(`The onevz block in ${conf} differs from this version's (re-run with --oned-conf):`);
    for (const l of result.blockDiff) say(`  ${l}`);
  } else if (result.snippet.trim() === "") {
    say(`${conf} already defines every section onevz needs: nothing to add.`);
  } else if (f["oned-conf"] === true) {
    say(`merged the onevz block into ${conf} (restart oned to apply)`);
  } else {
    say(`Add to ${conf} (or re-run with --oned-conf), then restart oned:`);
    say("");
    ctx.io.out(result.snippet.endsWith("\n") ? result.snippet : result.snippet + "\n");
  }
  if (result.block !== "current") {
    say("");
    say(
      "Register each OpenVZ node with onevz's transfer manager: " +
        "onehost create <node> im_ovz vmm_ovz tm_ovz",
    );
  }
  return 0;
}
