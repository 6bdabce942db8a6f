/**
 * Node checks, run from the front-end over ssh (SshHost: ONEVZ_SSH, ONEVZ_SSH_CONFIG,
 * BatchMode). One shell script gathers every fact in one round trip (`nodeProbes`); the
 * front-end adds name resolution; `evaluateNode` turns the facts into results (pure).
 */
import { shellQuote } from "../../cli/errors.ts";
import type { Host } from "../../host/host.ts";
import { sudoersLines } from "../layout.ts";
import {
  type CheckResult,
  fail,
  firstLine,
  ok,
  parseProbeOutput,
  type ProbeOutput,
  type Probes,
  probeScript,
  warn,
} from "./types.ts";

/** The oldest glibc the onevz executable (deno compile) runs on. */
export const MIN_GLIBC: [number, number] = [2, 27];
/** The oldest kernel that glibc 2.27 (and so the executable) supports. */
export const MIN_KERNEL: [number, number] = [3, 2];
export const OVZ_TOOLS = ["vzctl", "vzlist", "vzmigrate", "vzfirewall"] as const;

export interface NodeFacts {
  name: string;
  frontend: string;
  vmDir: string;
  remoteDir: string;
  /** The other nodes (root ssh for live migration). */
  peers: string[];
  /** The ssh call that ran the probe script. */
  login: ProbeOutput;
  /** Probe outputs (empty when the login failed). */
  probes: Probes;
  /** `getent hosts` on the front-end for the node's name (or its ssh config HostName). */
  resolve: { target: string; rc: number; out: string };
  /** The user the front-end logs in as (for fixes), when known. */
  sshUser?: string;
}

/** The fixed probe snippets for a node. Values are shellQuoted. */
export function nodeProbes(o: {
  sysPath: (p: string) => string;
  frontend: string;
  vmDir: string;
  remoteDir: string;
  peers: string[];
}): Record<string, string> {
  const q = shellQuote;
  const dirState = (d: string) =>
    `d=${q(d)}; if [ -d "$d" ]; then if [ -w "$d" ]; then echo exists-writable; ` +
    `else echo exists-readonly; fi; else p="$d"; while [ ! -d "$p" ]; do p=$(dirname "$p"); done; ` +
    `if [ -w "$p" ]; then echo creatable; else echo "not-creatable $p"; fi; fi`;
  const sshOpts = `-o BatchMode=yes -o ConnectTimeout=10`;
  const probes: Record<string, string> = {
    user: "id -un; id -u",
    hostname: "hostname",
    sudo: "sudo -n true",
    sudo_list: "sudo -n -l",
    sudo_path: `sudo -n sh -c 'echo "PATH=$PATH"; command -v iptables-restore || true'`,
    tools: `for t in ${OVZ_TOOLS.join(" ")}; do printf '%s=%s\\n' "$t" "$(command -v "$t")"; done`,
    vzctl_version: "vzctl --version",
    proc_vz: `test -d ${q(o.sysPath("/proc/vz"))}`,
    vswap: `test -e ${q(o.sysPath("/proc/vz/vswap"))}`,
    ubc: `test -e ${q(o.sysPath("/proc/user_beancounters"))}`,
    template: `T=$(sed -n 's/^[[:space:]]*TEMPLATE=//p' ${
      q(o.sysPath("/etc/vz/vz.conf"))
    } | tail -n 1 | tr -d "\\"'"); T=\${T:-/vz/template}; echo "TEMPLATE=$T"; test -d "$T/cache"`,
    dists: `test -d ${q(o.sysPath("/etc/vz/dists"))}`,
    glibc: "getconf GNU_LIBC_VERSION 2>/dev/null || ldd --version 2>&1 | head -n 1",
    kernel: "uname -r",
    vm_dir: dirState(o.vmDir),
    remote_dir: dirState(o.remoteDir),
    ssh_back: `"\${ONEVZ_SSH:-ssh}" ${sshOpts} \${ONEVZ_SSH_CONFIG:+-F "$ONEVZ_SSH_CONFIG"} -n ${
      q(o.frontend)
    } true`,
  };
  for (const peer of o.peers) {
    probes[`peer:${peer}`] = `cfg=\${OVZ_SIM_SSH_CONFIG:-$ONEVZ_SSH_CONFIG}; ` +
      `sudo -n ssh ${sshOpts} \${cfg:+-F "$cfg"} -n ${q("root@" + peer)} true`;
  }
  return probes;
}

