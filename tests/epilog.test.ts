/**
 * Shutdown, the epilog and the recovery paths on a simulated node, locally (no ssh): the VMM
 * actions run as one_vmm_ssh starts them, the TM actions (tm-mv, tm-delete) as one_tm does,
 * with the node reached as `localhost:` (the same code as over ssh, see tests/e2e/
 * roundtrip.test.ts for the ssh test bed). What oned does on its side is only what 2.2.1
 * does: `onevm saveas` changes nothing on the node, the epilog is `MV <node>:R/disk.<os>
 * FE:L/disk.<os>` for a saved disk and then `DELETE <node>:R`.
 *
 * Families:
 *  - saves: a disk oned saves holds the container's files whatever the deployment copy says
 *    (saveas), and never the untouched OS image (a container gone at shutdown);
 *  - recovery: restart DEPLOYs adopt and never discard; an orphan private area is adopted and
 *    a failure removes only what that deploy made; poll answers d only when it knows;
 *    tm-delete refuses to take a registered container's files; tm-mv/tm-delete run twice.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import {
  DENO,
  makeSimNode,
  makeTemplateTarball,
  REPO,
  run,
  type SimNode,
} from "./helpers/simnode.ts";
import { hangCount, killAction, spawnAction, waitForHang } from "./hardening/fault_node.ts";

const OPTS = { sanitizeOps: false, sanitizeResources: false } as const;
const cdata = (k: string, v: string) => `<${k}><![CDATA[${v}]]></${k}>`;

/** A deployment document as oned 2.2.1 writes it (one OS disk from an image). */
function template(vid: number, image: string, save = "NO"): string {
  const disk = cdata("CLONE", "YES") + cdata("DISK_ID", "0") + cdata("IMAGE", image) +
    cdata("IMAGE_ID", "3") + cdata("READONLY", "NO") + cdata("SAVE", save) +
    cdata("SOURCE", `/srv/cloud/one/var//images/${image}`) + cdata("TARGET", "hda") +
    cdata("TYPE", "DISK");
  return `<TEMPLATE>${cdata("CPU", "0.5")}<DISK>${disk}</DISK>${cdata("MEMORY", "256")}` +
    `${cdata("NAME", `one-${vid}`)}${cdata("VMID", String(vid))}</TEMPLATE>`;
}

interface Vm {
  vid: number;
  ctid: string;
  /** R as oned spells it (VM_DIR ends in "/"). */
  r: string;
  /** R on the test machine. */
  dir: string;
  xml: string;
}

class Site {
  constructor(readonly node: SimNode, readonly fe: string) {}
  /** The TM's environment: VM_DIR, the node's simulated root, the front-end's own names. */
  tmEnv(extra: Record<string, string> = {}) {
    return {
      ...this.node.env,
      ONEVZ_VM_DIR: this.node.vmDir,
      ONEVZ_NODE_SYSROOT: this.node.root,
      ...extra,
    };
  }
  tm(action: string, args: string[], extra: Record<string, string> = {}) {
    return run(
      DENO,
      ["run", "-A", "--quiet", `${REPO}/main.ts`, action, ...args],
      { env: this.tmEnv(extra) },
    );
  }
  async status(ctid: string) {
    return (await this.node.tool("vzctl", ["status", ctid])).stdout.trim();
  }
  async poll(ctid: string) {
    const r = await this.node.action("poll", [ctid]);
    assert.equal(r.code, 0, r.stderr);
    return /STATE=(\S)/.exec(r.stdout)![1];
  }
  /** The prolog (the OS image at R/disk.0) and DEPLOY. */
  async deploy(vid: number, image = "centos-5-x86", bytes?: Uint8Array): Promise<Vm> {
    const dir = `${this.node.vmDir}${vid}/images`;
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeFile(`${dir}/disk.0`, bytes ?? await makeTemplateTarball("bz2"));
    const xml = template(vid, image);
    const r = this.node.vmDir + `/${vid}/images`;
    const d = await this.node.action("deploy", [`${r}/deployment.0`], xml);
    assert.equal(d.code, 0, d.stderr);
    // The template has no /root: the user's home, where the tests write "their" files.
    await Deno.mkdir(`${dir}/private/root`, { recursive: true });
    return { vid, ctid: String(1000 + vid), r, dir, xml };
  }
  /** The epilog of a shutdown: MV of the saved disk (when oned saves it), then DELETE. */
  async epilog(vm: Vm, saved: boolean) {
    const steps = [];
    if (saved) {
      await Deno.mkdir(`${this.fe}/${vm.vid}`, { recursive: true });
      steps.push(
        await this.tm("tm-mv", [`localhost:${vm.r}/disk.0`, `${this.fe}/${vm.vid}/disk.0`]),
      );
    }
    if (steps.every((s) => s.code === 0)) {
      steps.push(await this.tm("tm-delete", [`localhost:${vm.r}`]));
    }
    return steps;
  }
}

