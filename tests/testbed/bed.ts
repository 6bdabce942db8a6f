/**
 * The ssh test bed: a front-end and cluster nodes as real OpenSSH servers on 127.0.0.1.
 *
 * Every node is an `sshd` running in its own mount namespace where the node's private
 * directory is bind-mounted on /srv/onevz-node, so that all nodes see the SAME absolute
 * paths with DIFFERENT contents, as real OpenNebula nodes do:
 *   VM_DIR             = /srv/onevz-node/vm/   (oned's trailing slash)
 *   SCRIPTS_REMOTE_DIR = /srv/onevz-node/scripts
 *   OVZ_SIM_ROOT       = /srv/onevz-node/sim   (= ONEVZ_SYSROOT, the simulated OpenVZ node)
 * The front-end `fn` is an sshd without a namespace, so nodes can ssh back to it.
 *
 * All ssh calls use the bed's own config file (`ssh -F bed.sshConfig`); ~/.ssh is never
 * touched. Requires root (the nodes log in as root, mount namespaces need CAP_SYS_ADMIN).
 *
 * `driverUser`: a non-root driver account of the bed's own (default `onevzt-admin` in group
 * `onevzt-cloud`), as oneadmin is on real hosts, that exists ONLY inside the bed: every sshd,
 * the front-end's too, then runs in a mount namespace where private copies of /etc/passwd,
 * /etc/group, /etc/shadow and /etc/gshadow hold the account, a private /etc/sudoers.d holds
 * only the rules `onevz install --sudoers --group <group>` prints (checked with visudo) plus
 * a test-only env_keep of the simulator's root variables (it grants nothing), and /usr/sbin
 * is an overlay adding the simulator's vzctl, vzlist, vzmigrate, vzfirewall at the paths
 * those rules name. Nothing outside the bed's directory changes, so beds of concurrent runs
 * cannot collide, and stopping the bed leaves nothing behind. Each host's /etc/sudoers.d is
 * its own directory (`bed.driver.sudoersDirs[host]`), so a test that breaks one node's sudo
 * rules changes that node only. `localUsers` adds unprivileged accounts of the test's own
 * (no sudo rules, no ssh key) to the same private account files, and `bed.asFrontEnd(argv)`
 * runs a program on this machine (the front-end) in a namespace that has the accounts and
 * the front-end's sudo rules, as root or as one of the bed's accounts.
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Output, run } from "../../fixtures/oned/run.ts";
import { descendants } from "../helpers/procs.ts";

export { type Output, run };

export type Flavour = "ubc" | "vswap";

export interface NodeSpec {
  name: string;
  flavour?: Flavour;
  /** Templates for `ovzsim init` (default centos-6-x86_64 and debian-7.0-x86_64). */
  templates?: string[];
}

export interface BedOptions {
  nodes: NodeSpec[];
  /** Also start the front-end sshd `fn` (default true). */
  frontEnd?: boolean;
  /** Run `ovzsim init` on each node (default true; skipped when the simulator is missing). */
  initSimulator?: boolean;
  /** Directory of the simulator's executables (default fixtures/sim/bin), first on PATH. */
  simBin?: string;
  /**
   * Put /srv/onevz-node/bin (each node's own `<fsDir>/bin`) first on the nodes' PATH, so a
   * test can give one node fake programs (a broken sudo, an old getconf) (default false).
   */
  nodeBin?: boolean;
  /**
   * Programs to make unavailable on the nodes (e.g. /usr/bin/node): inside each node's mount
   * namespace /dev/null is bind-mounted over them, so they exist but cannot run.
   */
  hidePrograms?: string[];
  /** A driver account of the bed's own (see the header): true, or its names and rules. */
  driverUser?: boolean | DriverUserOptions;
  /**
   * Further unprivileged local accounts of the bed's own (with driverUser only), each in a
   * group of its own name, with no sudo rules and no ssh key: e.g. a hostile local user.
   */
  localUsers?: string[];
  /** More environment for every ssh session on the nodes (e.g. OVZ_SIM_TIMES for the bench). */
  nodeEnv?: Record<string, string>;
}

/** An account of the bed (exists only inside its namespaces). */
export interface BedAccount {
  user: string;
  group: string;
  uid: number;
  gid: number;
  home: string;
}

