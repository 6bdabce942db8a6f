// onevz doctor: pure evaluation (facts → results) per check, the front-end against a real
// installed $ONE_LOCATION, and the node checks against deliberately broken ssh test-bed nodes.
import assert from "node:assert/strict";
import { join } from "node:path";
import { install } from "../src/admin/install.ts";
import { installPaths } from "../src/admin/layout.ts";
import { exitCode, formatResults, runChecks, summary } from "../src/admin/doctor.ts";
import {
  evaluateFrontend,
  evaluateOnedConf,
  type FrontendFacts,
  gatherFrontend,
  nodeDirs,
  parseTmSshConf,
  REQUIRED_REMOTES,
} from "../src/admin/checks/frontend.ts";
import {
  evaluateNode,
  grantsAll,
  type NodeFacts,
  nodeProbes,
  parseGlibc,
  parseKernel,
} from "../src/admin/checks/node.ts";
import { parseOnedConf } from "../src/admin/checks/oned.ts";
import { NODE_CHECKS, type NodeCheck } from "../src/admin/checks/registry.ts";
import {
  type CheckResult,
  parseProbeOutput,
  type Probes,
  probeScript,
} from "../src/admin/checks/types.ts";
import { LocalHost } from "../src/host/local.ts";
import { VERSION } from "../src/version.ts";
import { type Bed, DENO, REPO_ROOT, SIM_BIN, startBed } from "./testbed/mod.ts";

const byId = (rs: CheckResult[], id: string) => {
  const r = rs.find((x) => x.id === id);
  assert.ok(r, `no result ${id} in ${rs.map((x) => x.id).join(", ")}`);
  return r;
};
const failures = (rs: CheckResult[]) => rs.filter((r) => r.status === "failure");

// ---------------------------------------------------------------------------------------------
// Probe script plumbing

Deno.test("probe script: one run, outputs and exit codes by key", async () => {
  const script = probeScript({ a: "echo one; echo two", b: "echo err >&2; exit 3", c: "true" });
  const r = await new LocalHost({ useSudo: false }).run(["sh", "-c", script]);
  const p = parseProbeOutput(r.stdout);
  assert.deepEqual(p, {
    a: { rc: 0, out: "one\ntwo" },
    b: { rc: 3, out: "err" },
    c: { rc: 0, out: "" },
  });
});

Deno.test("probe script: node probes are valid sh and quote values", async () => {
  const probes = nodeProbes({
    sysPath: (p) => `/tmp/no such root${p}`,
    frontend: "fn",
    vmDir: "/tmp/it's/vm",
    remoteDir: "/tmp/scripts",
    peers: ["cn2"],
  });
  assert.ok(probes["peer:cn2"].includes("root@cn2"));
  assert.ok(probes.vm_dir.includes(`'/tmp/it'\\''s/vm'`));
  const r = await new LocalHost({ useSudo: false }).run(["sh", "-n", "-c", probeScript(probes)], {
    check: false,
  });
  assert.equal(r.status, 0, r.stderr);
});

// ---------------------------------------------------------------------------------------------
// oned.conf and front-end evaluation

const GOOD_ONED = `
VM_DIR=/vz/one/vm
SCRIPTS_REMOTE_DIR=/vz/one/scripts
IMAGE_REPOSITORY_PATH = /srv/cloud/images
DB = [ backend = "sqlite" ]
IM_MAD = [
name         ="im_ovz",
executable   = "one_im_ssh",
arguments    = "ovz" ]
# VM_MAD = [ name = "vmm_ovz", executable = "commented out" ]
VM_MAD = [
name       = "vmm_ovz",
executable = "one_vmm_ssh",
arguments  = "ovz",
default    = "vmm_ssh/vmm_ssh_ovz.conf",
type       = "xml" ]
TM_MAD = [
    name       = "tm_ssh",
    executable = "one_tm",
    arguments  = "tm_ssh/tm_ssh.conf" ]
TM_MAD = [
    name       = "tm_ovz",
    executable = "one_tm",
    arguments  = "tm_ovz/tm_ovz.conf" ]
VM_HOOK = [
    name      = "image",
    on        = "DONE",
    command   = "image.rb",
    arguments = "$VMID" ]
VM_HOOK = [
    name      = "vzfirewall",
    on        = "RUNNING",
    command   = "/vz/one/scripts/hooks/vzfirewall.sh",
    arguments = "",
    remote    = "yes" ]
`;

Deno.test("oned.conf parser: attributes, vectors, comments, last value wins", () => {
  const c = parseOnedConf(GOOD_ONED + "\nVM_DIR = /other\n");
  assert.deepEqual(c.attrs.get("VM_DIR"), ["/vz/one/vm", "/other"]);
  assert.equal(c.vectors.get("VM_MAD")?.length, 1);
  assert.equal(c.vectors.get("VM_MAD")?.[0].executable, "one_vmm_ssh");
  assert.equal(c.vectors.get("VM_HOOK")?.[1].arguments, "");
  // Garbage never throws.
  parseOnedConf('= = [ "unterminated\n ] ] X = [ a = ');
  assert.deepEqual(nodeDirs(GOOD_ONED, null, "/srv/cloud/one"), {
    vmDir: "/vz/one/vm",
    remoteDir: "/vz/one/scripts",
  });
  assert.deepEqual(
    nodeDirs(GOOD_ONED, "VM_DIR=/from/var/config\n", undefined).vmDir,
    "/from/var/config",
  );
  assert.deepEqual(nodeDirs(null, null, "/srv/one"), {
    vmDir: "/srv/one/var",
    remoteDir: "/var/tmp/one",
  });
});

