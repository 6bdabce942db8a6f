/**
 * Front-end checks: the OpenNebula environment, oned.conf's onevz sections, the installed
 * remotes tree and tm_ssh.conf, the defaults file, the image repository and ssh to localhost.
 * `gatherFrontend` collects facts (files and a few local commands); `evaluateFrontend` is pure.
 */
import { join } from "node:path";
import { shellQuote } from "../../cli/errors.ts";
import type { Host } from "../../host/host.ts";
import { parseDriverConfig } from "../../one/config.ts";
import { defaultsFileCandidates, readDefaultsFile } from "../../one/defaults_file.ts";
import { namesOnevzTm, readManifest } from "../install.ts";
import { executableKind, TM_ACTIONS, VMM_ACTIONS, withoutOnedBlock } from "../layout.ts";
import { sshFailureFix } from "./node.ts";
import { attr, namedVector, type OnedConf, parseOnedConf } from "./oned.ts";
import { type CheckResult, fail, firstLine, type FixSpec, ok, runAs, todo, warn } from "./types.ts";

const SCOPE = "front-end";
export const SYSTEM_ONED_CONF = "/etc/one/oned.conf";
export const DEFAULT_VMM_DEFAULTS = "vmm_ssh/vmm_ssh_ovz.conf";

/** Files of the remotes tree that must exist and be executable. */
export const REQUIRED_REMOTES = [
  "bin/onevz",
  ...VMM_ACTIONS.map((a) => `vmm/ovz/${a}`),
  "im/ovz.d/probe",
  "hooks/vzfirewall.sh",
];

export interface FileFact {
  path: string;
  exists: boolean;
  executable?: boolean;
  /** Permission bits (e.g. 0o600). */
  mode?: number;
  owner?: string;
  group?: string;
}

export interface FrontendFacts {
  env: { ONE_LOCATION?: string; ONE_AUTH?: string; ONE_XMLRPC?: string; HOME?: string };
  /** The auth file in use ($ONE_AUTH, else ~/.one/one_auth). */
  oneAuth: FileFact;
  /** Whether /etc/one/oned.conf exists (system-wide installation). */
  systemOnedConf: boolean;
  onedConfPath: string;
  onedConf: string | null;
  /** $ONE_LOCATION/var/config (oned's effective configuration), when present. */
  varConfig: string | null;
  remotesDir: string;
  remotes: FileFact[];
  /** `bin/onevz --version` result, null when bin/onevz is missing. */
  remoteVersion: { rc: number; out: string } | null;
  /** The first bytes of bin/onevz (ELF or a script), null when it is missing. */
  remoteHead?: string | null;
  /** This program's version. */
  version: string;
  /** onevz's transfer manager configuration (etc/tm_ovz/tm_ovz.conf). */
  tmOvzConfPath: string;
  tmOvzConf: string | null;
  /** Whether install left its own version beside an edited tm_ovz.conf (`.new`). */
  tmOvzConfNew?: boolean;
  /** The executables tm_ovz.conf names. */
  tmEntries: FileFact[];
  /** OpenNebula's tm_ssh.conf (it must not name onevz's commands). */
  tmSshConfPath: string;
  tmSshConf: string | null;
  /** Whether onevz's install manifest lists tm_ssh.conf (an earlier onevz wrote it). */
  tmSshByOnevz?: boolean;
  /** How a fix runs onevz on this front-end (the executable's path, or `onevz`). */
  onevzCommand?: string;
  defaultsPath: string;
  defaultsText: string | null;
  /** The defaults file the actions would use cannot be read (or ONEVZ_DEFAULTS names none). */
  defaultsError?: string;
  imageRepo: FileFact & { oneadminGroups?: string[]; writableByCurrentUser?: boolean };
  oneadmin: string;
  currentUser: string;
  sshLocalhost: { rc: number; out: string };
}

