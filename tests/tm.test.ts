// Transfer manager actions over real ssh (the test bed's nodes), run the way one_tm runs them:
// `tm-<action> <args>` on the front-end (this machine), nodes reached with ssh -F bed.sshConfig.
import assert from "node:assert/strict";
import { type Bed, bedSite, DENO, REPO_ROOT, RUN_PROBES, startBed } from "./testbed/mod.ts";
import * as one from "../fixtures/oned/driver.ts";
import { install } from "../src/admin/install.ts";
import { installPaths } from "../src/admin/layout.ts";
import { deleteRefusal } from "../src/actions/tm/delete.ts";
import { parseTmArg } from "../src/actions/tm/common.ts";

// oned's VM_DIR has a trailing slash and oned adds "/<vid>": paths hold "//".
const VM = "/srv/onevz-node/vm/";
const dec = new TextDecoder();

interface Tm {
  code: number;
  stdout: string;
  stderr: string;
  /** ssh invocations made by the action (argv joined), from the ONEVZ_SSH wrapper. */
  ssh: string[];
}

async function sshWrapper(dir: string): Promise<string> {
  const path = `${dir}/ssh-logging`;
  await Deno.writeTextFile(
    path,
    `#!/bin/bash\nprintf '%s\\n' "$*" >> ${dir}/ssh.log\n` +
      // ONEVZ_TEST_CORRUPT: truncate image uploads in flight (a broken transfer).
      `if [ -n "\${ONEVZ_TEST_CORRUPT:-}" ] && [[ "$*" == *" dd of="* ]]; then\n` +
      `  { head -c 1000; cat >/dev/null; } | ssh "$@"; exit\nfi\nexec ssh "$@"\n`,
    { mode: 0o755 },
  );
  return path;
}

