// Deploy, shutdown and restore on nodes as a stock vzctl install leaves them (issue 14 §5):
// VE_LAYOUT=ploop in vz.conf, kernels with and without ploop, vzctl 3.0.30.2, configs left
// behind without VE_LAYOUT, and config forms vzctl reads differently from a shell.
import assert from "node:assert/strict";
import {
  makeSimNode,
  makeTemplateTarball,
  REPO,
  run,
  runEpilog,
  type SimNode,
} from "./helpers/simnode.ts";

const VPS145 = await Deno.readTextFile(`${REPO}/fixtures/templates/vps145.xml`);
const DEFAULTS = await Deno.readTextFile(`${REPO}/fixtures/templates/vmm_ssh_ovz.conf`);
const DEPLOY = (node: SimNode, vid = 45) => [`${node.vmDir}${vid}/images/deployment.0`];

/** What the TM prolog leaves: the OS image and the context directory (vps145's FILES). */
async function prolog(node: SimNode, vmid: number, image?: Uint8Array) {
  const images = `${node.vmDir}${vmid}/images`;
  await Deno.mkdir(`${images}/disk.2`, { recursive: true });
  await Deno.writeFile(`${images}/disk.0`, image ?? await makeTemplateTarball("bz2"));
  await Deno.writeTextFile(`${images}/disk.2/init.sh`, "echo booted\n");
  await Deno.writeTextFile(`${images}/disk.2/id_rsa.pub`, "ssh-rsa AAAA test\n");
  return images;
}

/** A defaults file with these ONEVZ settings added to the fixture's. */
async function defaultsWith(node: SimNode, settings: string): Promise<string> {
  const path = `${node.dir}/vmm_ssh_ovz.conf`;
  await Deno.writeTextFile(
    path,
    DEFAULTS.replace('NIC_MODEL   = "venet"', `NIC_MODEL = "venet", ${settings}`),
  );
  return path;
}

async function vzctlCalls(node: SimNode, action: string) {
  return (await node.calls()).filter((c) => c.tool === "vzctl" && c.argv.includes(action));
}

/** The member names of a (compressed) tar archive. */
async function members(path: string): Promise<string[]> {
  const r = await run("tar", ["-tf", path]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split("\n").filter((l) => l !== "");
}

const conf = (node: SimNode, ctid = 1045) =>
  Deno.readTextFile(`${node.root}/etc/vz/conf/${ctid}.conf`);

Deno.test("stock 4.11.1 node (VE_LAYOUT=ploop, kernel without ploop): deploy creates simfs", async () => {
  const node = await makeSimNode();
  try {
    await prolog(node, 45);
    const r = await node.action("deploy", DEPLOY(node), VPS145);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "1045\n");
    const [create] = await vzctlCalls(node, "create");
    assert.deepEqual(create.argv.slice(-2), ["--layout", "simfs"]);
    assert.match(await conf(node), /^VE_LAYOUT="simfs"$/m);
  } finally {
    await node.cleanup();
  }
});

Deno.test("ploop-capable stock node: the SAVE=yes image is an OS template, and deploys again", async () => {
  const node = await makeSimNode({ init: ["--ploop"] });
  try {
    await prolog(node, 45);
    assert.equal((await node.action("deploy", DEPLOY(node), VPS145)).code, 0);
    assert.match(await conf(node), /^VE_LAYOUT="simfs"$/m);
    const s = await node.action("shutdown", ["1045"]);
    assert.equal(s.code, 0, s.stderr);
    const saved = (await runEpilog(node, 45, { savedDisk: 0 }))!;
    const names = await members(saved);
    assert.ok(names.includes("./sbin/init") && names.includes("./mnt/id_rsa.pub"), names.join());
    assert.ok(!names.some((n) => n.includes("root.hdd")), "files, not a ploop image");
    // the saved image is the OS image of the next VM
    await prolog(node, 46, await Deno.readFile(saved));
    const again = await node.action(
      "deploy",
      DEPLOY(node, 46),
      VPS145.replaceAll("<![CDATA[45]]></VMID>", "<![CDATA[46]]></VMID>")
        .replace("centos-5-x86.tar.bz2", "centos-5-vm45.tar.bz2"),
    );
    assert.equal(again.code, 0, again.stderr);
    const s46 = await node.tool("vzctl", ["exec", "1046", "cat mnt/id_rsa.pub"]);
    assert.equal(s46.stdout, "ssh-rsa AAAA test\n");
  } finally {
    await node.cleanup();
  }
});