Deno.test("oned.conf: the seed's sections pass", () => {
  const rs = evaluateOnedConf("oned.conf", parseOnedConf(GOOD_ONED), "/srv/cloud/one");
  assert.deepEqual(rs.map((r) => [r.id, r.status]), [
    ["frontend.oned.im_mad", "ok"],
    ["frontend.oned.vm_mad", "ok"],
    ["frontend.oned.tm_mad", "ok"],
    ["frontend.oned.vzfirewall_hook", "ok"],
  ]);
});

Deno.test("oned.conf: wrong or missing sections fail with the install fix", () => {
  const bad = GOOD_ONED
    .replace('type       = "xml"', 'type       = "kvm"')
    .replace('executable   = "one_im_ssh"', 'executable   = "one_im_sh"')
    .replace('name       = "tm_ovz"', 'name       = "tm_nfs"')
    .replace("/vz/one/scripts/hooks", "$SCRIPTS_REMOTE_DIR/hooks");
  const rs = evaluateOnedConf("/o/etc/oned.conf", parseOnedConf(bad), "/o");
  const im = byId(rs, "frontend.oned.im_mad");
  assert.equal(im.status, "failure");
  assert.match(im.message, /executable="one_im_sh"/);
  assert.equal(im.fix, "onevz install --one-location /o --oned-conf");
  assert.match(byId(rs, "frontend.oned.vm_mad").message, /type="kvm"/);
  assert.match(byId(rs, "frontend.oned.tm_mad").message, /no TM_MAD named "tm_ovz"/);
  const hook = byId(rs, "frontend.oned.vzfirewall_hook");
  assert.equal(hook.status, "failure");
  assert.match(hook.message, /command=.*SCRIPTS_REMOTE_DIR/);
  // A missing vzfirewall hook is only a warning (vzfirewall is optional).
  const noHook = GOOD_ONED.replace('name      = "vzfirewall"', 'name      = "other"');
  const h2 = byId(
    evaluateOnedConf("c", parseOnedConf(noHook), undefined),
    "frontend.oned.vzfirewall_hook",
  );
  assert.equal(h2.status, "warning");
  assert.equal(h2.fix, "onevz install --system --oned-conf");
});

function goodFrontend(): FrontendFacts {
  const loc = "/srv/cloud/one";
  const rem = `${loc}/var/remotes`;
  const tmDir = `${loc}/lib/onevz/tm`;
  const tm = ["clone", "ln", "mkswap", "mkimage", "delete", "mv", "context"];
  return {
    env: {
      ONE_LOCATION: loc,
      ONE_AUTH: "/home/oneadmin/.one/one_auth",
      ONE_XMLRPC: "http://localhost:2633/RPC2",
      HOME: "/home/oneadmin",
    },
    oneAuth: { path: "/home/oneadmin/.one/one_auth", exists: true, mode: 0o600 },
    systemOnedConf: false,
    onedConfPath: `${loc}/etc/oned.conf`,
    onedConf: GOOD_ONED,
    varConfig: null,
    remotesDir: rem,
    remotes: REQUIRED_REMOTES.map((r) => ({ path: `${rem}/${r}`, exists: true, executable: true })),
    remoteVersion: { rc: 0, out: `onevz ${VERSION}` },
    version: VERSION,
    remoteHead: "\x7fELF\x02\x01\x01",
    tmOvzConfPath: `${loc}/etc/tm_ovz/tm_ovz.conf`,
    tmOvzConf: ["CLONE", "LN", "MKSWAP", "MKIMAGE", "DELETE", "MV", "CONTEXT"]
      .map((k, i) => `${k}=${tmDir}/tm-${tm[i]}`).join("\n"),
    tmEntries: tm.map((t) => ({ path: `${tmDir}/tm-${t}`, exists: true, executable: true })),
    tmSshConfPath: `${loc}/etc/tm_ssh/tm_ssh.conf`,
    tmSshConf: "CLONE=ssh/tm_clone.sh\nLN=ssh/tm_ln.sh\n",
    defaultsPath: `${loc}/etc/vmm_ssh/vmm_ssh_ovz.conf`,
    defaultsText: 'CPUUNITS = 1000\nONEVZ = [ CTID_OFFSET = "1000" ]\n',
    imageRepo: {
      path: "/srv/cloud/images",
      exists: true,
      mode: 0o755,
      owner: "oneadmin",
      group: "cloud",
      oneadminGroups: ["cloud"],
      writableByCurrentUser: true,
    },
    oneadmin: "oneadmin",
    currentUser: "oneadmin",
    sshLocalhost: { rc: 0, out: "" },
  };
}

Deno.test("front-end: a complete installation has no failure and no warning", () => {
  const rs = evaluateFrontend(goodFrontend());
  assert.deepEqual(rs.filter((r) => r.status !== "ok"), []);
  assert.equal(exitCode(rs), 0);
  assert.ok(rs.length >= 12);
});