/** Where a self-contained or system-wide installation keeps things. */
export function frontendPaths(oneLocation: string | undefined) {
  const loc = oneLocation?.replace(/\/+$/, "");
  return loc
    ? {
      root: loc,
      etc: `${loc}/etc`,
      onedConf: `${loc}/etc/oned.conf`,
      remotes: `${loc}/var/remotes`,
      images: `${loc}/var/images`,
      varConfig: `${loc}/var/config`,
    }
    : {
      root: "/var/lib/one",
      etc: "/etc/one",
      onedConf: SYSTEM_ONED_CONF,
      remotes: "/var/lib/one/remotes",
      images: "/var/lib/one/images",
      varConfig: "/var/lib/one/config",
    };
}

/** The command that (re)installs onevz on this front-end. */
export function installCommand(
  oneLocation: string | undefined,
  extra = "",
  onevz = "onevz",
): string {
  const where = oneLocation ? `--one-location ${shellQuote(oneLocation)}` : "--system";
  return `${onevz} install ${where}${extra ? " " + extra : ""}`;
}

/** How a printed fix runs this onevz: the compiled executable's path, else `onevz`. */
export function onevzCommand(): string {
  const exe = Deno.execPath();
  return /^deno(\.exe)?$/.test(exe.split("/").pop() ?? "") ? "onevz" : shellQuote(exe);
}

/**
 * The OpenNebula user: ONEVZ_ONEADMIN, else the user running doctor — unless that is root,
 * then the owner of the installation ($ONE_LOCATION, /var/lib/one), else "oneadmin".
 */
export function oneadminOf(
  envOneadmin: string | undefined,
  currentUser: string,
  installOwner: string | undefined,
): string {
  if (envOneadmin) return envOneadmin;
  if (currentUser && currentUser !== "root") return currentUser;
  if (installOwner && installOwner !== "UNKNOWN") return installOwner;
  return "oneadmin";
}

/** VM_DIR and SCRIPTS_REMOTE_DIR as oned uses them (var/config first, then oned.conf). */
export function nodeDirs(
  onedConf: string | null,
  varConfig: string | null,
  oneLocation: string | undefined,
): { vmDir: string; remoteDir: string } {
  const from = (name: string) => {
    for (const text of [varConfig, onedConf]) {
      if (text === null) continue;
      const v = attr(parseOnedConf(text), name);
      if (v) return v;
    }
    return undefined;
  };
  const loc = oneLocation?.replace(/\/+$/, "");
  return {
    vmDir: from("VM_DIR") ?? (loc ? `${loc}/var` : "/var/lib/one"),
    remoteDir: from("SCRIPTS_REMOTE_DIR") ?? "/var/tmp/one",
  };
}