Deno.test("LAYOUT = ploop: files written into the image, the epilog archives the files", async () => {
  const node0 = await makeSimNode({ init: ["--ploop"] });
  const node = await makeSimNode({
    init: ["--ploop"],
    defaults: await defaultsWith(node0, 'LAYOUT = "ploop"'),
  });
  try {
    const images = await prolog(node, 45);
    const r = await node.action("deploy", DEPLOY(node), VPS145);
    assert.equal(r.code, 0, r.stderr);
    const [create] = await vzctlCalls(node, "create");
    assert.deepEqual(create.argv.slice(-2), ["--layout", "ploop"]);
    assert.match(await conf(node), /^VE_LAYOUT="ploop"$/m);
    assert.deepEqual(
      [...Deno.readDirSync(`${images}/private`)].map((e) => e.name),
      ["root.hdd"],
      "the private area holds the image only",
    );
    // the context files and the rc.local hook are inside the container
    const ls = await node.tool("vzctl", ["exec", "1045", "cat mnt/id_rsa.pub etc/rc.d/rc.local"]);
    assert.match(
      ls.stdout,
      /^ssh-rsa AAAA test\n[\s\S]*\/mnt\/init\.sh # onevz: OpenNebula context\n$/,
    );
    const s = await node.action("shutdown", ["1045"]);
    assert.equal(s.code, 0, s.stderr);
    const names = await members((await runEpilog(node, 45, { savedDisk: 0 }))!);
    assert.ok(names.includes("./mnt/id_rsa.pub") && names.includes("./etc/rc.d/rc.local"));
    assert.ok(!names.some((n) => n.includes("root.hdd")), names.join());
    assert.ok(!(await Deno.stat(`${node.root}/etc/vz/conf/1045.conf`).catch(() => null)));
  } finally {
    await node.cleanup();
    await node0.cleanup();
  }
});

Deno.test("vzctl 3.0.30.2: create without --layout; LAYOUT = ploop is refused before anything", async () => {
  const node = await makeSimNode({ vzctl: "3.0.30.2" });
  try {
    await prolog(node, 45, await makeTemplateTarball("gz")); // 3.0.x reads .tar and .tar.gz only
    const r = await node.action("deploy", DEPLOY(node), VPS145);
    assert.equal(r.code, 0, r.stderr);
    const [create] = await vzctlCalls(node, "create");
    assert.ok(!create.argv.includes("--layout"), create.argv.join(" "));
  } finally {
    await node.cleanup();
  }
  const holder = await makeSimNode();
  const old = await makeSimNode({
    vzctl: "3.0.30.2",
    defaults: await defaultsWith(holder, 'LAYOUT = "ploop"'),
  });
  try {
    await prolog(old, 45, await makeTemplateTarball("gz"));
    const before = await old.snapshot();
    const r = await old.action("deploy", DEPLOY(old), VPS145);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /LAYOUT is ploop but .* runs vzctl 3\.0\.30\.2, which has no ploop/);
    assert.deepEqual(await old.snapshot(), before);
    assert.equal((await vzctlCalls(old, "create")).length, 0);
  } finally {
    await old.cleanup();
    await holder.cleanup();
  }
});