Deno.test("front-end: environment checks", () => {
  const f = goodFrontend();
  f.env = { HOME: "/home/oneadmin" };
  f.oneAuth = { path: "/home/oneadmin/.one/one_auth", exists: true, mode: 0o644 };
  let rs = evaluateFrontend(f);
  const loc = byId(rs, "frontend.env.one_location");
  assert.equal(loc.status, "failure");
  assert.equal(loc.fix, undefined, "an export in doctor's own shell would fix nothing");
  assert.match(loc.todo!, /export ONE_LOCATION=/);
  const auth = byId(rs, "frontend.env.one_auth");
  assert.equal(auth.status, "failure");
  assert.match(auth.message, /world-readable \(mode 644\)/);
  assert.equal(auth.fix, "chmod 600 /home/oneadmin/.one/one_auth");
  assert.equal(byId(rs, "frontend.env.one_xmlrpc").status, "warning");
  // System-wide installation: ONE_LOCATION may stay unset; ONE_AUTH unset but file present.
  f.systemOnedConf = true;
  f.oneAuth.mode = 0o600;
  rs = evaluateFrontend(f);
  assert.equal(byId(rs, "frontend.env.one_location").status, "ok");
  assert.equal(byId(rs, "frontend.env.one_auth").status, "warning");
  f.oneAuth = { path: "/x/one_auth", exists: false };
  f.env.ONE_AUTH = "/x/one_auth";
  f.env.ONE_XMLRPC = "localhost:2633";
  rs = evaluateFrontend(f);
  assert.equal(byId(rs, "frontend.env.one_auth").fix, undefined);
  assert.match(byId(rs, "frontend.env.one_auth").todo!, /into \/x\/one_auth, mode 600/);
  assert.equal(byId(rs, "frontend.env.one_xmlrpc").status, "failure");
});

Deno.test("front-end: remotes, version, tm_ssh.conf, defaults, image repository, ssh", () => {
  const f = goodFrontend();
  f.remotes[3].exists = false;
  f.remoteVersion = { rc: 0, out: "onevz 0.0.1" };
  f.tmOvzConf = f.tmOvzConf!.replace("tm-mv", "tm_mv.sh");
  f.defaultsText = 'CPUUNITS = "unterminated\n';
  f.imageRepo = { ...f.imageRepo, owner: "root", mode: 0o755 };
  f.currentUser = "root";
  f.sshLocalhost = { rc: 255, out: "Permission denied (publickey).\n" };
  const rs = evaluateFrontend(f);
  const rem = byId(rs, "frontend.remotes");
  assert.equal(rem.status, "failure");
  assert.match(rem.message, new RegExp(REQUIRED_REMOTES[3]));
  assert.equal(rem.fix, "onevz install --one-location /srv/cloud/one");
  assert.match(byId(rs, "frontend.remotes.version").message, /0\.0\.1, this onevz is/);
  assert.match(byId(rs, "frontend.tm_ovz").message, /MV do not point/);
  const d = byId(rs, "frontend.defaults");
  assert.equal(d.status, "failure");
  assert.match(d.message, /unterminated/);
  const repo = byId(rs, "frontend.image_repository");
  assert.equal(repo.status, "failure");
  assert.match(repo.fix!, /^chown oneadmin \/srv\/cloud\/images/);
  assert.deepEqual(repo.fixAs, { user: "root", on: "front-end" });
  const ssh = byId(rs, "frontend.ssh_localhost");
  assert.equal(ssh.fix, undefined);
  assert.match(ssh.todo!, /ssh-copy-id root@localhost asks for the password once/);
  // Group-writable repository for oneadmin's group is fine; missing one fails with mkdir.
  f.imageRepo = { ...f.imageRepo, group: "cloud", mode: 0o775 };
  assert.equal(byId(evaluateFrontend(f), "frontend.image_repository").status, "ok");
  f.imageRepo = { path: "/srv/cloud/images", exists: false };
  assert.match(byId(evaluateFrontend(f), "frontend.image_repository").fix!, /^mkdir -p /);
  // Non-executable remotes: chmod.
  const g = goodFrontend();
  g.remotes[0].executable = false;
  assert.match(byId(evaluateFrontend(g), "frontend.remotes").fix!, /^chmod 755 .*bin\/onevz$/);
  // Missing defaults file is a warning; missing tm_ovz.conf a failure; no tm_ssh.conf is fine.
  g.defaultsText = null;
  g.tmOvzConf = null;
  g.tmSshConf = null;
  assert.equal(byId(evaluateFrontend(g), "frontend.defaults").status, "warning");
  assert.equal(byId(evaluateFrontend(g), "frontend.tm_ovz").status, "failure");
  assert.equal(byId(evaluateFrontend(g), "frontend.tm_ssh").status, "ok");
  assert.deepEqual(parseTmSshConf('# c\nCLONE = /a/tm-clone\nLN="/b/tm-ln"\n'), {
    CLONE: "/a/tm-clone",
    LN: "/b/tm-ln",
  });
});

// ---------------------------------------------------------------------------------------------
// Node evaluation

function goodNode(over: Partial<Probes> = {}): NodeFacts {
  const probes: Probes = {
    user: { rc: 0, out: "oneadmin\n1000" },
    hostname: { rc: 0, out: "cn1" },
    sudo: { rc: 0, out: "" },
    sudo_list: {
      rc: 0,
      out:
        "User oneadmin may run the following commands on cn1:\n    (root) NOPASSWD: /usr/sbin/vzctl, /usr/sbin/vzlist, /bin/tar",
    },
    sudo_path: { rc: 0, out: "PATH=/bin:/sbin:/usr/bin:/usr/sbin\n/sbin/iptables-restore" },
    tools: {
      rc: 0,
      out:
        "vzctl=/usr/sbin/vzctl\nvzlist=/usr/sbin/vzlist\nvzmigrate=/usr/sbin/vzmigrate\nvzfirewall=/usr/sbin/vzfirewall",
    },
    vzctl_version: { rc: 0, out: "vzctl version 4.11.1" },
    proc_vz: { rc: 0, out: "" },
    vswap: { rc: 0, out: "" },
    ubc: { rc: 0, out: "" },
    template: { rc: 0, out: "TEMPLATE=/vz/template" },
    dists: { rc: 0, out: "" },
    glibc: { rc: 0, out: "glibc 2.28" },
    kernel: { rc: 0, out: "4.18.0" },
    vm_dir: { rc: 0, out: "exists-writable" },
    remote_dir: { rc: 0, out: "creatable" },
    ssh_back: { rc: 0, out: "" },
    "peer:cn2": { rc: 0, out: "" },
    ...over,
  } as Probes;
  return {
    name: "cn1",
    frontend: "fn",
    vmDir: "/vz/one/vm",
    remoteDir: "/vz/one/scripts",
    peers: ["cn2"],
    login: { rc: 0, out: "" },
    probes,
    resolve: { target: "cn1.example.org", rc: 0, out: "10.0.0.1 cn1.example.org" },
  };
}

