/**
 * Containers openvz4opennebula 1.0.0 deployed, after onevz replaces its scripts
 * (docs/UPGRADING.md). The seed puts VE_PRIVATE/VE_ROOT in $VM_DIR/<vid>/images, as onevz
 * does, but its CTID scheme is not known (not in the seed document): these containers get a
 * CTID that is not VMID + CTID_OFFSET (here 145 for VM 45), and onevz's deployment copy
 * (R/deployment.<n>) may be missing. On a simulated node, locally: the VMM actions as
 * one_vmm_ssh starts them, the epilog through onevz's tm-mv/tm-delete (tm_ovz).
 */
import assert from "node:assert/strict";
import {
  makeSimNode,
  makeTemplateTarball,
  REPO,
  runEpilog,
  type SimNode,
} from "./helpers/simnode.ts";

const VPS145 = await Deno.readTextFile(`${REPO}/fixtures/templates/vps145.xml`);
const OLD_CTID = "145";

/** VM 45 as openvz4opennebula left it: CT 145 running from R, the TM's R/disk.0 beside it. */
async function oldVm(node: SimNode, opts: { deploymentCopy?: boolean } = {}) {
  const r = `${node.vmDir}45/images`;
  await Deno.mkdir(r, { recursive: true });
  await Deno.writeFile(`${r}/disk.0`, await makeTemplateTarball("bz2"));
  const created = await node.tool("vzctl", [
    "create",
    OLD_CTID,
    "--ostemplate",
    "centos-6-x86_64",
    "--private",
    `${r}/private`,
    "--root",
    `${r}/root`,
    "--layout",
    "simfs",
  ]);
  assert.equal(created.code, 0, created.stderr);
  assert.equal((await node.tool("vzctl", ["start", OLD_CTID])).code, 0);
  await Deno.writeTextFile(`${r}/private/root/work.txt`, "made while it ran\n");
  if (opts.deploymentCopy) await Deno.writeTextFile(`${r}/deployment.0`, VPS145);
  return r;
}

async function tarList(path: string): Promise<string[]> {
  const out = await new Deno.Command("tar", { args: ["-tf", path], stdout: "piped" }).output();
  assert.equal(out.code, 0, `tar -tf ${path}`);
  return new TextDecoder().decode(out.stdout).split("\n").map((l) => l.replace(/^\.\//, ""));
}

const node = () => makeSimNode({ flavour: "ubc", templates: ["centos-6-x86_64"] });

Deno.test("upgrade: an old container answers to the deploy id oned stored (poll, shutdown)", async () => {
  const n = await node();
  try {
    await oldVm(n, { deploymentCopy: true });
    const poll = await n.action("poll", [OLD_CTID]);
    assert.equal(poll.code, 0, poll.stderr);
    assert.match(poll.stdout, /^STATE=a /);
    const down = await n.action("shutdown", [OLD_CTID]);
    assert.equal(down.code, 0, down.stderr);
    assert.match((await n.tool("vzctl", ["status", OLD_CTID])).stdout, /exist unmounted down/);
  } finally {
    await n.cleanup();
  }
});

Deno.test("upgrade: a saved disk of an old container without a deployment copy is refused, the container kept", async () => {
  const n = await node();
  try {
    const r = await oldVm(n);
    assert.equal((await n.action("shutdown", [OLD_CTID])).code, 0);
    // Without a deployment copy the epilog's MV used to send R/disk.0, the untouched image, as
    // the saved disk, and DELETE then destroyed the container: its work was lost.
    await assert.rejects(runEpilog(n, 45, { savedDisk: 0 }), (e: Error) => {
      assert.match(e.message, /holds the files of container 145/);
      assert.match(e.message, /copy the VM's deployment file from the front-end/);
      return true;
    });
    assert.match((await n.tool("vzctl", ["status", OLD_CTID])).stdout, /exist/);
    assert.equal(await Deno.readTextFile(`${r}/private/root/work.txt`), "made while it ran\n");

    // The documented way out: the deployment file copied into R, the transfer run again.
    await Deno.writeTextFile(`${r}/deployment.0`, VPS145);
    const saved = await runEpilog(n, 45, { savedDisk: 0 });
    assert.ok((await tarList(saved!)).includes("root/work.txt"), "the saved disk is the CT's");
    assert.match((await n.tool("vzctl", ["status", OLD_CTID])).stdout, /deleted/);
  } finally {
    await n.cleanup();
  }
});

Deno.test("upgrade: a restart DEPLOY never gives an old container's files a second CTID", async () => {
  const n = await node();
  try {
    const r = await oldVm(n, { deploymentCopy: true });
    for (const f of ["init.sh", "id_rsa.pub", "context.sh"]) {
      await Deno.mkdir(`${r}/disk.2`, { recursive: true });
      await Deno.writeTextFile(`${r}/disk.2/${f}`, "# context\n");
    }
    assert.equal((await n.tool("vzctl", ["stop", OLD_CTID])).code, 0);
    // VM 45 gets CTID 1045 (CTID_OFFSET 1000): adopting R/private under it used to register
    // a second container (1045) on the private area of 145.
    const again = await n.action("deploy", [`${r}/deployment.1`], VPS145);
    assert.equal(again.code, 1, again.stderr);
    assert.match(again.stderr.split("\n")[0], /holds the files of container 145/);
    assert.match(again.stderr, /set CTID_OFFSET/);
    const list = await n.tool("vzlist", ["-a", "-H", "-o", "ctid"]);
    assert.deepEqual(list.stdout.trim().split(/\s+/), [OLD_CTID]);
    assert.equal(await Deno.readTextFile(`${r}/private/root/work.txt`), "made while it ran\n");
  } finally {
    await n.cleanup();
  }
});

Deno.test("upgrade: restoring an old checkpoint: the deploy id (patched one_vmm_ssh.rb) or nothing wrong", async () => {
  const n = await node();
  try {
    const r = await oldVm(n, { deploymentCopy: true });
    // openvz4opennebula's save: a plain vzctl checkpoint, no record of onevz's beside it.
    const chk = await n.tool("vzctl", ["chkpnt", OLD_CTID, "--dumpfile", `${r}/checkpoint`]);
    assert.equal(chk.code, 0, chk.stderr);
    // The stock one_vmm_ssh.rb passes the checkpoint only: onevz falls back to VMID +
    // CTID_OFFSET = 1045, which is not this container; it says so and changes nothing.
    const stock = await n.action("restore", [`${r}/checkpoint`]);
    assert.equal(stock.code, 1);
    assert.match(stock.stderr, /container 1045 has no config/);
    assert.match((await n.tool("vzctl", ["status", OLD_CTID])).stdout, /down/);
    // The seed's patched one_vmm_ssh.rb also passes the deploy id: the right container.
    const patched = await n.action("restore", [`${r}/checkpoint`, OLD_CTID]);
    assert.equal(patched.code, 0, patched.stderr);
    assert.match((await n.tool("vzctl", ["status", OLD_CTID])).stdout, /running/);
  } finally {
    await n.cleanup();
  }
});