export async function gatherFrontend(
  host: Host,
  env: (name: string) => string | undefined,
  version: string,
): Promise<FrontendFacts> {
  const e = {
    ONE_LOCATION: env("ONE_LOCATION") || undefined,
    ONE_AUTH: env("ONE_AUTH") || undefined,
    ONE_XMLRPC: env("ONE_XMLRPC") || undefined,
    HOME: env("HOME") || undefined,
  };
  const paths = frontendPaths(e.ONE_LOCATION);
  const run = async (argv: string[]) => {
    const r = await host.run(argv, { check: false, timeoutMs: 20000 });
    return { rc: r.status, out: (r.stdout + r.stderr).trim() };
  };
  const stat = async (path: string): Promise<FileFact> => {
    const r = await host.run(["stat", "-L", "-c", "%a %U %G", "--", path], { check: false });
    if (r.status !== 0) return { path, exists: false };
    const [mode, owner, group] = r.stdout.trim().split(/\s+/);
    const x = await host.run(["test", "-x", path], { check: false });
    return {
      path,
      exists: true,
      mode: parseInt(mode, 8),
      owner,
      group,
      executable: x.status === 0,
    };
  };
  const read = (path: string) => host.readFile(path).catch(() => null);

  const authPath = e.ONE_AUTH ?? (e.HOME ? `${e.HOME}/.one/one_auth` : ".one/one_auth");
  const onedConf = await read(paths.onedConf);
  const remotes = await Promise.all(REQUIRED_REMOTES.map((r) => stat(join(paths.remotes, r))));
  const bin = remotes[0];
  const remoteVersion = bin.exists ? await run([bin.path, "--version"]) : null;
  const head = bin.exists
    ? await host.run(["head", "-c", "4096", bin.path], { check: false })
    : null;
  const tmOvzConfPath = `${paths.etc}/tm_ovz/tm_ovz.conf`;
  const tmOvzConf = await read(tmOvzConfPath);
  const tmSshConfPath = `${paths.etc}/tm_ssh/tm_ssh.conf`;
  const tmSshConf = await read(tmSshConfPath);
  const tmTargets = tmOvzConf === null ? [] : Object.values(parseTmSshConf(tmOvzConf));
  const manifestPath = e.ONE_LOCATION
    ? `${paths.root}/lib/onevz/install-manifest.json`
    : "/usr/lib/one/onevz/install-manifest.json";
  const manifest = await readManifest(manifestPath);
  // The file the actions read (one/defaults_file.ts; oned never applies VM_MAD's default=),
  // shown by its real path: the installed file behind the remotes link.
  const defaults = await readDefaultsFile(env, paths.remotes).then(
    async (d) => ({
      path: d.file ? await Deno.realPath(d.file).catch(() => d.file!) : d.tried[d.tried.length - 1],
      text: d.text,
      error: undefined,
    }),
    (err: Error) => ({
      path: defaultsFileCandidates(env, paths.remotes).files[0],
      text: null,
      error: err.message,
    }),
  );
  const repoPath = (onedConf !== null && attr(parseOnedConf(onedConf), "IMAGE_REPOSITORY_PATH")) ||
    paths.images;
  const currentUser = (await run(["id", "-un"])).out || env("USER") || "";
  const owner = await host.run(["stat", "-c", "%U", paths.root], { check: false });
  const oneadmin = oneadminOf(
    env("ONEVZ_ONEADMIN") || undefined,
    currentUser,
    owner.status === 0 ? owner.stdout.trim() : undefined,
  );
  const repo = await stat(repoPath);
  const groups = await run(["id", "-Gn", oneadmin]);
  const w = await run(["test", "-w", repoPath]);
  return {
    env: e,
    oneAuth: await stat(authPath),
    systemOnedConf: await host.exists(SYSTEM_ONED_CONF),
    onedConfPath: paths.onedConf,
    onedConf,
    varConfig: await read(paths.varConfig),
    remotesDir: paths.remotes,
    remotes,
    remoteVersion,
    remoteHead: head && head.status === 0 ? head.stdout : null,
    version,
    tmOvzConfPath,
    tmOvzConf,
    tmOvzConfNew: await host.exists(`${tmOvzConfPath}.new`),
    tmEntries: await Promise.all(tmTargets.map(stat)),
    tmSshConfPath,
    tmSshConf,
    tmSshByOnevz: (manifest?.files ?? []).some((x) => x.path === tmSshConfPath),
    onevzCommand: onevzCommand(),
    defaultsPath: defaults.path,
    defaultsText: defaults.text,
    defaultsError: defaults.error,
    imageRepo: {
      ...repo,
      oneadminGroups: groups.rc === 0 ? groups.out.split(/\s+/) : undefined,
      writableByCurrentUser: w.rc === 0,
    },
    oneadmin,
    currentUser,
    sshLocalhost: await sshLocalhost(env),
  };
}

async function sshLocalhost(env: (name: string) => string | undefined) {
  const { SshHost } = await import("../../host/ssh.ts");
  const h = new SshHost("localhost", { multiplex: false });
  try {
    const r = await h.run(["true"], { check: false, timeoutMs: 20000 });
    return { rc: r.status, out: (r.stderr + r.stdout).trim() };
  } catch (e) {
    return { rc: 255, out: `${env("ONEVZ_SSH") || "ssh"}: ${(e as Error).message}` };
  }
}

/** tm_ssh.conf: KEY=path lines (pure). */
export function parseTmSshConf(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^\s*([A-Z_]+)\s*=\s*"?([^"#\s]+)"?/.exec(line);
    if (m) out[m[1]] = m[2];
  }
  return out;
}