Deno.test("node: a healthy node passes every check", () => {
  const rs = evaluateNode(goodNode());
  assert.deepEqual(rs.filter((r) => r.status !== "ok"), []);
  assert.ok(rs.every((r) => r.scope === "node cn1"));
  assert.match(byId(rs, "node.tool.vzctl").message, /version 4\.11\.1/);
  assert.equal(byId(rs, "node.kernel.flavour").message, "VSwap kernel");
  assert.equal(byId(rs, "node.migration.cn2").status, "ok");
});

Deno.test("node: ssh failure skips the rest and says what to do (ssh-copy-id, in words)", () => {
  const f = goodNode();
  f.login = { rc: 255, out: "oneadmin@cn1: Permission denied (publickey,password)." };
  f.probes = {};
  f.sshUser = "oneadmin";
  const rs = evaluateNode(f);
  assert.deepEqual(rs.map((r) => r.id), ["node.resolve", "node.ssh"]);
  assert.equal(byId(rs, "node.ssh").fix, undefined);
  assert.match(byId(rs, "node.ssh").todo!, /ssh-copy-id oneadmin@cn1 asks for the password/);
  assert.match(byId(rs, "node.ssh").message, /Permission denied/);
});

Deno.test("node: sudo failures (requiretty, password, missing)", () => {
  let rs = evaluateNode(
    goodNode({ sudo: { rc: 1, out: "sudo: sorry, you must have a tty to run sudo" } }),
  );
  let s = byId(rs, "node.sudo");
  assert.equal(s.status, "failure");
  assert.match(s.fix!, /^onevz install --sudoers \| ssh root@cn1 /);
  assert.ok(s.detail!.some((l) => l === "Defaults:%cloud !requiretty"));
  assert.ok(!rs.some((r) => r.id === "node.sudo_path"), "sudo-dependent checks skipped");
  assert.ok(!rs.some((r) => r.id === "node.migration.cn2"), "root ssh goes through sudo");
  rs = evaluateNode(goodNode({ sudo: { rc: 1, out: "sudo: a password is required" } }));
  s = byId(rs, "node.sudo");
  assert.match(s.message, /without a password/);
  assert.match(s.fix!, /^onevz install --sudoers \| ssh root@cn1 /);
  assert.ok(s.detail!.some((l) => l.includes("!requiretty")));
  rs = evaluateNode(goodNode({ sudo: { rc: 127, out: "sh: 1: sudo: not found" } }));
  assert.equal(byId(rs, "node.sudo").fix, undefined);
  assert.match(byId(rs, "node.sudo").todo!, /install sudo on cn1/);
});

Deno.test("node: sudoers granting ALL warns with the narrower rule; secure_path", () => {
  for (const line of ["(ALL) NOPASSWD: ALL", "(ALL : ALL) ALL", "(ALL) ALL"]) {
    assert.ok(grantsAll(`User oneadmin may run:\n    ${line}\n`), line);
  }
  assert.ok(!grantsAll("    (root) NOPASSWD: /usr/sbin/vzctl, /usr/sbin/vzlist"));
  let rs = evaluateNode(goodNode({ sudo_list: { rc: 0, out: "    (ALL) NOPASSWD: ALL" } }));
  const w = byId(rs, "node.sudoers_scope");
  assert.equal(w.status, "warning");
  assert.ok(w.detail!.some((l) => /NOPASSWD: \/usr\/sbin\/vzctl, /.test(l)));
  assert.equal(exitCode(rs), 0, "warnings do not fail");
  // Root logs in: its ALL rule is not a concern.
  rs = evaluateNode(goodNode({
    user: { rc: 0, out: "root\n0" },
    sudo_list: { rc: 0, out: "    (ALL : ALL) ALL" },
  }));
  assert.equal(byId(rs, "node.sudoers_scope").status, "ok");
  // sudo -n -l may itself be refused (listpw): no verdict on the scope, no warning.
  rs = evaluateNode(goodNode({ sudo_list: { rc: 1, out: "sudo: a password is required" } }));
  assert.equal(byId(rs, "node.sudoers_scope").status, "ok");
  rs = evaluateNode(goodNode({ sudo_path: { rc: 0, out: "PATH=/usr/bin:/bin" } }));
  const p = byId(rs, "node.sudo_path");
  assert.equal(p.status, "warning");
  assert.match(p.fix!, /secure_path="\/sbin:\/bin:\/usr\/sbin:\/usr\/bin"/);
  assert.deepEqual(p.fixAs, { user: "root", on: "cn1" });
  // The PATH sudo gives is the last secure_path sudo -l lists, not the login's PATH.
  const listed = (sp: string) =>
    evaluateNode(goodNode({
      sudo_path: { rc: 0, out: "PATH=/usr/bin:/bin" },
      sudo_list: {
        rc: 0,
        out: `Matching Defaults entries for oneadmin on cn1:\n    env_reset, ${sp}\n\n` +
          "User oneadmin may run the following commands on cn1:\n    (root) NOPASSWD: /bin/tar",
      },
    }));
  assert.equal(
    byId(listed("secure_path=/usr/bin\\:/bin, secure_path=/sbin\\:/bin"), "node.sudo_path").status,
    "ok",
  );
  assert.equal(
    byId(listed("secure_path=/sbin\\:/bin, secure_path=/usr/bin\\:/bin"), "node.sudo_path").status,
    "warning",
  );
});

