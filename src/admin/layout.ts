/**
 * What `onevz install` lays out, as data: the paths of a self-contained ($ONE_LOCATION) or
 * system-wide installation, and the list of entries (files, shims, symlinks) to write there.
 * Pure apart from `loadAssets`, which reads the shipped files of the repository's remotes/
 * tree relative to this module, so that it also works inside a `deno compile`d binary built
 * with `--include remotes --include fixtures/templates/vmm_ssh_ovz.conf` (see build.ts).
 */

export const VMM_ACTIONS = [
  "deploy",
  "shutdown",
  "cancel",
  "save",
  "restore",
  "migrate",
  "poll",
  "reboot",
] as const;

export const TM_ACTIONS = [
  ["CLONE", "tm-clone"],
  ["LN", "tm-ln"],
  ["MKSWAP", "tm-mkswap"],
  ["MKIMAGE", "tm-mkimage"],
  ["DELETE", "tm-delete"],
  ["MV", "tm-mv"],
  ["CONTEXT", "tm-context"],
] as const;

/** Files of the repository's remotes/ tree that install reads (no directory listing needed). */
export const REMOTE_ASSETS = [
  ...VMM_ACTIONS.map((a) => `vmm/ovz/${a}`),
  ...VMM_ACTIONS.map((a) => `vmm/ovz_fe/${a}`),
  "im/ovz.d/probe",
  "im/ovz_fe.d/probe",
  "hooks/vzfirewall.sh",
  "etc/tm_ssh.conf",
  "etc/oned.conf.snippet",
] as const;

export const DEFAULTS_ASSET = "fixtures/templates/vmm_ssh_ovz.conf";

export const MINIMAL_DEFAULTS =
  `# vmm_ssh_ovz.conf: defaults for OpenVZ containers deployed by onevz.
# Attributes set here apply when a VM template does not give them (KEY=VALUE, one per line).
# This minimal file was written because the full commented template was not shipped.
`;

export interface InstallPaths {
  mode: "self-contained" | "system";
  /** The remotes tree oned copies to nodes (SCRIPTS_REMOTE_DIR). */
  remotes: string;
  /** The second copy OpenNebula keeps (used by local polling). */
  remotesCopy: string;
  /** Configuration directory (vmm_ssh/, tm_ssh/, oned.conf). */
  etc: string;
  /** Where the front-end tm-* entries live. */
  tmDir: string;
  /** Record of what install wrote, for upgrades and uninstall. */
  manifest: string;
  onedConf: string;
}

/**
 * Paths for `--one-location DIR` (self-contained) or `--system`. `root` prefixes the system
 * paths (tests install a "system" layout into a temporary directory).
 */
export function installPaths(
  opts: { oneLocation?: string; system?: boolean; root?: string },
): InstallPaths {
  if (opts.system) {
    const r = (opts.root ?? "").replace(/\/+$/, "");
    return {
      mode: "system",
      remotes: `${r}/var/lib/one/remotes`,
      remotesCopy: `${r}/usr/lib/one/remotes`,
      etc: `${r}/etc/one`,
      tmDir: `${r}/usr/lib/one/onevz/tm`,
      manifest: `${r}/usr/lib/one/onevz/install-manifest.json`,
      onedConf: `${r}/etc/one/oned.conf`,
    };
  }
  const loc = (opts.oneLocation ?? "").replace(/\/+$/, "");
  if (!loc.startsWith("/")) throw new Error("ONE_LOCATION must be an absolute path");
  return {
    mode: "self-contained",
    remotes: `${loc}/var/remotes`,
    remotesCopy: `${loc}/lib/remotes`,
    etc: `${loc}/etc`,
    tmDir: `${loc}/lib/onevz/tm`,
    manifest: `${loc}/lib/onevz/install-manifest.json`,
    onedConf: `${loc}/etc/oned.conf`,
  };
}

/** How an entry treats an existing file. */
export type Policy =
  /** Ours: always (re)written. */
  | "replace"
  /** Operator-editable: replaced only when unchanged since we wrote it; else `.new` beside. */
  | "config"
  /** Someone else's file we take over: the original is kept once as `<path>.orig`. */
  | "backup";

export type Entry =
  | { kind: "file"; path: string; content: string; mode: number; policy: Policy }
  | { kind: "copy"; path: string; from: string; mode: number }
  | { kind: "symlink"; path: string; target: string };