async function tm(
  bed: Bed,
  fe: string,
  action: string,
  args: string[],
  extraEnv: Record<string, string> = {},
): Promise<Tm> {
  await Deno.writeTextFile(`${fe}/ssh.log`, "");
  const r = await new Deno.Command(DENO, {
    args: ["run", "-A", "--quiet", `${REPO_ROOT}/main.ts`, action, ...args],
    env: {
      ...bed.env,
      ONEVZ_SSH: `${fe}/ssh-logging`,
      ONEVZ_VM_DIR: VM,
      ONEVZ_FE_NAMES: "fe",
      // The front-end's OpenNebula lives in fe: var/<vid>/context.sh, share/context.
      ONE_LOCATION: fe,
      TMPDIR: fe,
      ...extraEnv,
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const ssh = (await Deno.readTextFile(`${fe}/ssh.log`)).split("\n").filter((l) => l);
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr), ssh };
}

async function lstat(p: string) {
  try {
    return await Deno.lstat(p);
  } catch {
    return undefined;
  }
}

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

Deno.test("tm: arguments and the delete guard (pure)", () => {
  assert.deepEqual(parseTmArg("cn1:/a/b", new Set()), { host: "cn1", path: "/a/b", local: false });
  assert.deepEqual(parseTmArg("/a:b/c", new Set()), { path: "/a:b/c", local: true });
  assert.equal(parseTmArg("fe:/x", new Set(["fe"])).local, true);
  assert.equal(deleteRefusal("/vz/one/vm//7/images", "/vz/one/vm/"), undefined);
  assert.match(deleteRefusal("/vz/one/vm/", "/vz/one/vm/")!, /not inside/);
  assert.match(deleteRefusal("/vz/one/vm", "/vz/one/vm/")!, /not inside/);
  assert.match(deleteRefusal("/vz/one/vm/7/../../etc", "/vz/one/vm")!, /'\.\.'/);
  assert.match(deleteRefusal("/vz/one/vmx/7", "/vz/one/vm")!, /not inside/);
  assert.match(deleteRefusal("/etc", "/vz/one/vm")!, /not inside/);
  assert.match(deleteRefusal("/vz/one/vm/.onevz-cache", "/vz/one/vm")!, /cache/);
  assert.match(deleteRefusal("7/images", "/vz/one/vm")!, /absolute/);
});

Deno.test({
  name: "tm over ssh: clone via node cache, mv both ways and node to node, delete, context",
  ignore: Deno.uid() !== 0,
  fn: async (t) => {
    const bed = await startBed({
      nodes: [{ name: "cn1" }, { name: "cn2" }],
      frontEnd: false,
      initSimulator: false,
    });
    const fe = await Deno.makeTempDir({ prefix: "onevz-tm-fe-" });
    try {
      await sshWrapper(fe);
      const cn1 = bed.nodes.cn1.fsDir; // what cn1 sees as /srv/onevz-node
      const cn2 = bed.nodes.cn2.fsDir;
      const image = `${fe}/images/0123abcd`;
      await Deno.mkdir(`${fe}/images`);
      const data = bytes(3 * 1024 * 1024 + 17, 7);
      await Deno.writeFile(image, data);

      await t.step("first clone streams the image once and verifies it", async () => {
        const r = await tm(bed, fe, "tm-clone", [`fe:${image}`, `cn1:${VM}/5/images/disk.0`]);
        assert.equal(r.code, 0, r.stderr + r.stdout);
        assert.match(r.stdout, /^tm-clone: cache miss on cn1/m);
        assert.match(r.stdout, new RegExp(`sent ${data.length} bytes`));
        assert.equal(r.ssh.filter((l) => / dd of=/.test(l)).length, 1);
        const placed = await Deno.readFile(`${cn1}/vm/5/images/disk.0`);
        assert.deepEqual(placed, data);
        const cache = [...Deno.readDirSync(`${cn1}/vm/.onevz-cache`)].map((e) => e.name).sort();
        assert.equal(cache.length, 2, "the entry and its verification record");
        assert.match(cache[0], /^[0-9a-f]{64}$/);
        assert.equal(cache[1], `${cache[0]}.verified`);
        // The digest is recorded beside the image, keyed by size and mtime.
        assert.match(await Deno.readTextFile(`${image}.sha256`), /^\d+ \d+ [0-9a-f]{64}\n$/);
      });

      await t.step("second clone of the same image to the same node sends no bytes", async () => {
        const r = await tm(bed, fe, "tm-ln", [`fe:${image}`, `cn1:${VM}/6/images/disk.0`]);
        assert.equal(r.code, 0, r.stderr + r.stdout);
        assert.match(r.stdout, /cache hit on cn1: .*; 0 image bytes sent\)/);
        assert.equal(r.ssh.filter((l) => / dd of=/.test(l)).length, 0, r.ssh.join("\n"));
        assert.deepEqual(await Deno.readFile(`${cn1}/vm/6/images/disk.0`), data);
        const a = await Deno.stat(`${cn1}/vm/5/images/disk.0`);
        const b = await Deno.stat(`${cn1}/vm/6/images/disk.0`);
        assert.equal(a.ino, b.ino, "hard-linked from the cache");
        // Another node has no cache entry yet: bytes go there.
        const r2 = await tm(bed, fe, "tm-clone", [`fe:${image}`, `cn2:${VM}/7/images/disk.0`]);
        assert.equal(r2.code, 0, r2.stderr);
        assert.equal(r2.ssh.filter((l) => / dd of=/.test(l)).length, 1);
      });

      await t.step("a corrupted transfer or missing source never leaves a final file", async () => {
        const r = await tm(bed, fe, "tm-clone", [`fe:${fe}/nope`, `cn1:${VM}/8/images/disk.0`]);
        assert.equal(r.code, 1);
        assert.match(
          r.stderr,
          /^ERROR MESSAGE --8<------\ntm-clone: .*\nERROR MESSAGE ------>8--\n$/,
        );
        assert.equal(await lstat(`${cn1}/vm/8/images/disk.0`), undefined);
        const other = `${fe}/images/other`;
        await Deno.writeFile(other, bytes(200_000, 9));
        const c = await tm(bed, fe, "tm-clone", [other, `cn1:${VM}/8/images/disk.0`], {
          ONEVZ_TEST_CORRUPT: "1",
        });
        assert.equal(c.code, 1, c.stdout);
        assert.match(c.stderr, /checksum mismatch/);
        assert.equal(await lstat(`${cn1}/vm/8/images/disk.0`), undefined);
        assert.equal([...Deno.readDirSync(`${cn1}/vm/.onevz-cache`)].length, 2);
        const left = [...Deno.readDirSync(`${cn1}/vm/.onevz-cache`)].filter((e) =>
          e.name.includes("onevz-tmp")
        );
        assert.deepEqual(left, []);
      });

      await t.step("mv node → front-end (SAVE=yes disk), then front-end → node", async () => {
        await Deno.mkdir(`${fe}/var/5`, { recursive: true });
        const r = await tm(bed, fe, "tm-mv", [
          `cn1:${VM}/5/images/disk.0`,
          `fe:${fe}/var/5/disk.0`,
        ]);
        assert.equal(r.code, 0, r.stderr + r.stdout);
        assert.deepEqual(await Deno.readFile(`${fe}/var/5/disk.0`), data);
        assert.equal(await lstat(`${cn1}/vm/5/images/disk.0`), undefined, "source removed");
        // Stop/resume shape: a whole images directory.
        await Deno.mkdir(`${fe}/var/9/images/sub`, { recursive: true });
        await Deno.writeTextFile(`${fe}/var/9/images/checkpoint`, "dump");
        await Deno.writeTextFile(`${fe}/var/9/images/sub/x`, "x");
        const r2 = await tm(bed, fe, "tm-mv", [`${fe}/var/9/images`, `cn1:${VM}/9/images`]);
        assert.equal(r2.code, 0, r2.stderr + r2.stdout);
        assert.equal(await Deno.readTextFile(`${cn1}/vm/9/images/checkpoint`), "dump");
        assert.equal(await Deno.readTextFile(`${cn1}/vm/9/images/sub/x`), "x");
        assert.equal(await lstat(`${fe}/var/9/images`), undefined);
        assert.deepEqual(
          [...Deno.readDirSync(`${cn1}/vm/9`)].map((e) => e.name),
          ["images"],
          "no temporary directory left",
        );
      });

      await t.step("mv node → node (cold migration) relays through the front-end", async () => {
        const r = await tm(bed, fe, "tm-mv", [`cn1:${VM}/9/images`, `cn2:${VM}/9/images`]);
        assert.equal(r.code, 0, r.stderr + r.stdout);
        assert.equal(await Deno.readTextFile(`${cn2}/vm/9/images/checkpoint`), "dump");
        assert.equal(await lstat(`${cn1}/vm/9/images`), undefined);
        // Same host: a plain mv.
        const r2 = await tm(bed, fe, "tm-mv", [`cn2:${VM}/9/images`, `cn2:${VM}/10/images`]);
        assert.equal(r2.code, 0, r2.stderr);
        assert.ok(await lstat(`${cn2}/vm/10/images/sub/x`));
        // A missing source fails cleanly and leaves the destination alone.
        const r3 = await tm(bed, fe, "tm-mv", [`cn1:${VM}/404/images`, `cn2:${VM}/404/images`]);
        assert.equal(r3.code, 1);
        assert.match(r3.stderr, /does not exist/);
        assert.equal(await lstat(`${cn2}/vm/404/images`), undefined);
      });

      await t.step("delete: inside VM_DIR only", async () => {
        const r = await tm(bed, fe, "tm-delete", [`cn2:${VM}/10/images`]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(await lstat(`${cn2}/vm/10/images`), undefined);
        for (
          const bad of [
            `cn1:${VM}/`,
            `cn1:${VM}/6/../../scripts`,
            "cn1:/srv/onevz-node/scripts",
            `cn1:${VM}/.onevz-cache`,
          ]
        ) {
          const x = await tm(bed, fe, "tm-delete", [bad]);
          assert.equal(x.code, 1, bad);
          assert.match(x.stderr, /ERROR MESSAGE --8<------\ntm-delete: refusing to delete/);
          assert.deepEqual(x.ssh, [], "nothing ran on the node");
        }
        assert.ok(await lstat(`${cn1}/vm/.onevz-cache`));
        assert.ok(await lstat(`${cn1}/vm/6/images/disk.0`));
      });

      await t.step("context: a directory with context.sh and FILES by basename", async () => {
        await Deno.mkdir(`${fe}/var/6`, { recursive: true });
        await Deno.mkdir(`${fe}/share/context`, { recursive: true });
        await Deno.writeTextFile(`${fe}/var/6/context.sh`, 'HOSTNAME="vm6"\n');
        await Deno.writeTextFile(`${fe}/share/context/init.sh`, "echo hi\n");
        await Deno.writeTextFile(`${fe}/share/context/-odd name`, "odd\n");
        const r = await tm(bed, fe, "tm-context", [
          `${fe}/var/6/context.sh`,
          `${fe}/share/context/init.sh`,
          `${fe}/share/context/-odd name`,
          `cn1:${VM}/6/images/disk.1`,
        ]);
        assert.equal(r.code, 0, r.stderr + r.stdout);
        const dir = `${cn1}/vm/6/images/disk.1`;
        assert.ok((await Deno.stat(dir)).isDirectory);
        assert.deepEqual(
          [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
          ["-odd name", "context.sh", "init.sh"],
        );
        assert.equal(await Deno.readTextFile(`${dir}/context.sh`), 'HOSTNAME="vm6"\n');
        // Duplicate basenames and directories are refused before anything is sent.
        await Deno.mkdir(`${fe}/share/context/other`);
        await Deno.writeTextFile(`${fe}/share/context/other/init.sh`, "x");
        const dup = await tm(bed, fe, "tm-context", [
          `${fe}/var/6/context.sh`,
          `${fe}/share/context/init.sh`,
          `${fe}/share/context/other/init.sh`,
          `cn1:${VM}/6/images/disk.2`,
        ]);
        assert.equal(dup.code, 1);
        assert.match(dup.stderr, /share the name 'init.sh'/);
        const notFile = await tm(bed, fe, "tm-context", [
          `${fe}/var/6/context.sh`,
          `${fe}/share/context`,
          `cn1:${VM}/6/images/disk.2`,
        ]);
        assert.equal(notFile.code, 1);
        assert.match(notFile.stderr, /not a regular file/);
        assert.deepEqual(notFile.ssh, []);
      });

      await t.step("mkswap succeeds creating nothing; mkimage fails with the reason", async () => {
        const s = await tm(bed, fe, "tm-mkswap", ["512", `cn1:${VM}/6/images/disk.3`]);
        assert.equal(s.code, 0, s.stderr);
        assert.match(s.stdout, /^tm-mkswap: not creating .*no swap file/m);
        assert.deepEqual(s.ssh, []);
        const m = await tm(bed, fe, "tm-mkimage", ["100", "ext3", `cn1:${VM}/6/images/disk.4`]);
        assert.equal(m.code, 1);
        assert.match(
          m.stderr,
          /ERROR MESSAGE --8<------\ntm-mkimage: OpenVZ containers take one disk: MKIMAGE is not supported\nERROR MESSAGE ------>8--/,
        );
      });
    } finally {
      await bed.stop();
      await Deno.remove(fe, { recursive: true });
    }
  },
});

Deno.test({
  // Root logs into the node as in the rest of this file: none of these actions uses sudo on
  // the node (the driver-user variant of tm-clone is in tests/hardening/images.test.ts).
  name: "tm over ssh: every action is safe to run twice (a resubmitted VM, a retried TRANSFER)",
  ignore: Deno.uid() !== 0,
  fn: async (t) => {
    const bed = await startBed({ nodes: [{ name: "cn1" }], frontEnd: false, initSimulator: false });
    const fe = await Deno.makeTempDir({ prefix: "onevz-tm-twice-" });
    try {
      await sshWrapper(fe);
      const cn1 = bed.nodes.cn1.fsDir;
      await Deno.mkdir(`${fe}/images`);
      const image = `${fe}/images/img`;
      const data = bytes(200_000, 3);
      await Deno.writeFile(image, data);
      const twice = async (action: string, args: string[]) => {
        const a = await tm(bed, fe, action, args);
        const b = await tm(bed, fe, action, args);
        return [a, b];
      };
      const leftovers = (dir: string) =>
        [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.includes("onevz-tmp"));

      for (const action of ["tm-clone", "tm-ln"]) {
        await t.step(`${action} twice to the same R/disk.0`, async () => {
          const vid = action === "tm-clone" ? 60 : 61;
          const dst = `cn1:${VM}/${vid}/images/disk.0`;
          const [a, b] = await twice(action, [`fe:${image}`, dst]);
          assert.equal(a.code, 0, a.stderr);
          assert.equal(b.code, 0, b.stderr + b.stdout);
          assert.match(b.stdout, /already is that image: left as it is/);
          assert.equal(b.ssh.filter((l) => / dd of=/.test(l)).length, 0, "no bytes sent again");
          assert.deepEqual(await Deno.readFile(`${cn1}/vm/${vid}/images/disk.0`), data);
          assert.deepEqual(leftovers(`${cn1}/vm/${vid}/images`), []);
          assert.deepEqual(leftovers(`${cn1}/vm/.onevz-cache`), []);
        });
      }

      await t.step("tm-clone again with another image replaces the first", async () => {
        const other = `${fe}/images/other`;
        const otherData = bytes(100_000, 4);
        await Deno.writeFile(other, otherData);
        const r = await tm(bed, fe, "tm-clone", [`fe:${other}`, `cn1:${VM}/60/images/disk.0`]);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(await Deno.readFile(`${cn1}/vm/60/images/disk.0`), otherData);
        assert.deepEqual(await Deno.readFile(`${cn1}/vm/61/images/disk.0`), data);
      });

      await t.step("tm-mkswap and tm-mkimage twice: the same answer, nothing made", async () => {
        const s = await twice("tm-mkswap", ["512", `cn1:${VM}/60/images/disk.3`]);
        for (const r of s) assert.equal(r.code, 0, r.stderr);
        const m = await twice("tm-mkimage", ["100", "ext3", `cn1:${VM}/60/images/disk.4`]);
        for (const r of m) {
          assert.equal(r.code, 1);
          assert.match(r.stderr, /MKIMAGE is not supported/);
        }
        assert.equal(await lstat(`${cn1}/vm/60/images/disk.3`), undefined);
        assert.equal(await lstat(`${cn1}/vm/60/images/disk.4`), undefined);
      });

      await t.step("tm-context twice: the same directory, nothing left over", async () => {
        await Deno.mkdir(`${fe}/var/60`, { recursive: true });
        await Deno.mkdir(`${fe}/share/context`, { recursive: true });
        await Deno.writeTextFile(`${fe}/var/60/context.sh`, 'HOSTNAME="vm60"\n');
        await Deno.writeTextFile(`${fe}/share/context/init.sh`, "echo hi\n");
        const [a, b] = await twice("tm-context", [
          `${fe}/var/60/context.sh`,
          `${fe}/share/context/init.sh`,
          `cn1:${VM}/60/images/disk.1`,
        ]);
        assert.equal(a.code, 0, a.stderr);
        assert.equal(b.code, 0, b.stderr);
        const dir = `${cn1}/vm/60/images/disk.1`;
        assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
          "context.sh",
          "init.sh",
        ]);
        assert.equal(await Deno.readTextFile(`${dir}/init.sh`), "echo hi\n");
        assert.deepEqual(leftovers(`${cn1}/vm/60/images`), []);
      });
    } finally {
      await bed.stop();
      await Deno.remove(fe, { recursive: true });
    }
  },
});