function siteTest(name: string, fn: (s: Site) => Promise<void>) {
  Deno.test({
    name,
    ...OPTS,
    fn: async () => {
      const node = await makeSimNode({ flavour: "ubc" });
      const fe = `${node.dir}/fe`;
      await Deno.mkdir(fe);
      try {
        await fn(new Site(node, fe));
      } finally {
        await node.cleanup();
      }
    },
  });
}

const tarList = async (path: string) => {
  const r = await run("tar", ["-tf", path]);
  assert.equal(r.code, 0, `${path} is a tar archive: ${r.stderr}`);
  return r.stdout.split("\n").filter((l) => l).map((l) => l.replace(/^\.\//, ""));
};

// ---------------------------------------------------------------------------------------------
// saves

siteTest("saves: saveas after deploy → the saved image holds the container's files", async (s) => {
  const vm = await s.deploy(7);
  await Deno.writeTextFile(`${vm.dir}/private/root/notes.txt`, "written inside the CT\n");
  // onevm saveas 7 0 centos-5-mine: oned's database only; deployment.0 still says SAVE=NO.
  assert.match(await Deno.readTextFile(`${vm.dir}/deployment.0`), /SAVE><!\[CDATA\[NO/);
  const sd = await s.node.action("shutdown", [vm.ctid]);
  assert.equal(sd.code, 0, sd.stderr);
  // Kept for the epilog: stopped, its files there; oned's next poll would see it gone.
  assert.match(await s.status(vm.ctid), /exist unmounted down/);
  assert.equal(await s.poll(vm.ctid), "d");
  const [mv, del] = await s.epilog(vm, true);
  assert.equal(mv.code, 0, mv.stderr + mv.stdout);
  assert.equal(del.code, 0, del.stderr + del.stdout);
  const saved = `${s.fe}/7/disk.0`;
  assert.ok((await tarList(saved)).includes("root/notes.txt"), "the file is in the saved image");
  assert.equal((await run("bzip2", ["-t", saved])).code, 0, "bzip2, like the TM's image");
  // DELETE destroyed the container: no config, no R, poll d.
  assert.ok(!existsSync(`${s.node.root}/etc/vz/conf/${vm.ctid}.conf`));
  assert.ok(!existsSync(vm.dir));
  assert.equal(await s.poll(vm.ctid), "d");
  // image.rb moves it to the image's SOURCE; a new VM from that image holds the file.
  const again = await s.deploy(8, "centos-5-mine", await Deno.readFile(saved));
  assert.equal(
    await Deno.readTextFile(`${again.dir}/private/root/notes.txt`),
    "written inside the CT\n",
  );
});

siteTest("saves: shutdown without a saved disk → DELETE destroys the CT, no ghost", async (s) => {
  const vm = await s.deploy(9);
  assert.equal((await s.node.action("shutdown", [vm.ctid])).code, 0);
  // A shutdown run again (a retried action) finds it already shut down.
  const again = await s.node.action("shutdown", [vm.ctid]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /already shut down/);
  const [del] = await s.epilog(vm, false);
  assert.equal(del.code, 0, del.stderr + del.stdout);
  assert.match(del.stdout, /Destroyed container 1009/);
  assert.match(await s.status(vm.ctid), /deleted/);
  const list = await s.node.tool("vzlist", ["-a", "-H", "-o", "ctid"]);
  assert.doesNotMatch(list.stdout, /1009/);
  assert.ok(!existsSync(vm.dir));
});

siteTest(
  "saves: a container gone at shutdown → no untouched image as the saved disk",
  async (s) => {
    // SAVE=yes in the deployment copy, container destroyed behind oned's back.
    const vm = await s.deploy(10);
    const xml = (await Deno.readTextFile(`${vm.dir}/deployment.0`)).replace(
      "<SAVE><![CDATA[NO]]></SAVE>",
      "<SAVE><![CDATA[YES]]></SAVE>",
    );
    await Deno.writeTextFile(`${vm.dir}/deployment.0`, xml);
    await s.node.tool("vzctl", ["stop", vm.ctid]);
    await s.node.tool("vzctl", ["destroy", vm.ctid]);
    const sd = await s.node.action("shutdown", [vm.ctid]);
    assert.equal(sd.code, 1, sd.stdout + sd.stderr);
    assert.match(sd.stderr, /nothing to archive for DISK 0, which is to be saved/);
    // Without SAVE in the copy (a saveas) shutdown cannot know; the epilog's MV refuses.
    await Deno.writeTextFile(`${vm.dir}/deployment.0`, vm.xml);
    assert.equal((await s.node.action("shutdown", [vm.ctid])).code, 0);
    const [mv] = await s.epilog(vm, true);
    assert.equal(mv.code, 1, mv.stdout);
    assert.match(mv.stderr, /nothing to save .*refusing to hand back the untouched OS image/);
    assert.ok(!existsSync(`${s.fe}/10/disk.0`));
    assert.ok(existsSync(`${vm.dir}/disk.0`), "the failed MV left its source");
  },
);

siteTest(
  "saves: the archive fails (disk full on the front-end) → nothing saved, R intact",
  async (s) => {
    const vm = await s.deploy(11);
    const dd = await run("dd", ["if=/dev/urandom", `of=${vm.dir}/private/big`, "bs=1M", "count=3"]);
    assert.equal(dd.code, 0, dd.stderr);
    assert.equal((await s.node.action("shutdown", [vm.ctid])).code, 0);
    const small = `${s.fe}/11`;
    await Deno.mkdir(small);
    const mount = await run("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", small]);
    if (mount.code !== 0) return; // not allowed to mount here
    try {
      const mv = await s.tm("tm-mv", [`localhost:${vm.r}/disk.0`, `${small}/disk.0`]);
      assert.equal(mv.code, 1, mv.stdout);
      assert.deepEqual([...Deno.readDirSync(small)], [], "no partial archive under any name");
      assert.ok(existsSync(`${vm.dir}/private/big`) && existsSync(`${vm.dir}/disk.0`));
      assert.match(await s.status(vm.ctid), /exist unmounted down/);
    } finally {
      await run("umount", [small]);
    }
    // Space comes back: the retried TRANSFER saves it.
    const mv = await s.tm("tm-mv", [`localhost:${vm.r}/disk.0`, `${small}/disk.0`]);
    assert.equal(mv.code, 0, mv.stderr);
    assert.ok((await tarList(`${small}/disk.0`)).includes("big"));
  },
);

// ---------------------------------------------------------------------------------------------
// recovery

siteTest("recovery: cancel after shutdown still destroys the container", async (s) => {
  const vm = await s.deploy(12);
  assert.equal((await s.node.action("shutdown", [vm.ctid])).code, 0);
  const c = await s.node.action("cancel", [vm.ctid]);
  assert.equal(c.code, 0, c.stderr);
  assert.match(await s.status(vm.ctid), /deleted/);
  assert.ok(!existsSync(`${s.node.root}/etc/vz/conf/${vm.ctid}.conf`));
});

siteTest("recovery: restart DEPLOYs adopt a stopped or shut down CT, files intact", async (s) => {
  const vm = await s.deploy(13);
  await Deno.writeTextFile(`${vm.dir}/private/root/keep`, "mine\n");
  // The guest halted (poll d → UNKNOWN), oned restarts it with a new DEPLOY.
  await s.node.tool("vzctl", ["stop", vm.ctid]);
  assert.equal(await s.poll(vm.ctid), "d");
  const d1 = await s.node.action("deploy", [`${vm.r}/deployment.1`], vm.xml);
  assert.equal(d1.code, 0, d1.stderr);
  assert.match(await s.status(vm.ctid), /running/);
  // A shutdown whose epilog never came, then a DEPLOY: started as it is, marker gone.
  assert.equal((await s.node.action("shutdown", [vm.ctid])).code, 0);
  const d2 = await s.node.action("deploy", [`${vm.r}/deployment.2`], vm.xml);
  assert.equal(d2.code, 0, d2.stderr);
  assert.match(d2.stderr, /was shut down .* started again/);
  assert.match(await s.status(vm.ctid), /running/);
  assert.ok(!existsSync(`${vm.dir}/.onevz-shutdown.json`));
  assert.equal(await Deno.readTextFile(`${vm.dir}/private/root/keep`), "mine\n");
});

siteTest(
  "recovery: a restart DEPLOY killed while adopting → the next one adopts, never rebuilds",
  async (s) => {
    const vm = await s.deploy(14);
    await Deno.writeTextFile(`${vm.dir}/private/root/keep`, "mine\n");
    await s.node.tool("vzctl", ["stop", vm.ctid]);
    await s.node.tool("ovzsim", ["fault", s.node.root, "vzctl", "start", "1", "x", "--hang"]);
    const seen = await hangCount(s.node);
    const killed = spawnAction(s.node, "deploy", [`${vm.r}/deployment.1`], vm.xml);
    await waitForHang(s.node, seen);
    await killAction(killed);
    const owner = JSON.parse(await Deno.readTextFile(`${vm.dir}/.onevz.lock/owner`));
    assert.equal(owner.action, "deploy", "the killed deploy's lock is left behind");
    await s.node.tool("ovzsim", ["clear-faults", s.node.root]);
    const next = await s.node.action("deploy", [`${vm.r}/deployment.1`], vm.xml);
    assert.equal(next.code, 0, next.stderr);
    assert.match(next.stderr, /broke the lock of an interrupted deploy/);
    assert.equal(await Deno.readTextFile(`${vm.dir}/private/root/keep`), "mine\n");
    assert.match(await s.status(vm.ctid), /running/);
    const creates = (await s.node.calls()).filter((c) => c.argv.includes("create"));
    assert.equal(creates.length, 1, "created once, by the first deploy");
  },
);

siteTest(
  "recovery: a deploy killed after create (never started) → rebuilt from the template",
  async (s) => {
    const dir = `${s.node.vmDir}15/images`;
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeFile(`${dir}/disk.0`, await makeTemplateTarball("bz2"));
    const r = `${s.node.vmDir}/15/images`;
    await s.node.tool("ovzsim", ["fault", s.node.root, "vzctl", "set", "1", "x", "--hang"]);
    const seen = await hangCount(s.node);
    const killed = spawnAction(
      s.node,
      "deploy",
      [`${r}/deployment.0`],
      template(15, "centos-5-x86"),
    );
    await waitForHang(s.node, seen);
    await killAction(killed);
    assert.ok(existsSync(`${dir}/.onevz-deploy.json`), "the marker says: created, not started");
    await s.node.tool("ovzsim", ["clear-faults", s.node.root]);
    const next = await s.node.action("deploy", [`${r}/deployment.0`], template(15, "centos-5-x86"));
    assert.equal(next.code, 0, next.stderr);
    assert.match(next.stderr, /interrupted before starting it: rebuilding/);
    assert.match(await s.status("1015"), /running/);
    assert.ok(!existsSync(`${dir}/.onevz-deploy.json`));
  },
);

siteTest(
  "recovery: R/private without a config → adopted; a failure removes only the new config",
  async (s) => {
    const vm = await s.deploy(16);
    await Deno.writeTextFile(`${vm.dir}/private/root/keep`, "mine\n");
    await s.node.tool("vzctl", ["stop", vm.ctid]);
    // Node reinstalled with /vz kept: the config is gone, R/private holds the files.
    await Deno.remove(`${s.node.root}/etc/vz/conf/${vm.ctid}.conf`);
    // First try: the plan's vzctl set fails → only the config this deploy made goes.
    await s.node.tool("ovzsim", [
      "fault",
      s.node.root,
      "vzctl",
      "set",
      "1",
      "boom",
      "--times",
      "2",
    ]);
    const failed = await s.node.action("deploy", [`${vm.r}/deployment.1`], vm.xml);
    assert.equal(failed.code, 1, failed.stderr);
    assert.equal(await Deno.readTextFile(`${vm.dir}/private/root/keep`), "mine\n");
    assert.ok(!existsSync(`${s.node.root}/etc/vz/conf/${vm.ctid}.conf`));
    assert.ok(!existsSync(`${vm.dir}/.private.onevz-scratch`));
    await s.node.tool("ovzsim", ["clear-faults", s.node.root]);
    const ok = await s.node.action("deploy", [`${vm.r}/deployment.1`], vm.xml);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /adopting them/);
    assert.match(await s.status(vm.ctid), /exist mounted running/);
    assert.equal(await Deno.readTextFile(`${vm.dir}/private/root/keep`), "mine\n");
    const conf = await Deno.readTextFile(`${s.node.root}/etc/vz/conf/${vm.ctid}.conf`);
    assert.match(conf, new RegExp(`^VE_PRIVATE="?${vm.dir.replace(/\/+/g, "/")}/private"?$`, "m"));
  },
);

siteTest("recovery: poll answers d only where OpenVZ can be observed", async (s) => {
  assert.equal(await s.poll("4242"), "d");
  // No OpenVZ kernel (/proc/vz missing): fail, do not claim the CT is gone.
  await Deno.rename(`${s.node.root}/proc/vz`, `${s.node.root}/proc/vz.off`);
  const r = await s.node.action("poll", ["4242"]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /cannot observe OpenVZ .*veinfo/);
  await Deno.rename(`${s.node.root}/proc/vz.off`, `${s.node.root}/proc/vz`);
  // No vzctl configuration: the same.
  await Deno.rename(`${s.node.root}/etc/vz/vz.conf`, `${s.node.root}/etc/vz/vz.conf.off`);
  const r2 = await s.node.action("poll", ["4242"]);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /vz\.conf does not exist/);
});

siteTest(
  "recovery: tm-delete refuses a directory holding a registered CT's private area",
  async (s) => {
    const vm = await s.deploy(17);
    const noWait = { ONEVZ_DELETE_WAIT: "0" };
    for (const state of ["running", "mounted", "stopped, not shut down by onevz"]) {
      if (state === "mounted") {
        await s.node.tool("vzctl", ["stop", vm.ctid]);
        await s.node.tool("vzctl", ["mount", vm.ctid]);
      }
      if (state.startsWith("stopped")) await s.node.tool("vzctl", ["umount", vm.ctid]);
      for (const path of [vm.r, `${s.node.vmDir}/17`]) {
        const d = await s.tm("tm-delete", [`localhost:${path}`], noWait);
        assert.equal(d.code, 1, `${state}: ${d.stdout}`);
        assert.match(
          d.stderr,
          new RegExp(`holds the private area of container 1017 \\(${state}\\)`),
        );
        assert.ok(existsSync(`${vm.dir}/private/etc/redhat-release`), `${state}: files kept`);
      }
    }
    // The VM's own shutdown lets it go.
    assert.equal((await s.node.action("shutdown", [vm.ctid])).code, 0);
    assert.equal((await s.tm("tm-delete", [`localhost:${vm.r}`], noWait)).code, 0);
    assert.ok(!existsSync(vm.dir));
  },
);

siteTest("recovery: tm-mv of a running container's OS disk is refused", async (s) => {
  const vm = await s.deploy(18);
  await Deno.mkdir(`${s.fe}/18`);
  const mv = await s.tm("tm-mv", [`localhost:${vm.r}/disk.0`, `${s.fe}/18/disk.0`]);
  assert.equal(mv.code, 1);
  assert.match(mv.stderr, /container 1018 is running/);
  assert.ok(existsSync(`${vm.dir}/disk.0`));
  assert.ok(!existsSync(`${s.fe}/18/disk.0`));
});

siteTest("recovery: tm-mv and tm-delete run twice (a retried TRANSFER)", async (s) => {
  const vm = await s.deploy(19);
  await Deno.writeTextFile(`${vm.dir}/private/root/notes.txt`, "v1\n");
  assert.equal((await s.node.action("shutdown", [vm.ctid])).code, 0);
  await Deno.mkdir(`${s.fe}/19`);
  const args = [`localhost:${vm.r}/disk.0`, `${s.fe}/19/disk.0`];
  for (const round of [1, 2]) {
    const mv = await s.tm("tm-mv", args);
    assert.equal(mv.code, 0, `round ${round}: ${mv.stderr}`);
    assert.ok((await tarList(`${s.fe}/19/disk.0`)).includes("root/notes.txt"));
  }
  for (const round of [1, 2]) {
    const del = await s.tm("tm-delete", [`localhost:${vm.r}`]);
    assert.equal(del.code, 0, `round ${round}: ${del.stderr}`);
  }
  assert.ok(!existsSync(vm.dir));
  // A plain move of a directory, twice: the second finds it at the destination.
  await Deno.mkdir(`${s.fe}/20/images`, { recursive: true });
  await Deno.writeTextFile(`${s.fe}/20/images/checkpoint`, "dump");
  const back = [`${s.fe}/20/images`, `localhost:${s.node.vmDir}/20/images`];
  for (const round of [1, 2]) {
    const mv = await s.tm("tm-mv", back);
    assert.equal(mv.code, 0, `round ${round}: ${mv.stderr}`);
  }
  assert.equal(await Deno.readTextFile(`${s.node.vmDir}20/images/checkpoint`), "dump");
});