export interface DriverUserOptions {
  /** Login name (default onevzt-admin). */
  user?: string;
  /** Its group, the one the sudo rules name (default onevzt-cloud). */
  group?: string;
  /** sudoers text instead of `onevz install --sudoers --group <group>` (visudo-checked too). */
  sudoers?: string;
}

/** The bed's driver account (bed.driver), as the tests use it. */
export interface BedDriver {
  user: string;
  group: string;
  uid: number;
  gid: number;
  /** Its home directory (in the bed's directory; the same path inside every namespace). */
  home: string;
  /** The sudo rules it holds (what `install --sudoers --group <group>` printed). */
  rules: string;
  /** Its own private key (0600, owned by it), accepted by every bed host. */
  identity: string;
  /**
   * ssh client config that logs in to every bed host as the driver with its own key: for
   * the test (root, standing in for the front-end's oneadmin) and for the driver itself.
   */
  sshConfig: string;
  /**
   * Each host's private /etc/sudoers.d as this machine sees it (files written there are what
   * sudo reads on that host only), by host name; "fn" is also the one asFrontEnd uses.
   */
  sudoersDirs: Record<string, string>;
}

export interface BedNode {
  name: string;
  flavour: Flavour;
  port: number;
  /** Node directory on the test machine (sshd_config, host key, logs). */
  dir: string;
  /** What the node sees as /srv/onevz-node (the bind-mount source), on the test machine. */
  fsDir: string;
  /** True for the front-end (no mount namespace). */
  frontEnd: boolean;
  /** sshd's pid (unshare execs sh, which execs sshd: the same process). */
  pid: number;
  log: string;
}

export interface Bed {
  /** Per-run temporary directory holding everything. */
  dir: string;
  /** Repository root (computed from this file's location). */
  repoRoot: string;
  /** The bed's ssh client config: use as `ssh -F <sshConfig> <node>`. */
  sshConfig: string;
  /** The bed's private key. */
  identity: string;
  nodes: Record<string, BedNode>;
  /** Node-side paths (identical on every node). */
  nodeRoot: string;
  vmDir: string;
  remoteDir: string;
  simRoot: string;
  /** Front-end remotes tree (what one_vmm_ssh copies on exit 42; ONE_LOCATION/var/remotes). */
  frontRemotes: string;
  /** True when fixtures/sim/bin/ovzsim exists and each node was initialised with it. */
  simulator: boolean;
  /** Why the simulator was not initialised, when it was not. */
  simulatorSkipped?: string;
  /** Environment a test (the "front-end" process) needs: ONEVZ_SSH_CONFIG, PATH, … */
  env: Record<string, string>;
  /** Environment every ssh session on a node gets (via sshd_config SetEnv). */
  nodeEnv: Record<string, string>;
  /** The driver account, when startBed had `driverUser`. */
  driver?: BedDriver;
  /** The accounts of `localUsers`, by name (empty without them). */
  localUsers: Record<string, BedAccount>;
  /**
   * An argv that runs `argv` on this machine, the front-end, inside a mount namespace with the
   * bed's accounts, the front-end's sudo rules and /usr/sbin (driverUser only): as root, or as
   * `user` (runuser, which sets HOME, USER and LOGNAME) when given.
   */
  asFrontEnd(argv: string[], o?: { user?: string }): string[];
  /** Run a command over ssh: argv is joined with spaces and given to the remote shell. */
  ssh(node: string, command: string, opts?: { stdin?: string | Uint8Array }): Promise<Output>;
  stop(): Promise<void>;
}

export const NODE_ROOT = "/srv/onevz-node";
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const SIM_BIN = join(REPO_ROOT, "fixtures/sim/bin");
export const DENO = join(REPO_ROOT, "node_modules/.bin/deno");

// None of them named like the fixtures' images (centos-5-x86), which they would shadow.
const DEFAULT_TEMPLATES = ["centos-6-x86_64", "debian-7.0-x86_64"];
const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Beds not yet stopped, cleaned up synchronously on unload so failing tests leak nothing. */
const live = new Set<Bed & { stopSync(): void }>();
let unloadRegistered = false;

