/**
 * Front-end checks: the OpenNebula environment, oned.conf's onevz sections, the installed
 * remotes tree and tm_ssh.conf, the defaults file, the image repository and ssh to localhost.
 * `gatherFrontend` collects facts (files and a few local commands); `evaluateFrontend` is pure.
 */
import { join } from "node:path";
import { shellQuote } from "../../cli/errors.ts";
import type { Host } from "../../host/host.ts";
import { parseDriverConfig } from "../../one/config.ts";
import { TM_ACTIONS, VMM_ACTIONS } from "../layout.ts";
import { attr, namedVector, type OnedConf, parseOnedConf } from "./oned.ts";
import { type CheckResult, fail, firstLine, ok, warn } from "./types.ts";

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
  /** This program's version. */
  version: string;
  tmSshConfPath: string;
  tmSshConf: string | null;
  /** The executables tm_ssh.conf names. */
  tmEntries: FileFact[];
  defaultsPath: string;
  defaultsText: string | null;
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
      etc: `${loc}/etc`,
      onedConf: `${loc}/etc/oned.conf`,
      remotes: `${loc}/var/remotes`,
      images: `${loc}/var/images`,
      varConfig: `${loc}/var/config`,
    }
    : {
      etc: "/etc/one",
      onedConf: SYSTEM_ONED_CONF,
      remotes: "/var/lib/one/remotes",
      images: "/var/lib/one/images",
      varConfig: "/var/lib/one/config",
    };
}

/** The command that (re)installs onevz on this front-end. */
export function installCommand(oneLocation: string | undefined, extra = ""): string {
  const where = oneLocation ? `--one-location ${shellQuote(oneLocation)}` : "--system";
  return `onevz install ${where}${extra ? " " + extra : ""}`;
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
  const tmSshConfPath = `${paths.etc}/tm_ssh/tm_ssh.conf`;
  const tmSshConf = await read(tmSshConfPath);
  const tmTargets = tmSshConf === null ? [] : Object.values(parseTmSshConf(tmSshConf));
  const vmMad = onedConf === null
    ? undefined
    : namedVector(parseOnedConf(onedConf), "VM_MAD", "vmm_ovz");
  const defaultsRel = vmMad?.default || DEFAULT_VMM_DEFAULTS;
  const defaultsPath = defaultsRel.startsWith("/") ? defaultsRel : `${paths.etc}/${defaultsRel}`;
  const repoPath = (onedConf !== null && attr(parseOnedConf(onedConf), "IMAGE_REPOSITORY_PATH")) ||
    paths.images;
  const currentUser = (await run(["id", "-un"])).out || env("USER") || "";
  const oneadmin = env("ONEVZ_ONEADMIN") || currentUser || "oneadmin";
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
    version,
    tmSshConfPath,
    tmSshConf,
    tmEntries: await Promise.all(tmTargets.map(stat)),
    defaultsPath,
    defaultsText: await read(defaultsPath),
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
  const install = installCommand(loc);

  // Environment.
  if (loc) r.push(ok("frontend.env.one_location", SCOPE, `ONE_LOCATION=${loc}`));
  else if (f.systemOnedConf) {
    r.push(ok("frontend.env.one_location", SCOPE, "ONE_LOCATION unset: system-wide installation"));
  } else {
    r.push(fail(
      "frontend.env.one_location",
      SCOPE,
      "ONE_LOCATION is not set and there is no /etc/one/oned.conf",
      "export ONE_LOCATION=/srv/cloud/one   # your OpenNebula installation directory",
    ));
  }
  const a = f.oneAuth;
  const authFix = `mkdir -p ~/.one && echo 'oneadmin:<password>' > ${shellQuote(a.path)} && ` +
    `chmod 600 ${shellQuote(a.path)}`;
  if (!a.exists) {
    r.push(fail(
      "frontend.env.one_auth",
      SCOPE,
      `ONE_AUTH file ${a.path} does not exist${f.env.ONE_AUTH ? "" : " (ONE_AUTH unset)"}`,
      authFix + (f.env.ONE_AUTH ? "" : ` && export ONE_AUTH=${shellQuote(a.path)}`),
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
      `export ONE_AUTH=${shellQuote(a.path)}`,
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
      "export ONE_XMLRPC=http://localhost:2633/RPC2",
    ));
  } else if (!/^https?:\/\/[^\s/]+/.test(x)) {
    r.push(fail(
      "frontend.env.one_xmlrpc",
      SCOPE,
      `ONE_XMLRPC=${x} is not an http(s) URL`,
      "export ONE_XMLRPC=http://localhost:2633/RPC2",
    ));
  } else r.push(ok("frontend.env.one_xmlrpc", SCOPE, `ONE_XMLRPC=${x}`));

  // oned.conf.
  if (f.onedConf === null) {
    r.push(fail(
      "frontend.oned.conf",
      SCOPE,
      `${f.onedConfPath} does not exist`,
      installCommand(loc, "--oned-conf"),
    ));
  } else {
    r.push(...evaluateOnedConf(f.onedConfPath, parseOnedConf(f.onedConf), loc, f.varConfig));
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
      `chmod 755 ${notExec.map((m) => shellQuote(m.path)).join(" ")}`,
    ));
  } else {
    r.push(ok("frontend.remotes", SCOPE, `remotes installed and executable in ${f.remotesDir}`));
  }
  if (f.remoteVersion !== null) {
    const got = /\b(\d+\.\d+\.\d+\S*)/.exec(f.remoteVersion.out)?.[1];
    if (f.remoteVersion.rc !== 0 || got !== f.version) {
      r.push(fail(
        "frontend.remotes.version",
        SCOPE,
        f.remoteVersion.rc !== 0
          ? `${f.remotesDir}/bin/onevz --version failed: ${firstLine(f.remoteVersion.out)}`
          : `${f.remotesDir}/bin/onevz is version ${got ?? "unknown"}, this onevz is ${f.version}`,
        install,
      ));
    } else {
      r.push(ok("frontend.remotes.version", SCOPE, `remotes bin/onevz is version ${got}`));
    }
  }

  // tm_ssh.conf.
  if (f.tmSshConf === null) {
    r.push(fail("frontend.tm_ssh", SCOPE, `${f.tmSshConfPath} does not exist`, install));
  } else {
    const entries = parseTmSshConf(f.tmSshConf);
    const wrong = TM_ACTIONS.filter(([k, action]) =>
      !entries[k] || entries[k].split("/").pop() !== action
    ).map(([k]) => k);
    const broken = f.tmEntries.filter((t) => !t.exists || !t.executable).map((t) => t.path);
    if (wrong.length) {
      r.push(fail(
        "frontend.tm_ssh",
        SCOPE,
        `${f.tmSshConfPath}: ${wrong.join(", ")} do not point at onevz tm entries`,
        install,
      ));
    } else if (broken.length) {
      r.push(fail(
        "frontend.tm_ssh",
        SCOPE,
        `tm_ssh.conf names missing or non-executable entries: ${broken.join(", ")}`,
        install,
      ));
    } else {
      r.push(ok("frontend.tm_ssh", SCOPE, `${f.tmSshConfPath} points at the onevz tm entries`));
    }
  }

  // Defaults file.
  if (f.defaultsText === null) {
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
        `\${EDITOR:-vi} ${shellQuote(f.defaultsPath)}`,
      ));
    }
  }

  // Image repository.
  r.push(evaluateImageRepo(f));

  // ssh to localhost.
  if (f.sshLocalhost.rc === 0) {
    r.push(ok("frontend.ssh_localhost", SCOPE, "passwordless ssh to localhost works"));
  } else {
    r.push(fail(
      "frontend.ssh_localhost",
      SCOPE,
      `ssh -o BatchMode=yes localhost failed: ${
        firstLine(f.sshLocalhost.out) || "exit " + f.sshLocalhost.rc
      }`,
      `ssh-copy-id ${f.currentUser || f.oneadmin}@localhost`,
    ));
  }
  return r;
}