Deno.test("node: OpenVZ tools, kernel, template cache, dists", () => {
  const rs = evaluateNode(goodNode({
    tools: { rc: 0, out: "vzctl=\nvzlist=\nvzmigrate=/usr/sbin/vzmigrate\nvzfirewall=" },
    proc_vz: { rc: 1, out: "" },
    template: { rc: 1, out: "TEMPLATE=/vz/template" },
    dists: { rc: 1, out: "" },
  }));
  assert.equal(byId(rs, "node.tool.vzctl").fix, undefined);
  assert.match(byId(rs, "node.tool.vzctl").todo!, /install the OpenVZ tools on cn1/);
  assert.equal(byId(rs, "node.tool.vzlist").status, "failure");
  assert.equal(byId(rs, "node.tool.vzmigrate").status, "ok");
  assert.equal(byId(rs, "node.tool.vzfirewall").status, "warning");
  assert.match(byId(rs, "node.kernel.openvz").todo!, /vzkernel/);
  assert.ok(!rs.some((r) => r.id === "node.kernel.flavour"));
  assert.equal(byId(rs, "node.template_cache").fix, "mkdir -p /vz/template/cache");
  assert.deepEqual(byId(rs, "node.template_cache").fixAs, { user: "root", on: "cn1" });
  assert.equal(byId(rs, "node.dists").status, "failure");
  const ubc = evaluateNode(goodNode({ vswap: { rc: 1, out: "" } }));
  assert.match(byId(ubc, "node.kernel.flavour").message, /UBC/);
  const none = evaluateNode(goodNode({ vswap: { rc: 1, out: "" }, ubc: { rc: 1, out: "" } }));
  assert.equal(byId(none, "node.kernel.flavour").status, "warning");
});

Deno.test("node: VM_DIR / SCRIPTS_REMOTE_DIR usability", () => {
  const rs = evaluateNode(goodNode({
    vm_dir: { rc: 0, out: "exists-readonly" },
    remote_dir: { rc: 0, out: "not-creatable /vz" },
  }));
  const vm = byId(rs, "node.vm_dir");
  assert.equal(vm.status, "failure");
  assert.equal(vm.fix, "mkdir -p /vz/one/vm && chown oneadmin /vz/one/vm");
  assert.deepEqual(vm.fixAs, { user: "root", on: "cn1" });
  assert.match(byId(rs, "node.remote_dir").message, /cannot create it \(not-creatable \/vz\)/);
});

Deno.test("node: old glibc or kernel recommends the agentless drivers", () => {
  assert.deepEqual(parseGlibc("glibc 2.12"), [2, 12]);
  assert.deepEqual(parseGlibc("ldd (GNU libc) 2.17"), [2, 17]);
  assert.deepEqual(parseGlibc("ldd (Ubuntu GLIBC 2.35-0ubuntu3) 2.35"), [2, 35]);
  assert.deepEqual(parseKernel("2.6.32-042stab145.3"), [2, 6]);
  for (
    const over of [
      { glibc: { rc: 0, out: "glibc 2.12" } },
      { kernel: { rc: 0, out: "2.6.32-042stab145.3" } },
      { glibc: { rc: 1, out: "" } },
    ]
  ) {
    const r = byId(evaluateNode(goodNode(over as Partial<Probes>)), "node.runs_binary");
    assert.equal(r.status, "failure", JSON.stringify(over));
    assert.match(r.todo!, /onehost create cn1 im_ovz_fe vmm_ovz_fe tm_ovz/);
  }
  assert.equal(
    byId(evaluateNode(goodNode({ glibc: { rc: 0, out: "glibc 2.27" } })), "node.runs_binary")
      .status,
    "ok",
  );
});

Deno.test("node: ssh back to the front-end, name resolution, root ssh between nodes", () => {
  const rs = evaluateNode({
    ...goodNode({
      ssh_back: { rc: 255, out: "Permission denied (publickey)." },
      "peer:cn2": { rc: 255, out: "Host key verification failed." },
    }),
    resolve: { target: "cn1", rc: 2, out: "" },
  });
  const back = byId(rs, "node.ssh_frontend");
  assert.match(back.todo!, /ssh-copy-id oneadmin@fn asks for the password once/);
  assert.match(back.message, /Permission denied/);
  assert.match(byId(rs, "node.resolve").todo!, /resolv\.conf/);
  const mig = byId(rs, "node.migration.cn2");
  assert.match(mig.todo!, /host key/);
  assert.match(mig.message, /Host key verification failed/);
});

Deno.test("node: what a failed ssh calls for follows ssh's message; no command where none helps", () => {
  const cases: [string, RegExp][] = [
    ["ssh: Could not resolve hostname cn1: Name or service not known", /make the name resolve/],
    ["ssh: connect to host cn1 port 22: Connection refused", /start sshd on the node/],
    ["ssh: connect to host cn1 port 22: Connection timed out", /not reachable/],
    ["Host key verification failed.", /accept it once/],
    ["oneadmin@cn1: Permission denied (publickey).", /ssh-copy-id oneadmin@cn1 asks/],
  ];
  for (const [out, want] of cases) {
    const f = goodNode();
    f.login = { rc: 255, out };
    f.probes = {};
    f.sshUser = "oneadmin";
    const r = byId(evaluateNode(f), "node.ssh");
    assert.equal(r.fix, undefined, out);
    assert.match(r.todo!, want, out);
    if (!/Permission denied/.test(out)) assert.doesNotMatch(r.todo!, /ssh-copy-id/, out);
  }
  // sudo refuses ssh under the onevz rules: root ssh to a peer cannot be checked from here.
  const rs = evaluateNode(goodNode({
    "peer:cn2": {
      rc: 1,
      out: "sudo: a password is required",
    },
  }));
  const m = byId(rs, "node.migration.cn2");
  assert.equal(m.status, "warning");
  assert.match(m.message, /not checked/);
  assert.match(m.todo!, /as root on cn1/);
});