function modeText(mode: number): string {
  return mode.toString(8).padStart(3, "0");
}

/** All front-end results from the facts (pure). */
export function evaluateFrontend(f: FrontendFacts): CheckResult[] {
  const r: CheckResult[] = [];
  const loc = f.env.ONE_LOCATION;
  const onevz = f.onevzCommand ?? "onevz";
  // Fixes that write OpenNebula's files run as its user, not as a root running doctor.
  const asOneadmin = (command: string): FixSpec =>
    f.currentUser === f.oneadmin ? command : runAs(f.oneadmin, "front-end", command);
  const install = asOneadmin(installCommand(loc, "", onevz));

  // Environment.
  if (loc) r.push(ok("frontend.env.one_location", SCOPE, `ONE_LOCATION=${loc}`));
  else if (f.systemOnedConf) {
    r.push(ok("frontend.env.one_location", SCOPE, "ONE_LOCATION unset: system-wide installation"));
  } else {
    r.push(fail(
      "frontend.env.one_location",
      SCOPE,
      "ONE_LOCATION is not set and there is no /etc/one/oned.conf",
      todo(
        "set ONE_LOCATION to your OpenNebula directory in oneadmin's environment " +
          "(the seed's ~/.one-env: export ONE_LOCATION=/srv/cloud/one/one-2.2.1) and run doctor again",
      ),
    ));
  }
  const a = f.oneAuth;
  if (!a.exists) {
    r.push(fail(
      "frontend.env.one_auth",
      SCOPE,
      `ONE_AUTH file ${a.path} does not exist${f.env.ONE_AUTH ? "" : " (ONE_AUTH unset)"}`,
      todo(
        `write '${f.oneadmin}:<password>' (oneadmin's OpenNebula password) into ${a.path}, ` +
          `mode 600${f.env.ONE_AUTH ? "" : `, and export ONE_AUTH=${a.path} in ~/.one-env`}`,
      ),
    ));
  } else if (a.mode !== undefined && (a.mode & 0o004) !== 0) {
    r.push(fail(
      "frontend.env.one_auth",
      SCOPE,
      `ONE_AUTH file ${a.path} is world-readable (mode ${modeText(a.mode)})`,
      `chmod 600 ${shellQuote(a.path)}`,
    ));
  } else if (!f.env.ONE_AUTH) {
    r.push(warn(
      "frontend.env.one_auth",
      SCOPE,
      `ONE_AUTH is not set (OpenNebula falls back to ${a.path})`,
      todo(`add export ONE_AUTH=${a.path} to oneadmin's ~/.one-env`),
    ));
  } else {
    r.push(ok("frontend.env.one_auth", SCOPE, `ONE_AUTH=${a.path} exists, not world-readable`));
  }
  const x = f.env.ONE_XMLRPC;
  if (!x) {
    r.push(warn(
      "frontend.env.one_xmlrpc",
      SCOPE,
      "ONE_XMLRPC is not set (the CLI uses http://localhost:2633/RPC2)",
      todo("add export ONE_XMLRPC=http://localhost:2633/RPC2 to oneadmin's ~/.one-env"),
    ));
  } else if (!/^https?:\/\/[^\s/]+/.test(x)) {
    r.push(fail(
      "frontend.env.one_xmlrpc",
      SCOPE,
      `ONE_XMLRPC=${x} is not an http(s) URL`,
      todo("set ONE_XMLRPC=http://<front-end>:2633/RPC2 in oneadmin's ~/.one-env"),
    ));
  } else r.push(ok("frontend.env.one_xmlrpc", SCOPE, `ONE_XMLRPC=${x}`));

  // oned.conf.
  if (f.onedConf === null) {
    r.push(fail(
      "frontend.oned.conf",
      SCOPE,
      `${f.onedConfPath} does not exist`,
      todo(
        `${loc ? `ONE_LOCATION=${loc}` : "/etc/one"} holds no OpenNebula configuration: ` +
          "point ONE_LOCATION at the OpenNebula installation (or install OpenNebula), then " +
          "run doctor again",
      ),
    ));
  } else {
    r.push(
      ...evaluateOnedConf(f.onedConfPath, parseOnedConf(f.onedConf), loc, f.varConfig, {
        text: f.onedConf,
        fixAs: f.currentUser === f.oneadmin ? undefined : f.oneadmin,
        onevz,
      }),
    );
  }

  // Remotes.
  const missing = f.remotes.filter((x) => !x.exists);
  const notExec = f.remotes.filter((x) => x.exists && !x.executable);
  if (missing.length) {
    r.push(fail(
      "frontend.remotes",
      SCOPE,
      `${missing.length} remotes file(s) missing under ${f.remotesDir}: ` +
        missing.map((m) => m.path.slice(f.remotesDir.length + 1)).join(", "),
      install,
    ));
  } else if (notExec.length) {
    r.push(fail(
      "frontend.remotes",
      SCOPE,
      `remotes not executable: ${notExec.map((m) => m.path).join(", ")}`,
      asOneadmin(`chmod 755 ${notExec.map((m) => shellQuote(m.path)).join(" ")}`),
    ));
  } else {
    r.push(ok("frontend.remotes", SCOPE, `remotes installed and executable in ${f.remotesDir}`));
  }
  const binPath = `${f.remotesDir}/bin/onevz`;
  if (f.remoteHead !== undefined && f.remoteHead !== null) {
    const kind = executableKind(f.remoteHead);
    if (kind === "elf") {
      r.push(ok("frontend.remotes.executable", SCOPE, `${binPath} is a compiled executable`));
    } else {
      r.push(fail(
        "frontend.remotes.executable",
        SCOPE,
        `${binPath} is ${
          kind === "dev-launcher"
            ? "a development launcher (it runs a source checkout with deno on this machine)"
            : kind === "script"
            ? "a script"
            : "not an executable"
        }, not the compiled onevz: no node can run it`,
        todo(
          "build the executable (README §10: npx deno run -A build.ts) and install with it: " +
            `dist/onevz install ${loc ? `--one-location ${shellQuote(loc)}` : "--system"}`,
        ),
      ));
    }
  }
  if (f.remoteVersion !== null) {
    const got = /\b(\d+\.\d+\.\d+\S*)/.exec(f.remoteVersion.out)?.[1];
    if (f.remoteVersion.rc !== 0 || got !== f.version) {
      r.push(fail(
        "frontend.remotes.version",
        SCOPE,
        f.remoteVersion.rc !== 0
          ? `${binPath} --version failed: ${firstLine(f.remoteVersion.out)}`
          : `${binPath} is version ${got ?? "unknown"}, this onevz is ${f.version}`,
        install,
      ));
    } else {
      r.push(ok("frontend.remotes.version", SCOPE, `remotes bin/onevz is version ${got}`));
    }
  }

  // onevz's transfer manager (tm_ovz.conf).
  if (f.tmOvzConf === null) {
    r.push(fail("frontend.tm_ovz", SCOPE, `${f.tmOvzConfPath} does not exist`, install));
  } else {
    const entries = parseTmSshConf(f.tmOvzConf);
    const wrong = TM_ACTIONS.filter(([k, action]) =>
      !entries[k] || entries[k].split("/").pop() !== action
    ).map(([k]) => k);
    const broken = f.tmEntries.filter((t) => !t.exists || !t.executable).map((t) => t.path);
    const edited: FixSpec = f.tmOvzConfNew
      ? todo(
        `${f.tmOvzConfPath} was edited: compare it with ${f.tmOvzConfPath}.new (this version's)`,
      )
      : install;
    if (wrong.length) {
      r.push(fail(
        "frontend.tm_ovz",
        SCOPE,
        `${f.tmOvzConfPath}: ${wrong.join(", ")} do not point at onevz tm entries`,
        edited,
      ));
    } else if (broken.length) {
      r.push(fail(
        "frontend.tm_ovz",
        SCOPE,
        `tm_ovz.conf names missing or non-executable entries: ${broken.join(", ")}`,
        install,
      ));
    } else {
      r.push(ok("frontend.tm_ovz", SCOPE, `${f.tmOvzConfPath} points at the onevz tm entries`));
    }
  }
  // OpenNebula's tm_ssh.conf stays OpenNebula's: KVM and Xen hosts use it.
  if (f.tmSshConf !== null && namesOnevzTm(f.tmSshConf)) {
    r.push(warn(
      "frontend.tm_ssh",
      SCOPE,
      `${f.tmSshConfPath} names onevz's tm-* commands: KVM/Xen hosts registered with tm_ssh ` +
        "would get onevz's transfers (no swap file, a directory for context, no MKIMAGE)",
      f.tmSshByOnevz ? install : todo(
        `put OpenNebula's tm_ssh.conf back (the seed's ${f.tmSshConfPath}.orig, or ` +
          "CLONE=ssh/tm_clone.sh … CONTEXT=ssh/tm_context.sh, README §2) and register OpenVZ " +
          "nodes with tm_ovz",
      ),
    ));
  } else {
    r.push(ok(
      "frontend.tm_ssh",
      SCOPE,
      f.tmSshConf === null
        ? `no ${f.tmSshConfPath} (onevz does not need it)`
        : `${f.tmSshConfPath} does not name onevz's commands (left as OpenNebula's)`,
    ));
  }

  // Defaults file.
  if (f.defaultsError) {
    r.push(fail(
      "frontend.defaults",
      SCOPE,
      f.defaultsError,
      todo("deploy and the TM stop on this file too: correct ONEVZ_DEFAULTS or the file's mode"),
    ));
  } else if (f.defaultsText === null) {
    r.push(warn(
      "frontend.defaults",
      SCOPE,
      `${f.defaultsPath} does not exist: containers get built-in defaults only`,
      install,
    ));
  } else {
    try {
      const c = parseDriverConfig(f.defaultsText, f.defaultsPath);
      r.push(ok(
        "frontend.defaults",
        SCOPE,
        `${f.defaultsPath} parses (${c.defaults.attributes.size} defaults, CTID_OFFSET ${c.ctidOffset})`,
      ));
    } catch (e) {
      r.push(fail(
        "frontend.defaults",
        SCOPE,
        `defaults file does not parse: ${(e as Error).message}`,
        todo(`correct ${f.defaultsPath} where the message says`),
      ));
    }
  }

  // Image repository.
  r.push(evaluateImageRepo(f));

  // ssh to localhost.
  if (f.sshLocalhost.rc === 0) {
    r.push(ok("frontend.ssh_localhost", SCOPE, "passwordless ssh to localhost works"));
  } else {
    const who = f.currentUser || f.oneadmin;
    r.push(fail(
      "frontend.ssh_localhost",
      SCOPE,
      `ssh -o BatchMode=yes localhost failed: ${
        firstLine(f.sshLocalhost.out) || "exit " + f.sshLocalhost.rc
      }`,
      sshFailureFix(f.sshLocalhost.out, `${who}@localhost`, who),
    ));
  }
  return r;
}