export interface Assets {
  /** Contents of REMOTE_ASSETS by relative name. */
  remotes: Record<string, string>;
  /** The vmm_ssh_ovz.conf template, or MINIMAL_DEFAULTS when it was not shipped. */
  defaults: string;
  defaultsShipped: boolean;
}

/** How bin/onevz is provided: a copy of a compiled executable, or the dev launcher. */
export type BinarySource =
  | { kind: "copy"; from: string }
  | { kind: "launcher"; deno: string; main: string };

export function devLauncher(deno: string, main: string): string {
  return [
    "#!/bin/bash",
    "# onevz development launcher: runs the source checkout with Deno (no compiled binary).",
    `exec -a "\${ONEVZ_ACTION:-onevz}" ${q(deno)} run -A --quiet --no-lock ${q(main)} "$@"`,
    "",
  ].join("\n");
}

/** Quote for bash (paths written into shims). */
function q(s: string): string {
  return /^[A-Za-z0-9_\/.,:=@%+-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

export function tmShim(action: string, remotes: string): string {
  return [
    "#!/bin/bash",
    `# onevz transfer manager entry (front-end, one_tm): runs onevz as ${action}.`,
    `export ONEVZ_REMOTES=${q(remotes)} ONEVZ_ACTION=${action}`,
    `exec -a ${action} ${q(remotes + "/bin/onevz")} "$@"`,
    "",
  ].join("\n");
}

export function tmSshConf(template: string, tmDir: string): string {
  return template.replaceAll("@TM_DIR@", tmDir);
}

/** The oned.conf snippet with the hook's absolute path, minus blocks oned.conf already has. */
export function onedSnippet(
  template: string,
  scriptsRemoteDir: string,
  existingOnedConf = "",
): string {
  const srd = scriptsRemoteDir.replace(/\/+$/, "") || "/var/tmp/one";
  const text = template.replaceAll("@SCRIPTS_REMOTE_DIR@", srd);
  const active = existingOnedConf.split("\n").filter((l) => !/^\s*#/.test(l)).join("\n");
  const has = (section: string, name: string) =>
    new RegExp(`${section}\\s*=\\s*\\[[^\\]]*name\\s*=\\s*"${name}"`).test(active);
  // Drop each `SECTION = [ … name = "x" … ]` oned.conf already has, with the comment lines
  // directly above it.
  return text.replace(
    /(?:^#[^\n]*\n)*^(\w+)\s*=\s*\[[^\]]*?name\s*=\s*"([^"]+)"[^\]]*\]\n?\n?/gm,
    (block, section: string, name: string) => has(section, name) ? "" : block,
  );
}

export const ONED_BEGIN =
  "# BEGIN onevz (managed by `onevz install --oned-conf`; edits here are replaced)";
export const ONED_END = "# END onevz";

/** oned.conf with the onevz block appended, or replaced in place when already present. */
export function withOnedBlock(conf: string, snippet: string): string {
  const block = `${ONED_BEGIN}\n${snippet.trimEnd()}\n${ONED_END}\n`;
  const stripped = withoutOnedBlock(conf);
  const start = conf.indexOf("# BEGIN onevz");
  if (start >= 0 && stripped.length !== conf.length) {
    return stripped.slice(0, start) + block + stripped.slice(start);
  }
  return (conf === "" || conf.endsWith("\n") ? conf : conf + "\n") + (conf ? "\n" : "") + block;
}

/** oned.conf without the onevz block (uninstall; also the part install's checks look at). */
export function withoutOnedBlock(conf: string): string {
  return conf.replace(/^# BEGIN onevz.*\n[\s\S]*?^# END onevz[^\n]*\n?/m, "");
}

/** Every entry install writes, in order. */
export function planLayout(
  paths: InstallPaths,
  assets: Assets,
  binary: BinarySource,
): Entry[] {
  const entries: Entry[] = [];
  const defaultsFile = `${paths.etc}/vmm_ssh/vmm_ssh_ovz.conf`;
  const bin = `${paths.remotes}/bin/onevz`;
  if (binary.kind === "copy") {
    entries.push({ kind: "copy", path: bin, from: binary.from, mode: 0o755 });
  } else {
    entries.push({
      kind: "file",
      path: bin,
      content: devLauncher(binary.deno, binary.main),
      mode: 0o755,
      policy: "replace",
    });
  }
  for (const [tree, isCopy] of [[paths.remotes, false], [paths.remotesCopy, true]] as const) {
    if (isCopy) entries.push({ kind: "symlink", path: `${tree}/bin/onevz`, target: bin });
    for (const name of REMOTE_ASSETS) {
      if (name.startsWith("etc/")) continue;
      entries.push({
        kind: "file",
        path: `${tree}/${name}`,
        content: assets.remotes[name],
        mode: 0o755,
        policy: "replace",
      });
    }
    for (const hyp of ["ovz", "ovz_fe"]) {
      entries.push({
        kind: "symlink",
        path: `${tree}/vmm/${hyp}/vmm_ssh_ovz.conf`,
        target: defaultsFile,
      });
    }
  }
  for (const [, action] of TM_ACTIONS) {
    entries.push({
      kind: "file",
      path: `${paths.tmDir}/${action}`,
      content: tmShim(action, paths.remotes),
      mode: 0o755,
      policy: "replace",
    });
  }
  entries.push({
    kind: "file",
    path: defaultsFile,
    content: assets.defaults,
    mode: 0o644,
    policy: "config",
  });
  entries.push({
    kind: "file",
    path: `${paths.etc}/tm_ssh/tm_ssh.conf`,
    content: tmSshConf(assets.remotes["etc/tm_ssh.conf"], paths.tmDir),
    mode: 0o644,
    policy: "backup",
  });
  return entries;
}

/** Read the shipped assets relative to this module (source checkout or compiled binary). */
export async function loadAssets(base: URL = new URL("../../", import.meta.url)): Promise<Assets> {
  const remotes: Record<string, string> = {};
  for (const name of REMOTE_ASSETS) {
    const url = new URL(`remotes/${name}`, base);
    try {
      remotes[name] = await Deno.readTextFile(url);
    } catch (e) {
      throw new Error(
        `shipped file remotes/${name} is missing (${(e as Error).message}); ` +
          "a compiled onevz must be built with --include remotes (build.ts does)",
      );
    }
  }
  try {
    const defaults = await Deno.readTextFile(new URL(DEFAULTS_ASSET, base));
    return { remotes, defaults, defaultsShipped: true };
  } catch {
    return { remotes, defaults: MINIMAL_DEFAULTS, defaultsShipped: false };
  }
}

/** Least-privilege sudoers lines for the nodes (printed by `install --sudoers`). */
export function sudoersLines(group = "cloud"): string {
  const tools = ["vzctl", "vzlist", "vzmigrate", "vzfirewall"].map((t) => `/usr/sbin/${t}`);
  // Debian/Ubuntu and CentOS ≥ 7 keep these in /usr/bin (with /bin a symlink), CentOS 5/6
  // in /bin: list both spellings, sudo matches the path it resolves.
  // tail (poll reads several /proc files in one call), od (archive magic), cmp (cached
  // template), find (context files), chown (dumps and saved disks handed to R's owner),
  // gzip/bzip2/xz (verifying a saved disk) are run privileged too.
  const helpers = [
    "tar",
    "cat",
    "tail",
    "dd",
    "mv",
    "rm",
    "mkdir",
    "chmod",
    "chown",
    "ln",
    "cp",
    "test",
    "od",
    "cmp",
    "find",
    "gzip",
    "bzip2",
    "xz",
  ]
    .map((t) => `/bin/${t}, /usr/bin/${t}`);
  helpers.push("/usr/bin/sha256sum");
  return [
    "# onevz: sudo rules for the OpenNebula user's group on OpenVZ nodes (visudo -f /etc/sudoers.d/onevz).",
    "# onevz only calls these programs through `sudo -n`. The file helpers (tar, dd, mv, rm, …)",
    "# act on the VM directories, whose container files belong to root; sudoers cannot",
    "# confine their path arguments safely, so treat this group as trusted on the nodes.",
    `Cmnd_Alias ONEVZ_OVZ = ${tools.join(", ")}`,
    `Cmnd_Alias ONEVZ_FILES = ${helpers.join(", \\\n    ")}`,
    `Defaults:%${group} !requiretty`,
    `Defaults:%${group} secure_path="/sbin:/bin:/usr/sbin:/usr/bin"`,
    `%${group} ALL=(root) NOPASSWD: ONEVZ_OVZ, ONEVZ_FILES`,
    "",
  ].join("\n");
}