Deno.test("node: bin/onevz on the node: absent, the compiled one, an old one, a launcher", () => {
  const at = (out: string) =>
    byId(
      evaluateNode({ ...goodNode({ onevz_bin: { rc: 0, out } }), version: "1.2.3" }),
      "node.onevz",
    );
  assert.equal(at("absent").status, "ok");
  assert.equal(at("binary\nonevz 1.2.3").status, "ok");
  assert.equal(at("binary\nonevz 1.2.2").status, "warning");
  const l = at(
    "script\n#!/bin/bash\n# onevz development launcher: runs a source checkout with its Deno; " +
      "works on that machine only.\nexec deno run main.ts",
  );
  assert.equal(l.status, "failure");
  assert.match(l.message, /development launcher of a source checkout/);
  assert.equal(l.fix, undefined);
  assert.match(l.todo!, /README §10/);
  assert.equal(at("script\n#!/bin/sh\necho hi").status, "failure");
});

Deno.test("report: text lines, fixes, summary, exit code", () => {
  const rs: CheckResult[] = [
    { id: "a", scope: "node cn1", status: "ok", message: "sudo -n works without a tty" },
    { id: "b", scope: "front-end", status: "failure", message: "bad", fix: "do it" },
    { id: "c", scope: "front-end", status: "warning", message: "meh", fix: "maybe", detail: ["x"] },
  ];
  assert.equal(
    formatResults(rs),
    "ok   node cn1: sudo -n works without a tty\n" +
      "FAIL front-end: bad\n     fix: do it\n" +
      "warn front-end: meh\n     fix: maybe\n       x\n" +
      "doctor: 3 checks: 1 ok, 1 warning, 1 failure\n",
  );
  assert.equal(
    formatResults([
      {
        id: "d",
        scope: "node cn1",
        status: "failure",
        message: "m",
        fix: "mkdir -p /x",
        fixAs: { user: "root", on: "cn1" },
        todo: "then wait",
      },
      { id: "e", scope: "front-end", status: "warning", message: "w", todo: "do this" },
      {
        id: "f",
        scope: "front-end",
        status: "failure",
        message: "f",
        fix: "a",
        fixAs: { user: "oneadmin", on: "front-end" },
      },
    ]),
    "FAIL node cn1: m\n     fix (as root on cn1): mkdir -p /x\n     note: then wait\n" +
      "warn front-end: w\n     to do: do this\n" +
      "FAIL front-end: f\n     fix (as oneadmin on the front-end): a\n" +
      "doctor: 3 checks: 0 ok, 1 warning, 2 failures\n",
  );
  assert.equal(exitCode(rs), 1);
  assert.equal(exitCode(rs.filter((r) => r.status !== "failure")), 0);
  assert.equal(summary([]), "doctor: 0 checks: 0 ok, 0 warnings, 0 failures");
});

// ---------------------------------------------------------------------------------------------
// Front-end against a real installation