async function mustRun(cmd: string, args: string[], what: string): Promise<Output> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${what}: ${cmd} exited ${r.code}: ${r.stderr.trim()}`);
  return r;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function waitForPort(port: number, pid: number, log: string, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      // Wait for the SSH banner so we know sshd (not just the kernel) is answering.
      const buf = new Uint8Array(64);
      const n = await c.read(buf);
      c.close();
      if (n && new TextDecoder().decode(buf.subarray(0, n)).startsWith("SSH-")) return;
    } catch { /* not yet */ }
    if (!isAlive(pid)) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  let text = "";
  try {
    text = Deno.readTextFileSync(log);
  } catch { /* no log */ }
  throw new Error(`sshd on port ${port} did not start: ${text.trim() || "(no log)"}`);
}

function isAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

function killTree(pid: number): void {
  for (const p of [pid, ...descendants(pid)]) {
    try {
      Deno.kill(p, "SIGTERM");
    } catch { /* already gone */ }
  }
}

function sshdConfig(o: {
  port: number;
  dir: string;
  authorizedKeys: string;
  env: Record<string, string>;
}): string {
  const setenv = Object.entries(o.env).map(([k, v]) => `${k}=${v}`).join(" ");
  return [
    `# onevz test bed sshd (tests/testbed/bed.ts)`,
    `Port ${o.port}`,
    `ListenAddress 127.0.0.1`,
    `HostKey ${o.dir}/host_ed25519`,
    `PidFile ${o.dir}/sshd.pid`,
    `AuthorizedKeysFile ${o.authorizedKeys}`,
    `PermitRootLogin yes`,
    `PubkeyAuthentication yes`,
    `PasswordAuthentication no`,
    `KbdInteractiveAuthentication no`,
    `UsePAM no`,
    `StrictModes no`,
    `UseDNS no`,
    `PrintMotd no`,
    `PrintLastLog no`,
    `MaxStartups 200`,
    `MaxSessions 200`,
    `LogLevel ERROR`,
    `Subsystem sftp internal-sftp`,
    // SetEnv is applied after sshd's own PATH, so it overrides it (checked by testbed.test.ts).
    `SetEnv ${setenv}`,
    "",
  ].join("\n");
}

function clientConfig(
  identity: string,
  nodes: { name: string; port: number }[],
  user = "root",
): string {
  return nodes.map((n) =>
    [
      `Host ${n.name}`,
      `  HostName 127.0.0.1`,
      `  Port ${n.port}`,
      `  User ${user}`,
      `  IdentityFile ${identity}`,
      `  IdentitiesOnly yes`,
      `  UserKnownHostsFile /dev/null`,
      `  StrictHostKeyChecking no`,
      `  LogLevel ERROR`,
      `  BatchMode yes`,
      `  ConnectTimeout 30`,
      "",
    ].join("\n")
  ).join("\n");
}

/** Single-quoted for sh. */
const shq = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

const VZ_TOOLS = ["vzctl", "vzlist", "vzmigrate", "vzfirewall"];
const ACCOUNT_FILES = ["passwd", "group", "shadow", "gshadow"];
const NAME_RE = /^[a-z_][a-z0-9_-]{0,30}$/;

/** A numeric id no account or group of this machine has (far from distribution ranges). */
function freeId(used: Set<number>): number {
  const span = 4000;
  const start = Math.floor(Math.random() * span);
  for (let i = 0; i < span; i++) {
    const id = 61000 + (start + i) % span;
    if (!used.has(id)) return id;
  }
  throw new Error("no free uid/gid in 61000-64999");
}

/** Ids (third field) of every entry of an NSS database, by getent (files, LDAP, …). */
async function usedIds(db: "passwd" | "group"): Promise<Set<number>> {
  const r = await mustRun("getent", [db], `getent ${db}`);
  return new Set(r.stdout.split("\n").map((l) => Number(l.split(":")[2])).filter(Number.isInteger));
}

/**
 * The driver account of a bed: private account files, sudoers.d and /usr/sbin overlay under
 * `<dir>/identity`, its home and key under `<dir>/home/<user>`. Returns the account and the
 * shell commands that mount them inside an sshd's namespace (each ends with `&& `).
 */