function evaluateImageRepo(f: FrontendFacts): CheckResult {
  const repo = f.imageRepo;
  const id = "frontend.image_repository";
  const q = shellQuote(repo.path);
  if (!repo.exists) {
    return fail(
      id,
      SCOPE,
      `image repository ${repo.path} does not exist`,
      runAs("root", "front-end", `mkdir -p ${q} && chown ${f.oneadmin} ${q}`),
    );
  }
  const mode = repo.mode ?? 0;
  const writable = f.oneadmin === f.currentUser
    ? repo.writableByCurrentUser === true
    : (repo.owner === f.oneadmin && (mode & 0o200) !== 0) ||
      (repo.group !== undefined && (repo.oneadminGroups ?? []).includes(repo.group) &&
        (mode & 0o020) !== 0) ||
      (mode & 0o002) !== 0;
  if (!writable) {
    return fail(
      id,
      SCOPE,
      `image repository ${repo.path} is not writable by ${f.oneadmin} (owner ${repo.owner}, mode ${
        modeText(mode)
      })`,
      runAs("root", "front-end", `chown ${f.oneadmin} ${q} && chmod u+rwx ${q}`),
    );
  }
  return ok(id, SCOPE, `image repository ${repo.path} is writable by ${f.oneadmin}`);
}