Deno.test("front-end: an `onevz install`ed ONE_LOCATION passes (but for ONEVZ_SSH-faked ssh)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "onevz-doctor-fe-" });
  const loc = `${dir}/one`;
  try {
    await Deno.mkdir(`${loc}/etc/tm_ssh`, { recursive: true });
    await Deno.mkdir(`${loc}/var/images`, { recursive: true });
    await Deno.writeTextFile(`${loc}/etc/tm_ssh/tm_ssh.conf`, "CLONE=ssh/tm_clone.sh\n");
    await Deno.writeTextFile(
      `${loc}/etc/oned.conf`,
      `VM_DIR=/vz/one/vm\nSCRIPTS_REMOTE_DIR=/vz/one/scripts\n`,
    );
    const paths = installPaths({ oneLocation: loc });
    await install({
      paths,
      binary: { kind: "launcher", deno: DENO, main: join(REPO_ROOT, "main.ts") },
      onedConf: true,
      say: () => {},
    });
    await Deno.writeTextFile(`${dir}/one_auth`, "oneadmin:pw\n", { mode: 0o600 });
    await Deno.chmod(`${dir}/one_auth`, 0o600);
    await Deno.writeTextFile(`${dir}/fake-ssh`, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    const env: Record<string, string> = {
      ONE_LOCATION: loc,
      ONE_AUTH: `${dir}/one_auth`,
      ONE_XMLRPC: "http://localhost:2633/RPC2",
      HOME: dir,
    };
    const saved = Deno.env.get("ONEVZ_SSH");
    Deno.env.set("ONEVZ_SSH", `${dir}/fake-ssh`);
    let rs: CheckResult[];
    try {
      const f = await gatherFrontend(new LocalHost({ useSudo: false }), (k) => env[k], VERSION);
      rs = evaluateFrontend(f);
    } finally {
      if (saved === undefined) Deno.env.delete("ONEVZ_SSH");
      else Deno.env.set("ONEVZ_SSH", saved);
    }
    // Everything passes but the executable: installed from this checkout, it is the
    // development launcher, which no node can run.
    assert.deepEqual(
      rs.filter((r) => r.status !== "ok").map((r) => [r.id, r.status]),
      [["frontend.remotes.executable", "failure"]],
      formatResults(rs),
    );
    assert.match(byId(rs, "frontend.remotes.executable").message, /development launcher/);
    assert.match(byId(rs, "frontend.remotes.executable").todo!, /README §10/);
    // Break it: world-readable auth, a remote removed, the version changed.
    await Deno.chmod(`${dir}/one_auth`, 0o644);
    await Deno.remove(`${loc}/var/remotes/vmm/ovz/poll`);
    const f2 = await gatherFrontend(new LocalHost({ useSudo: false }), (k) => env[k], "9.9.9");
    const rs2 = evaluateFrontend(f2);
    assert.equal(byId(rs2, "frontend.env.one_auth").status, "failure");
    assert.match(byId(rs2, "frontend.remotes").message, /vmm\/ovz\/poll/);
    assert.match(byId(rs2, "frontend.remotes.version").message, /this onevz is 9\.9\.9/);
    // The defaults file is the one the actions read (the installed file behind the remotes
    // link), and one they would stop on is a failure, not "parses".
    assert.match(
      byId(rs, "frontend.defaults").message,
      new RegExp(`^${loc}/etc/vmm_ssh/vmm_ssh_ovz\\.conf parses`),
    );
    const f3 = await gatherFrontend(
      new LocalHost({ useSudo: false }),
      (k) => ({ ...env, ONEVZ_DEFAULTS: `${dir}/typo.conf` })[k],
      VERSION,
    );
    const d3 = byId(evaluateFrontend(f3), "frontend.defaults");
    assert.equal(d3.status, "failure", d3.message);
    assert.match(d3.message, /typo\.conf \(named by ONEVZ_DEFAULTS\): it does not exist/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// Nodes of the ssh test bed, healthy and deliberately broken

const bedOpts = { sanitizeOps: false, sanitizeResources: false };
const canBed = Deno.uid() === 0 && (() => {
  try {
    return Deno.statSync("/usr/sbin/sshd").isFile;
  } catch {
    return false;
  }
})();

const FAKE_TOOL = (name: string) =>
  `#!/bin/sh\n# fake ${name} for doctor tests\n[ "$1" = --version ] && echo "${name} version 4.11.1"\nexit 0\n`;

async function writeExec(path: string, text: string) {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  await Deno.writeTextFile(path, text, { mode: 0o755 });
  await Deno.chmod(path, 0o755);
}

/** Lay out a minimal OpenVZ node (fake tools in <fs>/bin, sysroot in <fs>/sim). */
async function fakeOpenvz(fsDir: string) {
  for (const t of ["vzctl", "vzlist", "vzmigrate", "vzfirewall"]) {
    await writeExec(`${fsDir}/bin/${t}`, FAKE_TOOL(t));
  }
  const sim = `${fsDir}/sim`;
  for (const d of ["proc/vz", "etc/vz/dists", "vz/template/cache"]) {
    await Deno.mkdir(`${sim}/${d}`, { recursive: true });
  }
  await Deno.writeTextFile(`${sim}/proc/user_beancounters`, "Version: 2.5\n");
  await Deno.writeTextFile(`${sim}/etc/vz/vz.conf`, `TEMPLATE=/srv/onevz-node/sim/vz/template\n`);
}

const BROKEN: Record<string, (fs: string) => Promise<void>> = {
  healthy: async () => {},
  nosudo: (fs) =>
    writeExec(`${fs}/bin/sudo`, '#!/bin/sh\necho "sh: 1: sudo: not found" >&2\nexit 127\n'),
  tty: (fs) =>
    writeExec(
      `${fs}/bin/sudo`,
      '#!/bin/sh\necho "sudo: sorry, you must have a tty to run sudo" >&2\nexit 1\n',
    ),
  passwd: (fs) =>
    writeExec(`${fs}/bin/sudo`, '#!/bin/sh\necho "sudo: a password is required" >&2\nexit 1\n'),
  novzctl: (fs) => Deno.remove(`${fs}/bin/vzctl`),
  noprocvz: (fs) => Deno.remove(`${fs}/sim/proc/vz`, { recursive: true }),
  oldglibc: async (fs) => {
    await writeExec(`${fs}/bin/getconf`, '#!/bin/sh\necho "glibc 2.12"\n');
    await writeExec(`${fs}/bin/ldd`, '#!/bin/sh\necho "ldd (GNU libc) 2.12"\n');
  },
  noback: (fs) =>
    writeExec(
      `${fs}/bin/ssh`,
      '#!/bin/sh\necho "oneadmin@fn: Permission denied (publickey)." >&2\nexit 255\n',
    ),
};

async function withBed<T>(names: string[], fn: (bed: Bed) => Promise<T>): Promise<T> {
  const empty = await Deno.makeTempDir({ prefix: "onevz-doctor-nosim-" });
  const bed = await startBed({
    nodes: names.map((name) => ({ name })),
    nodeBin: true,
    initSimulator: false,
    simBin: empty,
  });
  try {
    for (const n of names) {
      await fakeOpenvz(bed.nodes[n].fsDir);
      await BROKEN[n.split("-")[1]](bed.nodes[n].fsDir);
    }
    return await fn(bed);
  } finally {
    await bed.stop();
    await Deno.remove(empty, { recursive: true });
  }
}

/** Node checks only, in-process, the bed's ssh config in the environment (SshHost reads it). */
async function nodeChecks(bed: Bed, hosts: string[]): Promise<CheckResult[]> {
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(bed.env)) {
    if (k === "PATH") continue;
    saved[k] = Deno.env.get(k);
    Deno.env.set(k, v);
  }
  try {
    return await runChecks(
      { hosts, frontend: "fn", vmDir: bed.vmDir, remoteDir: bed.remoteDir, skipFrontend: true },
      (k) => Deno.env.get(k),
    );
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) Deno.env.delete(k);
      else Deno.env.set(k, v);
    }
  }
}

Deno.test({
  name: "bed: healthy node passes; each broken node fails with the right check and fix",
  ignore: !canBed,
  ...bedOpts,
  fn: async () => {
    const names = Object.keys(BROKEN).map((k) => `n-${k}`);
    await withBed(names, async (bed) => {
      const rs = await nodeChecks(bed, names);
      const of = (n: string) => rs.filter((r) => r.scope === `node ${n}`);
      const failed = (n: string) => failures(of(n)).map((r) => r.id);
      const text = formatResults(rs);
      assert.deepEqual(failed("n-healthy"), [], text);
      assert.equal(byId(of("n-healthy"), "node.migration.n-tty").status, "ok");

      for (const n of ["n-nosudo", "n-tty", "n-passwd"]) {
        // Without sudo, the checks that need it (root ssh to the peers, …) are skipped.
        assert.deepEqual(failed(n), ["node.sudo"], text);
        assert.ok(!of(n).some((r) => r.id.startsWith("node.migration.")));
      }
      assert.match(byId(of("n-nosudo"), "node.sudo").todo!, /install sudo on n-nosudo/);
      for (const n of ["n-tty", "n-passwd"]) {
        assert.match(
          byId(of(n), "node.sudo").fix!,
          new RegExp(`^onevz install --sudoers \\| ssh -F \\S+ root@${n} `),
        );
      }

      assert.deepEqual(failed("n-novzctl"), ["node.tool.vzctl"], text);
      assert.match(byId(of("n-novzctl"), "node.tool.vzctl").todo!, /yum install vzctl/);
      assert.deepEqual(failed("n-noprocvz"), ["node.kernel.openvz"], text);
      assert.deepEqual(failed("n-oldglibc"), ["node.runs_binary"], text);
      assert.match(
        byId(of("n-oldglibc"), "node.runs_binary").todo!,
        /onehost create n-oldglibc im_ovz_fe vmm_ovz_fe tm_ovz/,
      );
      assert.deepEqual(failed("n-noback"), ["node.ssh_frontend"], text);
      assert.match(
        byId(of("n-noback"), "node.ssh_frontend").todo!,
        /ssh-copy-id root@fn asks for the password once/,
      );
    });
  },
});

Deno.test({
  name: "bed: unreachable node and the CLI (--json, exit code)",
  ignore: !canBed,
  ...bedOpts,
  fn: async () => {
    await withBed(["n-healthy"], async (bed) => {
      // A host the ssh config does not know: ssh fails, the rest is skipped.
      // A name that does not resolve: no ssh key would help, so no ssh-copy-id.
      const bad = await nodeChecks(bed, ["nosuchnode.invalid"]);
      const ssh = byId(bad, "node.ssh");
      assert.equal(ssh.status, "failure");
      assert.equal(ssh.fix, undefined);
      assert.doesNotMatch(JSON.stringify(bad), /ssh-copy-id/);
      assert.match(ssh.todo!, /name resolution/);
      // Through main.ts: JSON on stdout; exit 1 because the front-end here is not set up.
      const out = await new Deno.Command(DENO, {
        args: ["run", "-A", "--quiet", join(REPO_ROOT, "main.ts"), "doctor", "--json", "n-healthy"],
        env: {
          ...bed.env,
          ONEVZ_FRONTEND: "fn",
          ONEVZ_VM_DIR: bed.vmDir,
          ONEVZ_REMOTE_DIR: bed.remoteDir,
          ONE_LOCATION: `${bed.dir}/no-one`,
        },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stdout = new TextDecoder().decode(out.stdout);
      const rs = JSON.parse(stdout) as CheckResult[];
      assert.equal(out.code, 1, new TextDecoder().decode(out.stderr));
      assert.ok(rs.some((r) => r.scope === "front-end" && r.status === "failure"));
      assert.deepEqual(failures(rs.filter((r) => r.scope === "node n-healthy")), []);
    });
  },
});

Deno.test({
  name: "bed: a check added to the registry runs its probe in the node's round trip",
  ignore: !canBed,
  ...bedOpts,
  fn: async () => {
    await withBed(["n-healthy"], async (bed) => {
      const check: NodeCheck = {
        name: "test-extra",
        probes: (o) => ({ extra_uname: `uname -s; echo ${o.vmDir}` }),
        evaluate: (f) => [{
          id: "node.extra",
          scope: `node ${f.name}`,
          status: "ok",
          message: f.probes.extra_uname?.out.replaceAll("\n", " ") ?? "missing",
        }],
      };
      NODE_CHECKS.push(check);
      try {
        const rs = await nodeChecks(bed, ["n-healthy"]);
        assert.equal(byId(rs, "node.extra").message, `Linux ${bed.vmDir}`);
        // Not for a node ssh cannot reach.
        const bad = await nodeChecks(bed, ["nosuchnode.invalid"]);
        assert.ok(!bad.some((r) => r.id === "node.extra"));
      } finally {
        NODE_CHECKS.splice(NODE_CHECKS.indexOf(check), 1);
      }
    });
  },
});

Deno.test({
  name: "bed: a node run by the OpenVZ simulator (fixtures/sim) has no failure",
  ignore: !canBed || !(() => {
    try {
      return Deno.statSync(join(SIM_BIN, "ovzsim")).isFile;
    } catch {
      return false;
    }
  })(),
  ...bedOpts,
  fn: async () => {
    const bed = await startBed({ nodes: [{ name: "cn1", flavour: "vswap" }] });
    try {
      const rs = await nodeChecks(bed, ["cn1"]);
      assert.deepEqual(failures(rs), [], formatResults(rs));
      assert.equal(byId(rs, "node.kernel.flavour").message, "VSwap kernel");
    } finally {
      await bed.stop();
    }
  },
});