async function prepareDriver(
  dir: string,
  o: DriverUserOptions,
  simBin: string,
  hosts: string[],
  localUsers: string[],
): Promise<{
  driver: Omit<BedDriver, "sshConfig">;
  accounts: Record<string, BedAccount>;
  mounts: (host: string) => string;
}> {
  const user = o.user ?? "onevzt-admin";
  const group = o.group ?? "onevzt-cloud";
  for (const n of [user, group, ...localUsers]) {
    if (!NAME_RE.test(n)) throw new Error(`bad driver account name ${JSON.stringify(n)}`);
  }
  if (
    new Set(localUsers).size !== localUsers.length ||
    localUsers.some((u) => u === user || u === group)
  ) {
    throw new Error(`the bed's account names clash: ${[user, group, ...localUsers].join(", ")}`);
  }
  try {
    Deno.statSync("/etc/sudoers.d");
  } catch {
    throw new Error(
      "driverUser needs sudo and /etc/sudoers.d (run tests/run.sh, which installs it)",
    );
  }
  const usedUids = await usedIds("passwd");
  const usedGids = await usedIds("group");
  const newId = (used: Set<number>) => {
    const n = freeId(used);
    used.add(n);
    return n;
  };
  const uid = newId(usedUids);
  const gid = newId(usedGids);
  const id = join(dir, "identity");
  const home = join(dir, "home", user);
  await Deno.mkdir(id, { mode: 0o700 });
  await Deno.chmod(id, 0o700);
  await Deno.mkdir(home, { recursive: true, mode: 0o700 });
  await Deno.chmod(join(dir, "home"), 0o755);
  const accounts: Record<string, BedAccount> = {};
  for (const u of localUsers) {
    const a = { user: u, group: u, uid: newId(usedUids), gid: newId(usedGids), home: "" };
    a.home = join(dir, "home", u);
    await Deno.mkdir(a.home, { mode: 0o700 });
    await Deno.chown(a.home, a.uid, a.gid);
    accounts[u] = a;
  }

  // The accounts, added to copies of this machine's files (root, sshd's privsep user, …).
  const others = Object.values(accounts);
  const entries: Record<string, string[]> = {
    passwd: [
      `${user}:x:${uid}:${gid}:onevz test driver:${home}:/bin/bash`,
      ...others.map((a) => `${a.user}:x:${a.uid}:${a.gid}:onevz test account:${a.home}:/bin/sh`),
    ],
    group: [`${group}:x:${gid}:${user}`, ...others.map((a) => `${a.group}:x:${a.gid}:`)],
    // "*": no password, yet not locked ("!"), so sshd without PAM lets the key in.
    shadow: [user, ...others.map((a) => a.user)].map((u) => `${u}:*:19000:0:99999:7:::`),
    gshadow: [`${group}:!::${user}`, ...others.map((a) => `${a.group}:!::`)],
  };
  const names = new Set([user, group, ...localUsers]);
  const mounts: string[] = [];
  for (const f of ACCOUNT_FILES) {
    const real = `/etc/${f}`;
    let text: string, st: Deno.FileInfo;
    try {
      st = await Deno.stat(real);
      text = await Deno.readTextFile(real);
    } catch {
      continue; // no gshadow on this system
    }
    const lines = text.split("\n").filter((l) => l && !names.has(l.split(":")[0]));
    const copy = join(id, f);
    await Deno.writeTextFile(copy, [...lines, ...entries[f], ""].join("\n"), { mode: 0o600 });
    await Deno.chown(copy, 0, st.gid);
    await Deno.chmod(copy, st.mode! & 0o777);
    mounts.push(`mount --bind ${shq(copy)} ${real}`);
  }
  await Deno.chown(home, uid, gid);
  const identity = join(home, "id_ed25519");
  await mustRun(
    "ssh-keygen",
    ["-q", "-t", "ed25519", "-N", "", "-C", user, "-f", identity],
    "driver key",
  );
  await Deno.chown(identity, uid, gid);
  await Deno.chown(`${identity}.pub`, uid, gid);

  // Its sudo rules, exactly as printed, and nothing else in the private sudoers.d.
  const rules = o.sudoers ?? (await mustRun(DENO, [
    "run",
    "-A",
    "--quiet",
    join(REPO_ROOT, "main.ts"),
    "install",
    "--sudoers",
    "--group",
    group,
  ], "onevz install --sudoers")).stdout;
  const sudoers: [string, string][] = [
    ["onevz", rules],
    [
      "onevz-simenv",
      `Defaults:%${group} env_keep += "OVZ_SIM_ROOT ONEVZ_SYSROOT OVZ_SIM_SSH_CONFIG"\n`,
    ],
  ];
  // One private sudoers.d per host (and "fn" for asFrontEnd), each with the same files.
  const sudoersDirs: Record<string, string> = {};
  for (const h of new Set([...hosts, "fn"])) {
    const d = join(id, `sudoers.d-${h}`);
    await Deno.mkdir(d, { mode: 0o700 });
    for (const [name, text] of sudoers) {
      await Deno.writeTextFile(join(d, name), text, { mode: 0o440 });
      await Deno.chmod(join(d, name), 0o440);
    }
    sudoersDirs[h] = d;
  }
  // visudo where the group exists: in a namespace with the private account files.
  const check = await run("unshare", [
    "-m",
    "--propagation",
    "private",
    "sh",
    "-c",
    `${mounts.join(" && ")} && mount --bind ${shq(sudoersDirs.fn)} /etc/sudoers.d && ` +
    `for f in /etc/sudoers.d/*; do visudo -c -q -f "$f" || exit 1; done`,
  ]);
  if (check.code !== 0) {
    throw new Error(`visudo refused the driver's sudoers: ${check.stdout}${check.stderr}`);
  }

  // The simulator's tools at /usr/sbin, the paths the rules name, through an overlay.
  const sbin = join(id, "sbin");
  await Deno.mkdir(sbin);
  for (const t of VZ_TOOLS) {
    try {
      Deno.statSync(join(simBin, t));
      await Deno.symlink(join(simBin, t), join(sbin, t));
    } catch { /* this bed's simulator has no such tool */ }
  }
  mounts.push(`mount -t overlay onevz-bed-sbin -o lowerdir=${shq(sbin)}:/usr/sbin /usr/sbin`);
  return {
    driver: { user, group, uid, gid, home, rules, identity, sudoersDirs },
    accounts,
    mounts: (host) =>
      [...mounts, `mount --bind ${shq(sudoersDirs[host])} /etc/sudoers.d`]
        .map((m) => `${m} && `).join(""),
  };
}