/** Run the probes on a node and resolve its name on the front-end. */
export async function gatherNode(
  host: Host,
  front: Host,
  o: { frontend: string; vmDir: string; remoteDir: string; peers: string[]; sshConfig?: string },
): Promise<NodeFacts> {
  const script = probeScript(nodeProbes({ sysPath: (p) => host.sysPath(p), ...o }));
  let login: ProbeOutput;
  let probes: Probes = {};
  try {
    const r = await host.run(["sh", "-c", script], { check: false, timeoutMs: 120000 });
    probes = parseProbeOutput(r.stdout);
    login = {
      rc: Object.keys(probes).length ? 0 : (r.status || 255),
      out: r.stderr.trim() || r.stdout.trim(),
    };
  } catch (e) {
    login = { rc: 255, out: (e as Error).message };
  }
  // Resolve the name as ssh would: through the ssh config's HostName, if it has one.
  let target = host.name;
  const g = await front.run(
    ["ssh", "-G", ...(o.sshConfig ? ["-F", o.sshConfig] : []), host.name],
    { check: false, timeoutMs: 10000 },
  ).catch(() => null);
  let sshUser: string | undefined;
  if (g && g.status === 0) {
    target = /^hostname (\S+)$/m.exec(g.stdout)?.[1] ?? target;
    sshUser = /^user (\S+)$/m.exec(g.stdout)?.[1];
  }
  const res = await front.run(["getent", "hosts", target], { check: false, timeoutMs: 10000 });
  return {
    name: host.name,
    ...o,
    login,
    probes,
    resolve: { target, rc: res.status, out: res.stdout.trim() },
    sshUser,
  };
}

