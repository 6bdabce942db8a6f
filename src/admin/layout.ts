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
  "etc/tm_ovz.conf",
  "etc/tm_ovzrc",
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
  /** The installation root: $ONE_LOCATION, or / (a test's root) for a system installation. */
  root: string;
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
  /** Where install keeps the files it replaced or edited (paths below mirror `root`). */
  backups: string;
  onedConf: string;
  /** onevz's own transfer manager configuration (TM_MAD tm_ovz). */
  tmOvzConf: string;
  /** OpenNebula's tm_ssh configuration: never written, only restored from an old onevz. */
  tmSshConf: string;
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
      root: r || "/",
      remotes: `${r}/var/lib/one/remotes`,
      remotesCopy: `${r}/usr/lib/one/remotes`,
      etc: `${r}/etc/one`,
      tmDir: `${r}/usr/lib/one/onevz/tm`,
      manifest: `${r}/usr/lib/one/onevz/install-manifest.json`,
      backups: `${r}/usr/lib/one/onevz/backups`,
      onedConf: `${r}/etc/one/oned.conf`,
      tmOvzConf: `${r}/etc/one/tm_ovz/tm_ovz.conf`,
      tmSshConf: `${r}/etc/one/tm_ssh/tm_ssh.conf`,
    };
  }
  const loc = (opts.oneLocation ?? "").replace(/\/+$/, "");
  if (!loc.startsWith("/")) throw new Error("ONE_LOCATION must be an absolute path");
  return {
    mode: "self-contained",
    root: loc,
    remotes: `${loc}/var/remotes`,
    remotesCopy: `${loc}/lib/remotes`,
    etc: `${loc}/etc`,
    tmDir: `${loc}/lib/onevz/tm`,
    manifest: `${loc}/lib/onevz/install-manifest.json`,
    backups: `${loc}/lib/onevz/backups`,
    onedConf: `${loc}/etc/oned.conf`,
    tmOvzConf: `${loc}/etc/tm_ovz/tm_ovz.conf`,
    tmSshConf: `${loc}/etc/tm_ssh/tm_ssh.conf`,
  };
}

/** How an entry treats an existing file. */
export type Policy =
  /** Ours: (re)written; a file that is not what onevz wrote there is backed up first. */
  | "replace"
  /** Operator-editable: replaced only when unchanged since we wrote it; else `.new` beside. */
  | "config";

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

/** First comment line of the development launcher (doctor and install recognise it). */
export const DEV_LAUNCHER_MARK =
  "# onevz development launcher: runs a source checkout with its Deno; works on that machine only.";