/** Start the bed. Throws when sshd cannot run (not root, no openssh-server). */
export async function startBed(opts: BedOptions): Promise<Bed> {
  if (Deno.uid() !== 0) throw new Error("the ssh test bed needs root");
  for (const f of ["/usr/sbin/sshd", "/usr/bin/ssh", "/usr/bin/ssh-keygen", "/usr/bin/unshare"]) {
    try {
      Deno.statSync(f);
    } catch {
      throw new Error(`the ssh test bed needs ${f} (run tests/run.sh, which installs it)`);
    }
  }
  const names = new Set<string>();
  for (const n of opts.nodes) {
    if (!/^[a-z][a-z0-9-]*$/.test(n.name) || n.name === "fn" || names.has(n.name)) {
      throw new Error(`bad or duplicate node name ${JSON.stringify(n.name)}`);
    }
    names.add(n.name);
  }
  // Privilege separation directory (normally made by the init script) and the mount point.
  Deno.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  Deno.mkdirSync(NODE_ROOT, { recursive: true });

  const dir = await Deno.makeTempDir({ prefix: "onevz-bed-" });
  const identity = join(dir, "id_ed25519");
  const authorizedKeys = join(dir, "authorized_keys");
  const sshConfig = join(dir, "ssh_config");
  const specs = [
    ...(opts.frontEnd ?? true ? [{ name: "fn", flavour: "ubc" as Flavour, frontEnd: true }] : []),
    ...opts.nodes.map((n) => ({ name: n.name, flavour: n.flavour ?? "ubc", frontEnd: false })),
  ];
  const simBin = opts.simBin ?? SIM_BIN;
  let driver: BedDriver | undefined;
  let localUsers: Record<string, BedAccount> = {};
  /** Shell commands giving a host's namespace the bed's accounts (empty without them). */
  let identityMounts = (_host: string) => "";
  if (opts.localUsers?.length && !opts.driverUser) {
    throw new Error("startBed: localUsers needs driverUser (the accounts' namespaces)");
  }
  const nodes: Record<string, BedNode> = {};
  const pids: number[] = [];
  const nodeEnv: Record<string, string> = {
    OVZ_SIM_ROOT: `${NODE_ROOT}/sim`,
    ONEVZ_SYSROOT: `${NODE_ROOT}/sim`,
    OVZ_SIM_SSH_CONFIG: sshConfig,
    ONEVZ_SSH_CONFIG: sshConfig,
    PATH: `${opts.nodeBin ? `${NODE_ROOT}/bin:` : ""}${simBin}:${SYSTEM_PATH}`,
    LANG: "C",
    ...opts.nodeEnv,
  };
  const feEnv: Record<string, string> = {
    OVZ_SIM_SSH_CONFIG: sshConfig,
    ONEVZ_SSH_CONFIG: sshConfig,
    PATH: `${simBin}:${SYSTEM_PATH}`,
    LANG: "C",
  };

  const stopSync = () => {
    for (const pid of pids) killTree(pid);
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch { /* already gone */ }
  };

  try {
    const ports = specs.map(() => freePort());
    await Promise.all([
      mustRun(
        "ssh-keygen",
        ["-q", "-t", "ed25519", "-N", "", "-C", "onevz-bed", "-f", identity],
        "client key",
      ),
      ...specs.map(async (s) => {
        const nd = join(dir, s.name);
        await Deno.mkdir(join(nd, "fs"), { recursive: true });
        await mustRun("ssh-keygen", [
          "-q",
          "-t",
          "ed25519",
          "-N",
          "",
          "-f",
          join(nd, "host_ed25519"),
        ], "host key");
      }),
    ]);
    await Deno.copyFile(`${identity}.pub`, authorizedKeys);
    const hosts = specs.map((s, i) => ({ name: s.name, port: ports[i] }));
    let rootConfig = clientConfig(identity, hosts);
    if (opts.driverUser) {
      const o = opts.driverUser === true ? {} : opts.driverUser;
      const prepared = await prepareDriver(
        dir,
        o,
        simBin,
        specs.map((s) => s.name),
        opts.localUsers ?? [],
      );
      identityMounts = prepared.mounts;
      localUsers = prepared.accounts;
      const d = prepared.driver;
      const driverConfig = join(dir, "ssh_config_driver");
      await Deno.writeTextFile(driverConfig, clientConfig(d.identity, hosts, d.user));
      driver = { ...d, sshConfig: driverConfig };
      await Deno.writeTextFile(authorizedKeys, await Deno.readTextFile(`${d.identity}.pub`), {
        append: true,
      });
      // ssh run BY the driver (node to node, front-end to node) logs in as the driver with its
      // own key; root's ssh (vzmigrate through sudo) matches no block and stays root. ssh takes
      // the first value it obtains, so the block comes first.
      rootConfig = `Match localuser ${d.user}\n  User ${d.user}\n  IdentityFile ${d.identity}\n\n` +
        rootConfig;
      // sshd reads AuthorizedKeysFile as the user logging in; the driver reads the config.
      await Deno.chmod(dir, 0o711);
      await Deno.chmod(authorizedKeys, 0o644);
      await Deno.chmod(driverConfig, 0o644);
    }
    await Deno.writeTextFile(sshConfig, rootConfig, { mode: 0o644 });

    specs.forEach((s, i) => {
      const nd = join(dir, s.name);
      const fsDir = join(nd, "fs");
      if (!s.frontEnd) {
        for (const sub of ["vm", "scripts", "sim"]) {
          Deno.mkdirSync(join(fsDir, sub), { recursive: true });
        }
      }
      const cfg = join(nd, "sshd_config");
      Deno.writeTextFileSync(
        cfg,
        sshdConfig({ port: ports[i], dir: nd, authorizedKeys, env: s.frontEnd ? feEnv : nodeEnv }),
      );
      const log = join(nd, "sshd.log");
      const sshd = `exec /usr/sbin/sshd -D -e -f ${cfg} 2>>${log}`;
      type Argv = [string, string[]];
      const unshare = (script: string): Argv => [
        "unshare",
        ["-m", "--propagation", "private", "sh", "-c", script],
      ];
      // The front-end sees the machine's real paths; it has a namespace only for the account.
      const [cmd, args]: Argv = s.frontEnd
        ? (driver ? unshare(`${identityMounts(s.name)}${sshd}`) : ["sh", ["-c", sshd]])
        : unshare(
          `mount --bind ${fsDir} ${NODE_ROOT} && ${identityMounts(s.name)}${
            (opts.hidePrograms ?? []).map((p) => `mount --bind /dev/null ${p} && `).join("")
          }${sshd}`,
        );
      const child = new Deno.Command(cmd, { args, stdin: "null", stdout: "null", stderr: "null" })
        .spawn();
      child.unref();
      // Reap it in the background so it never lingers as a zombie.
      child.status.catch(() => {});
      pids.push(child.pid);
      nodes[s.name] = {
        name: s.name,
        flavour: s.flavour,
        port: ports[i],
        dir: nd,
        fsDir,
        frontEnd: s.frontEnd,
        pid: child.pid,
        log,
      };
    });
    await Promise.all(Object.values(nodes).map((n) => waitForPort(n.port, n.pid, n.log)));
  } catch (e) {
    stopSync();
    throw e;
  }

  const frontRemotes = join(dir, "fn", "remotes");
  Deno.mkdirSync(frontRemotes, { recursive: true });

  const ssh = (node: string, command: string, o: { stdin?: string | Uint8Array } = {}) =>
    run("ssh", ["-F", sshConfig, ...(o.stdin === undefined ? ["-n"] : []), node, command], {
      stdin: o.stdin,
    });

  let stopped = false;
  const bed: Bed & { stopSync(): void } = {
    dir,
    repoRoot: REPO_ROOT,
    sshConfig,
    identity,
    nodes,
    nodeRoot: NODE_ROOT,
    vmDir: `${NODE_ROOT}/vm/`,
    remoteDir: `${NODE_ROOT}/scripts`,
    simRoot: `${NODE_ROOT}/sim`,
    frontRemotes,
    simulator: false,
    env: {
      ONEVZ_SSH_CONFIG: sshConfig,
      OVZ_SIM_SSH_CONFIG: sshConfig,
      ONEVZ_NODE_SYSROOT: `${NODE_ROOT}/sim`,
      PATH: `${simBin}:${Deno.env.get("PATH") ?? SYSTEM_PATH}`,
    },
    nodeEnv,
    driver,
    localUsers,
    asFrontEnd(argv, o = {}) {
      if (!driver) throw new Error("asFrontEnd needs a bed with driverUser");
      return [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        `${identityMounts("fn")}exec "$@"`,
        "sh",
        ...(o.user ? ["runuser", "-u", o.user, "--"] : []),
        ...argv,
      ];
    },
    ssh,
    stopSync() {
      if (stopped) return;
      stopped = true;
      live.delete(bed);
      stopSync();
    },
    async stop() {
      if (stopped) return;
      bed.stopSync();
      // Give the killed sshds a moment to go so ports and namespaces are released; one that
      // ignores SIGTERM that long (a loaded machine, caught mid start-up) gets SIGKILL.
      const waitGone = async (ms: number) => {
        const until = Date.now() + ms;
        while (pids.some(isAlive) && Date.now() < until) {
          await new Promise((r) => setTimeout(r, 10));
        }
      };
      await waitGone(2000);
      for (const pid of pids.filter(isAlive)) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone meanwhile */ }
      }
      await waitGone(2000);
    },
  };
  live.add(bed);
  if (!unloadRegistered) {
    unloadRegistered = true;
    globalThis.addEventListener("unload", () => {
      for (const b of [...live]) b.stopSync();
    });
  }

  // Initialise each node's simulator over ssh (in parallel).
  const ovzsim = join(simBin, "ovzsim");
  let haveSim = false;
  try {
    haveSim = Deno.statSync(ovzsim).isFile;
  } catch { /* missing */ }
  if (opts.initSimulator === false) {
    bed.simulatorSkipped = "initSimulator: false";
  } else if (!haveSim) {
    bed.simulatorSkipped = `${ovzsim} does not exist yet: nodes have no simulated OpenVZ`;
  } else {
    try {
      await Promise.all(opts.nodes.map(async (n) => {
        const tpl = (n.templates ?? DEFAULT_TEMPLATES).map((t) => `--template ${t}`).join(" ");
        const r = await ssh(
          n.name,
          `ovzsim init ${NODE_ROOT}/sim --flavour ${
            n.flavour ?? "ubc"
          } ${tpl} --hostname ${n.name}`,
        );
        if (r.code !== 0) {
          throw new Error(
            `ovzsim init on ${n.name} exited ${r.code}: ${(r.stderr || r.stdout).trim()}`,
          );
        }
      }));
      bed.simulator = true;
    } catch (e) {
      await bed.stop();
      throw e;
    }
  }
  return bed;
}