function evaluateImageRepo(f: FrontendFacts): CheckResult {
  const repo = f.imageRepo;
  const id = "frontend.image_repository";
  const fix = `mkdir -p ${shellQuote(repo.path)} && chown ${f.oneadmin} ${shellQuote(repo.path)}`;
  if (!repo.exists) {
    return fail(id, SCOPE, `image repository ${repo.path} does not exist`, fix);
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
      `chown ${f.oneadmin} ${shellQuote(repo.path)} && chmod u+rwx ${shellQuote(repo.path)}`,
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
): CheckResult[] {
  const r: CheckResult[] = [];
  const fix = installCommand(oneLocation, "--oned-conf");
  const section = (
    id: string,
    kind: string,
    name: string,
    want: Record<string, (v: string | undefined) => boolean>,
    describe: string,
    missingIsWarning = false,
  ) => {
    const v = namedVector(conf, kind, name);
    if (!v) {
      const make = missingIsWarning ? warn : fail;
      r.push(make(id, SCOPE, `${path} has no ${kind} named "${name}"`, fix));
      return;
    }
    const bad = Object.entries(want).filter(([k, test]) => !test(v[k])).map(([k]) =>
      `${k}=${v[k] === undefined ? "(unset)" : JSON.stringify(v[k])}`
    );
    if (bad.length) {
      r.push(
        fail(
          id,
          SCOPE,
          `${kind} "${name}" in ${path}: wrong ${bad.join(", ")} (want ${describe})`,
          fix,
        ),
      );
    } else {
      r.push(ok(id, SCOPE, `${kind} "${name}" (${describe})`));
    }
  };
  section(
    "frontend.oned.im_mad",
    "IM_MAD",
    "im_ovz",
    {
      executable: (v) => v === "one_im_ssh",
      arguments: (v) => v !== undefined && /\bovz\b/.test(v),
    },
    "one_im_ssh, arguments ovz",
  );
  section(
    "frontend.oned.vm_mad",
    "VM_MAD",
    "vmm_ovz",
    {
      executable: (v) => v === "one_vmm_ssh",
      arguments: (v) => v !== undefined && /\bovz\b/.test(v),
      type: (v) => v === "xml",
      default: (v) => v === DEFAULT_VMM_DEFAULTS,
    },
    `one_vmm_ssh, type xml, default ${DEFAULT_VMM_DEFAULTS}`,
  );
  section(
    "frontend.oned.tm_mad",
    "TM_MAD",
    "tm_ssh",
    {
      executable: (v) => v === "one_tm",
      arguments: (v) => v === "tm_ssh/tm_ssh.conf",
    },
    "one_tm, tm_ssh/tm_ssh.conf",
  );
  const srd = nodeDirs(null, varConfig, oneLocation).remoteDir;
  const srdConf = attr(conf, "SCRIPTS_REMOTE_DIR") ?? srd;
  const hookCmd = `${srdConf.replace(/\/+$/, "")}/hooks/vzfirewall.sh`;
  section(
    "frontend.oned.vzfirewall_hook",
    "VM_HOOK",
    "vzfirewall",
    {
      on: (v) => v?.toUpperCase() === "RUNNING",
      command: (v) => v === hookCmd,
      remote: (v) => v?.toLowerCase() === "yes",
    },
    `on RUNNING, remote yes, command ${hookCmd}`,
    true,
  );
  return r;
}
