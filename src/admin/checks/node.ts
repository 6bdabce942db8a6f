/**
 * Node checks, run from the front-end over ssh (SshHost: ONEVZ_SSH, ONEVZ_SSH_CONFIG,
 * BatchMode). One shell script gathers every fact in one round trip (`nodeProbes`); the
 * front-end adds name resolution; `evaluateNode` turns the facts into results (pure).
 */
import { shellQuote } from "../../cli/errors.ts";
import type { Host } from "../../host/host.ts";
import { executableKind, sudoersLines } from "../layout.ts";
import {
  type CheckResult,
  fail,
  firstLine,
  type FixSpec,
  ok,
  parseProbeOutput,
  type ProbeOutput,
  type Probes,
  probeScript,
  runAs,
  todo,
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
  /** The onevz version on the front-end (what bin/onevz on the node should be). */
  version?: string;
  /** How fixes run on the front-end reach this node: `ssh` plus the options doctor used. */
  sshCommand?: string;
  /** How a fix on the front-end runs onevz (the compiled executable's path, or `onevz`). */
  onevzCommand?: string;
  /** The user who runs doctor on the front-end. */
  frontendUser?: string;
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
    user: "id -un; id -u; id -Gn",
    hostname: "hostname",
    // A program the onevz rules allow (they do not allow `true`).
    sudo: "sudo -n test -e /",
    sudo_list: "sudo -n -l",
    // The PATH sudo gives vzfirewall: the last secure_path `sudo -l` lists, else the user's
    // (sudo -n sh is refused by the onevz rules, so it cannot be asked directly).
    sudo_path: `echo "PATH=$PATH"; for d in /sbin /usr/sbin /bin /usr/bin; do ` +
      `[ -x "$d/iptables-restore" ] && echo "IPTABLES=$d/iptables-restore"; done; true`,
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
    // What oned copied there as bin/onevz: the compiled executable, or a script.
    onevz_bin: `f=${q(o.remoteDir.replace(/\/+$/, "") + "/bin/onevz")}; ` +
      `if [ ! -e "$f" ]; then echo absent; elif [ "$(head -c 2 "$f")" = "#!" ]; then ` +
      `echo script; head -c 1000 "$f"; else echo binary; "$f" --version 2>&1 | head -n 1; fi`,
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
  o: {
    frontend: string;
    vmDir: string;
    remoteDir: string;
    peers: string[];
    sshConfig?: string;
    version?: string;
    sshCommand?: string;
    onevzCommand?: string;
    frontendUser?: string;
    /** Probes of further checks (src/admin/checks/registry.ts), run in the same round trip. */
    extraProbes?: Record<string, string>;
  },
): Promise<NodeFacts> {
  const { extraProbes, ...facts } = o;
  const script = probeScript({
    ...nodeProbes({ sysPath: (p) => host.sysPath(p), ...o }),
    ...extraProbes,
  });
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
    ...facts,
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

/** The secure_path sudo applies (the last one `sudo -l` lists), if any (pure). */
export function sudoSecurePath(sudoList: string): string | undefined {
  const all = [...sudoList.matchAll(/secure_path=((?:\\.|[^,\s])*)/g)].map((m) =>
    m[1].replaceAll("\\", "")
  );
  return all.at(-1);
}

/**
 * What to do about a failed ssh, from ssh's own message: a command would not help when the
 * name does not resolve or nothing listens (pure).
 */
export function sshFailureFix(out: string, login: string, frontendUser: string): FixSpec {
  if (
    /Could not resolve hostname|Name or service not known|not known|No address associated/i.test(
      out,
    )
  ) {
    return todo(
      `make the name resolve on the front-end (the node's FQDN, a 'search' domain in ` +
        `/etc/resolv.conf, or an /etc/hosts entry); ssh keys are not the problem`,
    );
  }
  if (/Connection refused|Connection reset|Connection closed/i.test(out)) {
    return todo(
      `nothing answers ssh there: start sshd on the node (service sshd start) and check ` +
        `its port and firewall; ssh keys are not the problem`,
    );
  }
  if (/timed out|No route to host|Network is unreachable/i.test(out)) {
    return todo("the node is not reachable: check that it is up, its address and the firewall");
  }
  if (/Host key verification failed|IDENTIFICATION HAS CHANGED/i.test(out)) {
    return todo(
      `check the node's host key and accept it once: ssh ${login} as ${frontendUser} ` +
        `interactively (ssh-keygen -R <host> first if the key changed)`,
    );
  }
  if (/Permission denied|Too many authentication failures/i.test(out)) {
    return todo(
      `authorize ${frontendUser}'s public key for ${login}: ssh-copy-id ${login} asks for ` +
        `the password once (or append the key to ~/.ssh/authorized_keys there)`,
    );
  }
  return todo(`make 'ssh -o BatchMode=yes ${login} true' work as ${frontendUser}`);
}

/** The sudoers fix: the printed rules, checked by visudo, installed as root on the node. */
function sudoersFix(
  f: NodeFacts,
  group: string,
): { fix: FixSpec; rules: string[] } {
  const fe = f.frontendUser || "oneadmin";
  const file = "/etc/sudoers.d/onevz";
  const remote = `cat > ${file}.new && chmod 440 ${file}.new && visudo -cqf ${file}.new && ` +
    `mv -f ${file}.new ${file}`;
  const onevz = f.onevzCommand ?? "onevz";
  const command = `${onevz} install --sudoers${group === "cloud" ? "" : ` --group ${group}`} | ` +
    `${f.sshCommand ?? "ssh"} root@${f.name} ${shellQuote(remote)}`;
  return {
    fix: runAs(
      fe,
      "front-end",
      command,
      `this needs root ssh to ${f.name} (the seed's setup); without it, put the rules below ` +
        `into ${file} on ${f.name} with visudo`,
    ),
    rules: sudoersLines(group).trimEnd().split("\n"),
  };
}

/** All results for one node (pure). */
export function evaluateNode(f: NodeFacts): CheckResult[] {
  const scope = `node ${f.name}`;
  const r: CheckResult[] = [];
  const n = f.name;
  const p = (k: string): ProbeOutput | undefined => f.probes[k];
  const userLines = p("user")?.out.split("\n") ?? [];
  const user = userLines[0] || f.sshUser || "oneadmin";
  const isRoot = userLines[1]?.trim() === "0";
  const groups = (userLines[2] ?? "").trim().split(/\s+/).filter(Boolean);
  // The rules are written for the group the login user is in: cloud (the seed's), else its own.
  const group = groups.includes("cloud") || isRoot || groups.length === 0 ? "cloud" : groups[0];
  const fe = f.frontendUser || "oneadmin";
  const login = `${f.sshUser ?? user}@${n}`;

  // Name resolution (on the front-end), also meaningful when ssh fails.
  const resolves = f.resolve.rc === 0;
  if (resolves) {
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
      `${f.resolve.target} does not resolve on the front-end (getent hosts)`,
      todo(
        `use the node's FQDN, or add its domain as 'search <domain>' to the front-end's ` +
          `/etc/resolv.conf, or give it an /etc/hosts entry`,
      ),
    ));
  }

  if (f.login.rc !== 0) {
    const why = firstLine(f.login.out) || "exit " + f.login.rc;
    r.push(fail(
      "node.ssh",
      scope,
      `passwordless ssh (BatchMode) to ${n} failed: ${why}; other node checks skipped`,
      resolves
        ? sshFailureFix(f.login.out, login, fe)
        : todo(`fix the name resolution of ${n} first (node.resolve)`),
    ));
    return r;
  }
  r.push(ok("node.ssh", scope, `passwordless ssh (BatchMode) as ${user}`));

  // ssh back to the front-end.
  const back = p("ssh_back");
  if (back && back.rc === 0) {
    r.push(ok("node.ssh_frontend", scope, `${n} can ssh back to the front-end ${f.frontend}`));
  } else {
    const out = back?.out ?? "";
    const words = sshFailureFix(out, `${user}@${f.frontend}`, `${user} on ${n}`);
    r.push(fail(
      "node.ssh_frontend",
      scope,
      `${n} cannot ssh to the front-end ${f.frontend} as ${user}: ${
        firstLine(out) || "exit " + (back?.rc ?? "?")
      }`,
      words,
    ));
  }

  // sudo.
  const sudo = p("sudo");
  const sudoOk = sudo?.rc === 0;
  const sudoOut = sudo?.out ?? "";
  const rulesFix = sudoersFix(f, group);
  if (sudoOk) {
    r.push(ok("node.sudo", scope, "sudo -n works without a tty"));
  } else if (/must have a tty|requiretty/i.test(sudoOut)) {
    r.push(fail(
      "node.sudo",
      scope,
      `sudo requires a tty (requiretty): ${
        firstLine(sudoOut)
      }; the onevz rules lift it for %${group}`,
      rulesFix.fix,
      rulesFix.rules,
    ));
  } else if (sudo?.rc === 127 || /sudo.*(command )?not found/i.test(sudoOut)) {
    r.push(fail(
      "node.sudo",
      scope,
      "sudo is not installed",
      todo(`install sudo on ${n} (yum install sudo; apt-get install sudo on Debian)`),
    ));
  } else {
    r.push(fail(
      "node.sudo",
      scope,
      /password is required|may not run sudo|not in the sudoers|not allowed/i.test(sudoOut)
        ? `${user} cannot run sudo without a password: ${firstLine(sudoOut)}`
        : `sudo -n test -e / failed: ${firstLine(sudoOut) || "exit " + sudo?.rc}`,
      rulesFix.fix,
      rulesFix.rules,
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
        `sudoers grants ${user} ALL commands: sudo sh, sudo -i and any program run as root ` +
          `by name; the onevz rules below refuse those (they are still root-equivalent, README §3)`,
        todo(
          `install the rules below in /etc/sudoers.d/onevz on ${n} and delete the rule ` +
            `granting ALL (visudo)`,
        ),
        rulesFix.rules,
      ));
    } else {
      r.push(ok(
        "node.sudoers_scope",
        scope,
        isRoot ? "logged in as root (sudo rules not needed)" : "sudoers does not grant ALL",
      ));
    }
    const sp = p("sudo_path")?.out ?? "";
    const userPath = /^PATH=(.*)$/m.exec(sp)?.[1] ?? "";
    const secure = isRoot ? undefined : sudoSecurePath(list?.out ?? "");
    const path = (secure ?? userPath).split(":");
    const ipt = [...sp.matchAll(/^IPTABLES=(.*)$/gm)].map((m) => m[1])
      .find((x) => path.includes(x.replace(/\/[^/]+$/, "")));
    if (path.includes("/sbin") || ipt) {
      r.push(ok(
        "node.sudo_path",
        scope,
        `sudo's PATH reaches /sbin${ipt ? ` (iptables-restore: ${ipt})` : ""}`,
      ));
    } else {
      const file = "/etc/sudoers.d/zz-onevz-secure-path";
      const line = `Defaults:${user} secure_path="/sbin:/bin:/usr/sbin:/usr/bin"`;
      r.push(warn(
        "node.sudo_path",
        scope,
        `the PATH sudo gives vzfirewall does not reach /sbin (iptables-restore): PATH=${
          path.join(":")
        }${secure === undefined ? " (no secure_path)" : ""}`,
        runAs(
          "root",
          n,
          `echo ${shellQuote(line)} > ${file}.new && chmod 440 ${file}.new && ` +
            `visudo -cqf ${file}.new && mv -f ${file}.new ${file}`,
          "the file sorts after the others in /etc/sudoers.d: the last secure_path wins",
        ),
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
      r.push(fail(
        `node.tool.${t}`,
        scope,
        `${t} is not on the PATH of ${user} on ${n}`,
        todo(
          `install the OpenVZ tools on ${n} (vzctl, which brings vzlist and vzmigrate, from ` +
            `the OpenVZ repository: yum install vzctl), or put them on ${user}'s PATH`,
        ),
      ));
    }
  }
  if (tools.vzfirewall) {
    r.push(ok("node.tool.vzfirewall", scope, `vzfirewall present (${tools.vzfirewall})`));
  } else {
    r.push(warn(
      "node.tool.vzfirewall",
      scope,
      "vzfirewall is not on the PATH (FIREWALL rules and the vzfirewall hook will not work)",
      todo(`copy vzfirewall to /usr/sbin/vzfirewall on ${n}, mode 755 (README §5)`),
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
      todo(`install an OpenVZ kernel on ${n} (yum install vzkernel) and boot into it`),
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
      runAs("root", n, `mkdir -p ${shellQuote(tplDir + "/cache")}`),
    ));
  }
  if (p("dists")?.rc === 0) r.push(ok("node.dists", scope, "/etc/vz/dists exists"));
  else {
    r.push(fail(
      "node.dists",
      scope,
      "/etc/vz/dists is missing (distribution scripts of vzctl)",
      todo(`reinstall vzctl on ${n}: /etc/vz/dists comes with it (yum reinstall vzctl)`),
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
    const fix = runAs(
      "root",
      n,
      `mkdir -p ${shellQuote(dir)} && chown ${shellQuote(user)} ${shellQuote(dir)}`,
    );
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

  // The onevz oned copied into SCRIPTS_REMOTE_DIR (node mode): the compiled executable only.
  const bin = p("onevz_bin")?.out ?? "";
  const binPath = `${f.remoteDir.replace(/\/+$/, "")}/bin/onevz`;
  const [binKind, ...binRest] = bin.split("\n");
  if (binKind === "script") {
    const kind = executableKind(binRest.join("\n"));
    r.push(fail(
      "node.onevz",
      scope,
      `${binPath} on ${n} is ${
        kind === "dev-launcher" ? "the development launcher of a source checkout" : "a script"
      }, not the compiled onevz: no action can run there`,
      todo(
        "build the executable (README §10), install it on the front-end with " +
          "`onevz install --binary dist/onevz …`, and let the next host monitoring copy it " +
          "(install touches the remotes directory)",
      ),
    ));
  } else if (binKind === "binary") {
    const got = /\b(\d+\.\d+\.\d+\S*)/.exec(binRest.join(" "))?.[1];
    if (!got) {
      r.push(warn(
        "node.onevz",
        scope,
        `${binPath} --version failed on ${n}: ${firstLine(binRest.join("\n")) || "no output"}`,
      ));
    } else if (f.version && got !== f.version) {
      r.push(warn(
        "node.onevz",
        scope,
        `${n} has onevz ${got}, the front-end ${f.version}`,
        todo(
          "the next host monitoring copies the front-end's remotes (onevz install touches " +
            "the remotes directory so that it does)",
        ),
      ));
    } else {
      r.push(ok("node.onevz", scope, `${binPath} is the compiled onevz ${got}`));
    }
  } else {
    r.push(ok(
      "node.onevz",
      scope,
      `no ${binPath} yet (oned copies the remotes at the host's first monitoring; ` +
        "agentless nodes need none)",
    ));
  }

  // Can the node run the onevz executable?
  const glibc = parseGlibc(p("glibc")?.out ?? "");
  const kernel = parseKernel(p("kernel")?.out ?? "");
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
      todo(
        `register ${n} with the agentless drivers (README §9): onehost create ${n} ` +
          `im_ovz_fe vmm_ovz_fe tm_ovz (onehost delete ${n} first if it is registered)`,
      ),
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
    } else if (/password is required|not allowed to execute|may not run sudo/i.test(o?.out ?? "")) {
      // The onevz rules do not include ssh: doctor cannot try it as root from here.
      r.push(warn(
        `node.migration.${peer}`,
        scope,
        `root ssh from ${n} to ${peer} (vzmigrate) not checked: sudo does not let ${user} run ssh`,
        todo(
          `as root on ${n}, check that 'ssh -o BatchMode=yes root@${peer} true' works ` +
            "(live migration needs it)",
        ),
      ));
    } else {
      const out = o?.out ?? "";
      r.push(fail(
        `node.migration.${peer}`,
        scope,
        `root on ${n} cannot ssh to root@${peer} (needed by vzmigrate): ${
          firstLine(out) || "exit " + (o?.rc ?? "?")
        }`,
        sshFailureFix(out, `root@${peer}`, `root on ${n}`),
      ));
    }
  }
  return r;
}