Deno.test("a leftover CTID.conf (interrupted create: the sample, no VE_PRIVATE/VE_LAYOUT) is removed", async () => {
  const node = await makeSimNode({ init: ["--ve-layout", "simfs"] });
  try {
    const images = await prolog(node, 45);
    // `vzctl create` killed mid-way: sample copied, private area locked (empty), .tmp partial
    const sample = await Deno.readTextFile(`${node.root}/etc/vz/conf/ve-vswap-256m.conf-sample`);
    await Deno.writeTextFile(`${node.root}/etc/vz/conf/1045.conf`, sample);
    await Deno.mkdir(`${images}/private`);
    await Deno.mkdir(`${images}/private.tmp/etc`, { recursive: true });
    const r = await node.action("deploy", DEPLOY(node), VPS145);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /removed .*1045\.conf: a config without a private area .*no VE_LAYOUT/);
    assert.match(await conf(node), /^VE_LAYOUT="simfs"$/m);
    assert.match((await node.tool("vzctl", ["status", "1045"])).stdout, /exist mounted running/);
  } finally {
    await node.cleanup();
  }
});

Deno.test("a leftover config of this VM without its private area (rollback cut short) is removed", async () => {
  const node = await makeSimNode();
  try {
    const images = await prolog(node, 45);
    await Deno.writeTextFile(
      `${node.root}/etc/vz/conf/1045.conf`,
      `VE_ROOT="${images}/root"\nVE_PRIVATE="${images}/private"\nOSTEMPLATE="centos-5-x86"\n`,
    );
    const r = await node.action("deploy", DEPLOY(node), VPS145);
    assert.equal(r.code, 0, r.stderr);
    assert.match(await conf(node), /^VE_LAYOUT="simfs"$/m);
    // a config whose private area has files is never removed: it is the VM's container
    assert.equal((await node.tool("vzctl", ["stop", "1045"])).code, 0);
    const again = await node.action("deploy", [`${node.vmDir}45/images/deployment.1`], VPS145);
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /removed/);
    assert.equal((await vzctlCalls(node, "create")).length, 1, "adopted, not recreated");
  } finally {
    await node.cleanup();
  }
});

Deno.test("restore completes a recreated config saved without VE_LAYOUT (a vzctl 3.0.x node's)", async () => {
  const node = await makeSimNode();
  try {
    const images = await prolog(node, 45);
    assert.equal((await node.action("deploy", DEPLOY(node), VPS145)).code, 0);
    const cp = `${images}/checkpoint`;
    const s = await node.action("save", ["1045", cp]);
    assert.equal(s.code, 0, s.stderr);
    // cold migration from a 3.0.x node: the copy has no VE_LAYOUT, this node has no config
    const copy = `${images}/ctid.conf`;
    await Deno.writeTextFile(
      copy,
      (await Deno.readTextFile(copy)).replace(/^VE_LAYOUT=.*\n/m, ""),
    );
    await Deno.remove(`${node.root}/etc/vz/conf/1045.conf`);
    const r = await node.action("restore", [cp]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(await conf(node), /^VE_LAYOUT="simfs"$/m);
    assert.match((await node.tool("vzctl", ["status", "1045"])).stdout, /running/);
  } finally {
    await node.cleanup();
  }
});

Deno.test("a duplicated VE_PRIVATE: onevz uses the first occurrence, as vzctl does", async () => {
  const node = await makeSimNode();
  try {
    await prolog(node, 45);
    assert.equal((await node.action("deploy", DEPLOY(node), VPS145)).code, 0);
    await Deno.writeTextFile(
      `${node.root}/etc/vz/conf/1045.conf`,
      'VE_PRIVATE="/nonexistent/99/images/private"\n',
      { append: true },
    );
    const st = await node.tool("vzctl", ["status", "1045"]);
    assert.match(
      st.stderr,
      /duplicate for VE_PRIVATE \("\/nonexistent\/99\/images\/private"\), ignored/,
    );
    const p = await node.action("poll", ["1045"]);
    assert.match(p.stdout, /^STATE=a /);
    const s = await node.action("shutdown", ["1045"]);
    assert.equal(s.code, 0, s.stderr);
    const saved = (await runEpilog(node, 45, { savedDisk: 0 }))!;
    assert.ok((await members(saved)).includes("./mnt/id_rsa.pub"));
  } finally {
    await node.cleanup();
  }
});