/** "glibc 2.36" / "ldd (GNU libc) 2.12" → [2, 36] (pure). */
export function parseGlibc(text: string): [number, number] | undefined {
  const m = /(?:glibc|libc)\D*(\d+)\.(\d+)/i.exec(text) ?? /\b(\d+)\.(\d+)\b/.exec(text);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** "2.6.32-042stab145.3" → [2, 6] (pure). */
export function parseKernel(text: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(text.trim());
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

function older(a: [number, number], b: [number, number]): boolean {
  return a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
}

/** Does `sudo -n -l` grant everything? (pure) */
export function grantsAll(sudoList: string): boolean {
  return /\(ALL(?:\s*:\s*ALL)?\)\s*(?:NOPASSWD:\s*)?ALL\s*$/m.test(sudoList);
}

/** All results for one node (pure). */
export function evaluateNode(f: NodeFacts): CheckResult[] {
  const scope = `node ${f.name}`;
  const r: CheckResult[] = [];
  const n = f.name;
  const p = (k: string): ProbeOutput | undefined => f.probes[k];
  const user = p("user")?.out.split("\n")[0] || f.sshUser || "oneadmin";
  const isRoot = p("user")?.out.split("\n")[1]?.trim() === "0";

  // Name resolution (on the front-end), also meaningful when ssh fails.
  if (f.resolve.rc === 0) {
    r.push(ok(
      "node.resolve",
      scope,
      `${n} resolves on the front-end${
        f.resolve.target !== n ? ` (ssh HostName ${f.resolve.target})` : ""
      }: ${firstLine(f.resolve.out)}`,
    ));
  } else {
    r.push(fail(
      "node.resolve",
      scope,
      `${f.resolve.target} does not resolve on the front-end (getent hosts); use the FQDN or a resolv.conf search domain`,
      `echo 'search <your nodes domain>' >> /etc/resolv.conf`,
    ));
  }

  if (f.login.rc !== 0) {
    r.push(fail(
      "node.ssh",
      scope,
      `passwordless ssh (BatchMode) to ${n} failed: ${
        firstLine(f.login.out) || "exit " + f.login.rc
      }; other node checks skipped`,
      `ssh-copy-id ${f.sshUser ?? "oneadmin"}@${n}`,
    ));
    return r;
  }
  r.push(ok("node.ssh", scope, `passwordless ssh (BatchMode) as ${user}`));

  // ssh back to the front-end.
  const back = p("ssh_back");
  if (back && back.rc === 0) {
    r.push(ok("node.ssh_frontend", scope, `${n} can ssh back to the front-end ${f.frontend}`));
  } else {
    r.push(fail(
      "node.ssh_frontend",
      scope,
      `${n} cannot ssh to the front-end ${f.frontend} as ${user}: ${
        firstLine(back?.out ?? "") || "exit " + (back?.rc ?? "?")
      }`,
      `ssh -t ${n} ssh-copy-id ${user}@${f.frontend}`,
    ));
  }

  // sudo.
  const sudo = p("sudo");
  const sudoOk = sudo?.rc === 0;
  const sudoOut = sudo?.out ?? "";
  const sudoersFix = `onevz install --sudoers | ssh root@${n} ` +
    `'cat > /etc/sudoers.d/onevz && chmod 440 /etc/sudoers.d/onevz'`;
  if (sudoOk) {
    r.push(ok("node.sudo", scope, "sudo -n works without a tty"));
  } else if (/must have a tty|requiretty/i.test(sudoOut)) {
    r.push(fail(
      "node.sudo",
      scope,
      `sudo requires a tty (requiretty): ${firstLine(sudoOut)} (fix as root on ${n})`,
      `echo 'Defaults:%cloud !requiretty' > /etc/sudoers.d/onevz`,
    ));
  } else if (
    /password is required|may not run sudo|not in the sudoers|not allowed/i.test(sudoOut)
  ) {
    r.push(fail(
      "node.sudo",
      scope,
      `${user} cannot run sudo without a password: ${firstLine(sudoOut)}`,
      sudoersFix,
      sudoersLines().trimEnd().split("\n"),
    ));
  } else if (sudo?.rc === 127 || /sudo.*(command )?not found/i.test(sudoOut)) {
    r.push(fail("node.sudo", scope, "sudo is not installed", `ssh root@${n} yum install -y sudo`));
  } else {
    r.push(fail(
      "node.sudo",
      scope,
      `sudo -n true failed: ${firstLine(sudoOut) || "exit " + sudo?.rc}`,
      sudoersFix,
    ));
  }
  if (sudoOk) {
    const list = p("sudo_list");
    if (!isRoot && list?.rc !== 0) {
      r.push(ok(
        "node.sudoers_scope",
        scope,
        `sudo rules not listed (sudo -n -l: ${firstLine(list?.out ?? "") || "failed"})`,
      ));
    } else if (!isRoot && grantsAll(list?.out ?? "")) {
      r.push(warn(
        "node.sudoers_scope",
        scope,
        `sudoers grants ${user} ALL commands; onevz needs only the rule below`,
        sudoersFix,
        sudoersLines().trimEnd().split("\n"),
      ));
    } else {
      r.push(ok(
        "node.sudoers_scope",
        scope,
        isRoot ? "logged in as root (sudo rules not needed)" : "sudoers does not grant ALL",
      ));
    }
    const sp = p("sudo_path")?.out ?? "";
    const path = (/^PATH=(.*)$/m.exec(sp)?.[1] ?? "").split(":");
    const ipt = sp.split("\n").find((l) => l.startsWith("/"));
    if (path.includes("/sbin") || ipt) {
      r.push(ok(
        "node.sudo_path",
        scope,
        `sudo's PATH reaches /sbin${ipt ? ` (iptables-restore: ${ipt})` : ""}`,
      ));
    } else {
      r.push(warn(
        "node.sudo_path",
        scope,
        `sudo's secure_path does not reach /sbin (vzfirewall needs iptables-restore): PATH=${
          path.join(":")
        }`,
        `echo 'Defaults:%cloud secure_path="/bin:/sbin:/usr/bin:/usr/sbin"' >> /etc/sudoers.d/onevz`,
      ));
    }
  }

  // OpenVZ tools.
  const tools: Record<string, string> = {};
  for (const line of (p("tools")?.out ?? "").split("\n")) {
    const m = /^(\w+)=(.*)$/.exec(line.trim());
    if (m) tools[m[1]] = m[2];
  }
  const version = /(\d+\.\d+(?:\.\d+)*)/.exec(p("vzctl_version")?.out ?? "")?.[1];
  for (const t of ["vzctl", "vzlist", "vzmigrate"]) {
    if (tools[t]) {
      r.push(ok(
        `node.tool.${t}`,
        scope,
        `${t} present (${tools[t]}${t === "vzctl" && version ? `, version ${version}` : ""})`,
      ));
    } else {
      r.push(
        fail(
          `node.tool.${t}`,
          scope,
          `${t} is not on the PATH`,
          `ssh root@${n} yum install -y vzctl`,
        ),
      );
    }
  }
  if (tools.vzfirewall) {
    r.push(ok("node.tool.vzfirewall", scope, `vzfirewall present (${tools.vzfirewall})`));
  } else {
    r.push(warn(
      "node.tool.vzfirewall",
      scope,
      "vzfirewall is not on the PATH (FIREWALL rules and the vzfirewall hook will not work)",
      `scp vzfirewall root@${n}:/usr/sbin/vzfirewall && ssh root@${n} chmod 755 /usr/sbin/vzfirewall`,
    ));
  }

  // Kernel.
  if (p("proc_vz")?.rc === 0) {
    r.push(ok("node.kernel.openvz", scope, "OpenVZ kernel (/proc/vz exists)"));
    if (p("vswap")?.rc === 0) r.push(ok("node.kernel.flavour", scope, "VSwap kernel"));
    else if (p("ubc")?.rc === 0) r.push(ok("node.kernel.flavour", scope, "UBC kernel (no VSwap)"));
    else {
      r.push(warn(
        "node.kernel.flavour",
        scope,
        "neither /proc/vz/vswap nor /proc/user_beancounters: resource limits unknown",
      ));
    }
  } else {
    r.push(fail(
      "node.kernel.openvz",
      scope,
      "not running an OpenVZ kernel (/proc/vz missing)",
      `ssh root@${n} 'yum install -y vzkernel && reboot'`,
    ));
  }

  // Template cache and dists.
  const tpl = p("template");
  const tplDir = /^TEMPLATE=(.*)$/m.exec(tpl?.out ?? "")?.[1] ?? "/vz/template";
  if (tpl?.rc === 0) r.push(ok("node.template_cache", scope, `${tplDir}/cache exists`));
  else {
    r.push(fail(
      "node.template_cache",
      scope,
      `OS template cache ${tplDir}/cache is missing (TEMPLATE in /etc/vz/vz.conf)`,
      `ssh root@${n} mkdir -p ${shellQuote(tplDir + "/cache")}`,
    ));
  }
  if (p("dists")?.rc === 0) r.push(ok("node.dists", scope, "/etc/vz/dists exists"));
  else {
    r.push(fail(
      "node.dists",
      scope,
      "/etc/vz/dists is missing (distribution scripts of vzctl)",
      `ssh root@${n} yum reinstall -y vzctl`,
    ));
  }

  // VM_DIR and SCRIPTS_REMOTE_DIR.
  for (
    const [id, label, dir] of [
      ["node.vm_dir", "VM_DIR", f.vmDir],
      ["node.remote_dir", "SCRIPTS_REMOTE_DIR", f.remoteDir],
    ] as const
  ) {
    const state = p(id.slice(5))?.out ?? "";
    const fix = `ssh root@${n} 'mkdir -p ${shellQuote(dir)} && chown ${user} ${shellQuote(dir)}'`;
    if (state === "exists-writable") {
      r.push(ok(id, scope, `${label} ${dir} exists and is writable by ${user}`));
    } else if (state === "creatable") {
      r.push(ok(id, scope, `${label} ${dir} does not exist yet; ${user} can create it`));
    } else if (state === "exists-readonly") {
      r.push(fail(id, scope, `${label} ${dir} is not writable by ${user}`, fix));
    } else {
      r.push(fail(
        id,
        scope,
        `${label} ${dir} does not exist and ${user} cannot create it (${state || "unknown"})`,
        fix,
      ));
    }
  }

  // Can the node run the onevz executable?
  const glibc = parseGlibc(p("glibc")?.out ?? "");
  const kernel = parseKernel(p("kernel")?.out ?? "");
  const agentless = `onehost create ${n} im_ovz_fe vmm_ovz_fe tm_ssh`;
  const why: string[] = [];
  if (!glibc) {
    why.push(`glibc version unknown (${firstLine(p("glibc")?.out ?? "") || "no output"})`);
  } else if (older(glibc, MIN_GLIBC)) why.push(`glibc ${glibc.join(".")} < ${MIN_GLIBC.join(".")}`);
  if (kernel && older(kernel, MIN_KERNEL)) {
    why.push(`kernel ${p("kernel")?.out.trim()} < ${MIN_KERNEL.join(".")}`);
  }
  if (why.length) {
    r.push(fail(
      "node.runs_binary",
      scope,
      `${n} cannot run the onevz executable (${why.join(", ")}): use the agentless ovz_fe drivers`,
      agentless,
    ));
  } else {
    r.push(ok(
      "node.runs_binary",
      scope,
      `can run the onevz executable (glibc ${glibc!.join(".")}, kernel ${p("kernel")?.out.trim()})`,
    ));
  }

  // Root ssh to the other nodes (live migration); runs through sudo, so only when sudo works.
  for (const peer of sudoOk ? f.peers : []) {
    const o = p(`peer:${peer}`);
    if (o?.rc === 0) {
      r.push(
        ok(
          `node.migration.${peer}`,
          scope,
          `root on ${n} can ssh to root@${peer} (live migration)`,
        ),
      );
    } else {
      r.push(fail(
        `node.migration.${peer}`,
        scope,
        `root on ${n} cannot ssh to root@${peer} (needed by vzmigrate): ${
          firstLine(o?.out ?? "") || "exit " + (o?.rc ?? "?")
        }`,
        `ssh -t root@${n} ssh-copy-id root@${peer}`,
      ));
    }
  }
  return r;
}
