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
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Output, run } from "../../fixtures/oned/run.ts";

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
  /** More environment for every ssh session on the nodes (e.g. OVZ_SIM_TIMES for the bench). */
  nodeEnv?: Record<string, string>;
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

async function waitForPort(port: number, pid: number, log: string, ms = 5000): Promise<void> {
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

/** Pids of all descendants of `pid` (from /proc, by parent id). */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  try {
    for (const e of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(e.name)) continue;
      try {
        const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        const list = children.get(ppid) ?? [];
        list.push(Number(e.name));
        children.set(ppid, list);
      } catch { /* gone */ }
    }
  } catch { /* no /proc */ }
  const out: number[] = [];
  const todo = [pid];
  while (todo.length) {
    for (const c of children.get(todo.pop()!) ?? []) {
      out.push(c);
      todo.push(c);
    }
  }
  return out;
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

function clientConfig(identity: string, nodes: { name: string; port: number }[]): string {
  return nodes.map((n) =>
    [
      `Host ${n.name}`,
      `  HostName 127.0.0.1`,
      `  Port ${n.port}`,
      `  User root`,
      `  IdentityFile ${identity}`,
      `  IdentitiesOnly yes`,
      `  UserKnownHostsFile /dev/null`,
      `  StrictHostKeyChecking no`,
      `  LogLevel ERROR`,
      `  BatchMode yes`,
      `  ConnectTimeout 10`,
      "",
    ].join("\n")
  ).join("\n");
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
    await Deno.writeTextFile(
      sshConfig,
      clientConfig(identity, specs.map((s, i) => ({ name: s.name, port: ports[i] }))),
    );

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
      const [cmd, args] = s.frontEnd ? ["sh", ["-c", sshd]] : ["unshare", [
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        `mount --bind ${fsDir} ${NODE_ROOT} && ${
          (opts.hidePrograms ?? []).map((p) => `mount --bind /dev/null ${p} && `).join("")
        }${sshd}`,
      ]];
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