export function devLauncher(deno: string, main: string): string {
  return [
    "#!/bin/bash",
    DEV_LAUNCHER_MARK,
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

export function tmOvzConf(template: string, tmDir: string): string {
  return template.replaceAll("@TM_DIR@", tmDir);
}

/**
 * What a file at bin/onevz is, from its first bytes: the compiled executable (ELF), or a
 * script — the development launcher or any other — which no node can run as onevz.
 */
export function executableKind(head: string): "elf" | "dev-launcher" | "script" | "other" {
  if (head.startsWith("\x7fELF")) return "elf";
  if (head.startsWith("#!")) {
    return head.includes(DEV_LAUNCHER_MARK) || /\bdeno\b[^\n]*\bmain\.ts\b/.test(head)
      ? "dev-launcher"
      : "script";
  }
  return "other";
}

/** OpenNebula 2.2.1's tm_ssh.conf (its seven commands), for putting tm_ssh back. */
export const STOCK_TM_SSH_CONF = [
  "# tm_ssh.conf: OpenNebula 2.2.1's ssh transfer manager (written back by onevz install;",
  "# an earlier onevz had pointed it at onevz's commands).",
  "CLONE   = ssh/tm_clone.sh",
  "LN      = ssh/tm_ln.sh",
  "MKSWAP  = ssh/tm_mkswap.sh",
  "MKIMAGE = ssh/tm_mkimage.sh",
  "DELETE  = ssh/tm_delete.sh",
  "MV      = ssh/tm_mv.sh",
  "CONTEXT = ssh/tm_context.sh",
  "",
].join("\n");

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

/**
 * The lines that differ between two texts, as `- old` / `+ new` (a longest-common-subsequence
 * diff; for the small oned.conf blocks install compares). Pure.
 */
export function lineDiff(before: string, after: string): string[] {
  const a = before.replace(/\n$/, "").split("\n");
  const b = after.replace(/\n$/, "").split("\n");
  const lcs: number[][] = Array.from({ length: a.length + 1 }, () => Array(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      i++;
      j++;
    } else if (i < a.length && (j === b.length || lcs[i + 1][j] >= lcs[i][j + 1])) {
      out.push(`- ${a[i++]}`);
    } else {
      out.push(`+ ${b[j++]}`);
    }
  }
  return out;
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
    path: paths.tmOvzConf,
    content: tmOvzConf(assets.remotes["etc/tm_ovz.conf"], paths.tmDir),
    mode: 0o644,
    policy: "config",
  });
  entries.push({
    kind: "file",
    path: `${paths.etc}/tm_ovz/tm_ovzrc`,
    content: assets.remotes["etc/tm_ovzrc"],
    mode: 0o644,
    policy: "config",
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

/** The OpenVZ tools onevz runs through `sudo -n` (sudoers names them in /usr/sbin). */
export const SUDO_OVZ_TOOLS = ["vzctl", "vzlist", "vzmigrate", "vzfirewall"] as const;

/**
 * The file helpers onevz runs through `sudo -n`: tail (poll reads several /proc files in one
 * call), od (archive magic), cmp (cached template), find (context files), chown (dumps and
 * saved disks handed to R's owner), gzip/bzip2/xz/sha256sum (verifying a saved disk), the rest
 * for the private areas and caches, whose files belong to root.
 */
export const SUDO_FILE_HELPERS = [
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
  "sha256sum",
] as const;

/** A group name sudoers reads as one name (no `%`, blanks, commas, `!`, quotes). */
export function validGroupName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/.test(name);
}

/**
 * The sudoers rules for the nodes (printed by `install --sudoers`). They name every program
 * onevz runs as root and say plainly what they grant: with tar, find, cp, dd, chmod … allowed
 * with any arguments, the group is root on the node (tests/hardening/sudo_escapes.test.ts).
 */
export function sudoersLines(group = "cloud"): string {
  if (!validGroupName(group)) throw new Error(`not a group name sudoers can take: ${group}`);
  const tools = SUDO_OVZ_TOOLS.map((t) => `/usr/sbin/${t}`);
  // Debian/Ubuntu and CentOS >= 7 keep the helpers in /usr/bin (with /bin a symlink),
  // CentOS 5/6 in /bin: list both spellings, sudo matches the path it resolves.
  const helpers = SUDO_FILE_HELPERS.map((t) =>
    t === "sha256sum" ? `/usr/bin/${t}` : `/bin/${t}, /usr/bin/${t}`
  );
  return [
    "# onevz: sudo rules for the OpenNebula driver user's group on an OpenVZ node",
    "# (as root: visudo -f /etc/sudoers.d/onevz).",
    "#",
    `# Membership of %${group} is ROOT-EQUIVALENT on this node. The rules allow the programs`,
    "# onevz runs through `sudo -n` with ANY arguments, and sudoers cannot confine them (a * in",
    "# a rule also matches blanks and extra options): tar --checkpoint-action=exec and find -exec",
    "# run any command as root; cp, mv, dd, ln and chmod/chown replace or take over any file",
    "# (e.g. a setuid-root copy of a shell); cat, tail, dd, od, cmp, gzip, bzip2, xz read any",
    "# file; vzctl controls every container. Give the group only to the account oned runs as,",
    "# and guard that account's ssh key as you would root's.",
    "# What the list still does compared with `ALL`: no password and no tty for exactly these",
    "# programs; sudo -i, sudo su, sudo sh and every other program are refused, so only a",
    "# deliberate escape (not a mistake, nor a script run by name) gets a root shell; and the",
    "# sudo log names the program of every call.",
    // No Cmnd_Alias: an alias defined in two sudoers.d files (the rules installed twice under
    // two names) is a syntax error that stops sudo for everyone; repeated rules are harmless.
    `Defaults:%${group} !requiretty`,
    `Defaults:%${group} secure_path="/sbin:/bin:/usr/sbin:/usr/bin"`,
    `%${group} ALL=(root) NOPASSWD: ${tools.join(", ")}, \\\n    ${helpers.join(", \\\n    ")}`,
    "",
  ].join("\n");
}