Deno.test({
  name: "installed remotes through the 2.2.1 drivers: scp -r, im ssh and agentless, hook",
  ignore: Deno.uid() !== 0,
  fn: async () => {
    const bed = await startBed({ nodes: [{ name: "cn1", flavour: "vswap" }], frontEnd: false });
    const dir = await Deno.makeTempDir({ prefix: "onevz-tm-install-" });
    try {
      const paths = installPaths({ oneLocation: `${dir}/one` });
      await install({
        paths,
        binary: { kind: "launcher", deno: DENO, main: `${REPO_ROOT}/main.ts` },
        say: () => {},
      });
      await Deno.copyFile(RUN_PROBES, `${paths.remotes}/im/run_probes`);
      await Deno.chmod(`${paths.remotes}/im/run_probes`, 0o755);
      const site = { ...bedSite(bed), frontRemotes: paths.remotes };

      // one_im_ssh with the update flag: scp -r of the tree, then run_probes on the node.
      const m = await one.imSsh(site, "cn1", { hid: 3, update: true });
      assert.equal(m.result, "SUCCESS", m.stderr);
      assert.match(m.reply, /^MONITOR SUCCESS 3 HYPERVISOR=ovz /);
      assert.ok(!m.info.includes(","), m.info);
      assert.match(m.info, /TOTALCPU=\d+00 /);
      if (bed.simulator) assert.match(m.info, /OVZ_KERNEL=vswap/);
      // The symlinked defaults file arrived as a regular file; the executable once.
      const node = bed.nodes.cn1.fsDir + "/scripts";
      assert.ok((await Deno.lstat(`${node}/vmm/ovz/vmm_ssh_ovz.conf`)).isFile);
      assert.ok((await Deno.lstat(`${node}/bin/onevz`)).isFile);

      // one_im_sh (agentless): run_probes ovz_fe on the front-end, the node over ssh.
      const a = await one.imSh(site, "cn1", { hid: 4 });
      assert.equal(a.result, "SUCCESS", a.stderr);
      assert.match(a.reply, /^MONITOR SUCCESS 4 HYPERVISOR=ovz /);
      if (bed.simulator) assert.match(a.info, /OVZ_KERNEL=vswap/);

      // The vzfirewall hook as one_hm runs it (remote=yes, empty arguments → "-").
      const h = await one.hookSsh(site, "cn1", `${bed.remoteDir}/hooks/vzfirewall.sh`, "", {
        vid: 5,
        hookName: "vzfirewall",
      });
      assert.doesNotMatch(h.stderr, /ExitCode: 42/);
      // Whatever the node's vzfirewall does, the hook succeeds exactly when it applied the
      // rules or found nothing to change (exit 255, "Nothing is changed.").
      const direct = await bed.ssh("cn1", "vzfirewall -a");
      const fine = direct.code === 0 ||
        (direct.code === 255 && /^Nothing is changed\./m.test(direct.stdout + direct.stderr));
      assert.equal(h.result, fine ? "SUCCESS" : "FAILURE", h.stdout + h.stderr);
    } finally {
      await bed.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