/** oned.conf's onevz sections (pure). */
export function evaluateOnedConf(
  path: string,
  conf: OnedConf,
  oneLocation: string | undefined,
  varConfig: string | null = null,
  o: { text?: string; fixAs?: string; onevz?: string } = {},
): CheckResult[] {
  const r: CheckResult[] = [];
  const command = installCommand(oneLocation, "--oned-conf", o.onevz);
  const merge: FixSpec = o.fixAs ? runAs(o.fixAs, "front-end", command) : command;
  // Sections outside the onevz block are the operator's: install leaves them alone.
  const own = o.text === undefined ? undefined : parseOnedConf(withoutOnedBlock(o.text));
  const section = (
    id: string,
    kind: string,
    name: string,
    want: Record<string, { test: (v: string | undefined) => boolean; value: string }>,
    describe: string,
    missingIsWarning = false,
  ) => {
    const v = namedVector(conf, kind, name);
    if (!v) {
      const make = missingIsWarning ? warn : fail;
      r.push(make(id, SCOPE, `${path} has no ${kind} named "${name}"`, merge));
      return;
    }
    const bad = Object.entries(want).filter(([k, w]) => !w.test(v[k]));
    if (bad.length) {
      const operators = own !== undefined && namedVector(own, kind, name) !== undefined;
      r.push(fail(
        id,
        SCOPE,
        `${kind} "${name}" in ${path}: wrong ${
          bad.map(([k]) => `${k}=${v[k] === undefined ? "(unset)" : JSON.stringify(v[k])}`)
            .join(", ")
        } (want ${describe})`,
        operators
          ? todo(
            `edit the ${kind} named "${name}" in ${path} (install leaves sections it did not ` +
              `write alone): ${bad.map(([k, w]) => `${k} = ${w.value}`).join(", ")}`,
          )
          : merge,
      ));
    } else {
      r.push(ok(id, SCOPE, `${kind} "${name}" (${describe})`));
    }
  };
  const is = (want: string) => ({
    test: (v: string | undefined) => v === want,
    value: `"${want}"`,
  });
  const hasOvz = (arg: string) => ({
    test: (v: string | undefined) => v !== undefined && new RegExp(`\\b${arg}\\b`).test(v),
    value: `"${arg}"`,
  });
  section(
    "frontend.oned.im_mad",
    "IM_MAD",
    "im_ovz",
    { executable: is("one_im_ssh"), arguments: hasOvz("ovz") },
    "one_im_ssh, arguments ovz",
  );
  section(
    "frontend.oned.vm_mad",
    "VM_MAD",
    "vmm_ovz",
    {
      executable: is("one_vmm_ssh"),
      arguments: hasOvz("ovz"),
      type: is("xml"),
      default: is(DEFAULT_VMM_DEFAULTS),
    },
    `one_vmm_ssh, type xml, default ${DEFAULT_VMM_DEFAULTS}`,
  );
  section(
    "frontend.oned.tm_mad",
    "TM_MAD",
    "tm_ovz",
    { executable: is("one_tm"), arguments: is("tm_ovz/tm_ovz.conf") },
    "one_tm, tm_ovz/tm_ovz.conf",
  );
  const srd = nodeDirs(null, varConfig, oneLocation).remoteDir;
  const srdConf = attr(conf, "SCRIPTS_REMOTE_DIR") ?? srd;
  const hookCmd = `${srdConf.replace(/\/+$/, "")}/hooks/vzfirewall.sh`;
  section(
    "frontend.oned.vzfirewall_hook",
    "VM_HOOK",
    "vzfirewall",
    {
      on: { test: (v) => v?.toUpperCase() === "RUNNING", value: '"RUNNING"' },
      command: is(hookCmd),
      remote: { test: (v) => v?.toLowerCase() === "yes", value: '"yes"' },
    },
    `on RUNNING, remote yes, command ${hookCmd}`,
    true,
  );
  return r;
}
