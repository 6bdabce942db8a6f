// OS template tarballs and saved images with `../` entries, absolute names, or a symlink to a
// directory outside followed by an entry through it. The simulator's `vzctl create` unpacks
// with GNU tar like vzctl's vps-create (`tar --numeric-owner -Sp -x`), onevz's tm-mv unpacks
// with tarExtract (no -P, no --absolute-names): nothing may land outside the private area.
import assert from "node:assert/strict";
import { join } from "node:path";
import { tarExtract } from "../../src/actions/tm/common.ts";
import { makeSimNode, makeTemplateTarball, REPO, run } from "../helpers/simnode.ts";
import { figure, total } from "./figures.ts";

type Entry = { name: string; data?: string; dir?: boolean; symlink?: string };

/** A plain ustar archive, written by hand so that hostile names survive as given. */
function tarOf(entries: Entry[]): Uint8Array {
  const enc = new TextEncoder();
  const blocks: Uint8Array[] = [];
  for (const e of entries) {
    const h = new Uint8Array(512);
    const put = (off: number, len: number, s: string) => h.set(enc.encode(s).subarray(0, len), off);
    const data = enc.encode(e.data ?? "");
    put(0, 100, e.name);
    put(100, 8, e.dir ? "0000755\0" : "0000644\0");
    put(108, 8, "0000000\0");
    put(116, 8, "0000000\0");
    put(124, 12, (e.symlink || e.dir ? 0 : data.length).toString(8).padStart(11, "0") + "\0");
    put(136, 12, "00000000000\0");
    put(148, 8, "        ");
    put(156, 1, e.dir ? "5" : e.symlink ? "2" : "0");
    if (e.symlink) put(157, 100, e.symlink);
    put(257, 6, "ustar\0");
    put(263, 2, "00");
    const sum = h.reduce((a, b) => a + b, 0);
    put(148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
    blocks.push(h);
    if (!e.symlink && !e.dir && data.length) {
      const padded = new Uint8Array(Math.ceil(data.length / 512) * 512);
      padded.set(data);
      blocks.push(padded);
    }
  }
  blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let off = 0;
  for (const b of blocks) {
    out.set(b, off);
    off += b.length;
  }
  return out;
}

async function listAll(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      out.push(p);
      if (e.isDirectory) await walk(p);
    }
  };
  await walk(dir).catch(() => {});
  return out.sort();
}

const VPS145 = (await Deno.readTextFile(`${REPO}/fixtures/templates/vps145.xml`))
  .replace(/<CONTEXT>.*<\/CONTEXT>/s, "");

function hostileEntries(outside: string): Record<string, Entry[]> {
  const base: Entry[] = [
    { name: "./etc/", dir: true },
    { name: "./etc/redhat-release", data: "CentOS release 5.11\n" },
    { name: "./sbin/", dir: true },
    { name: "./sbin/init", data: "#!/bin/sh\n" },
  ];
  return {
    "dotdot": [...base, { name: "../../../../pwned-dotdot", data: "x" }, {
      name: `./mnt/../../../pwned-mid`,
      data: "x",
    }],
    "absolute": [...base, { name: `${outside}/pwned-abs`, data: "x" }],
    "symlink-escape": [
      ...base,
      { name: "./var", symlink: outside },
      { name: "./var/passwd", data: "root::0:0::/:/bin/sh\n" },
    ],
    "symlink-dotdot": [
      ...base,
      { name: "./lib", symlink: "../../../../.." + outside },
      { name: "./lib/passwd", data: "x" },
    ],
  };
}

/** Remove the OS templates deploy placed (`centos-5-x86-onevz-<digest>.<ext>`). */
async function removePlaced(root: string) {
  const cache = `${root}/vz/template/cache`;
  for (const e of Deno.readDirSync(cache)) {
    if (e.name.startsWith("centos-5-x86-onevz-")) await Deno.remove(`${cache}/${e.name}`);
  }
}

Deno.test("tarballs: hostile OS templates never write outside the private area", async () => {
  const node = await makeSimNode({ flavour: "ubc" });
  const outside = await Deno.makeTempDir({ prefix: "onevz-outside-" });
  try {
    await Deno.writeTextFile(`${outside}/passwd`, "precious\n");
    const images = `${node.vmDir}45/images`;
    await Deno.mkdir(images, { recursive: true });
    let n = 0;
    for (const [name, entries] of Object.entries(hostileEntries(outside))) {
      await Deno.writeFile(`${images}/disk.0`, tarOf(entries));
      const r = await node.action("deploy", [`${images}/deployment.${n}`], VPS145);
      n++;
      if (r.code === 0) {
        // Accepted (GNU tar strips a leading /): whatever was written is inside the area.
        assert.equal(name, "absolute", `${name} deployed: ${r.stderr}`);
        await Deno.stat(`${images}/private${outside}/pwned-abs`);
        await node.tool("vzctl", ["stop", "1045"]);
        await node.tool("vzctl", ["destroy", "1045"]);
        await removePlaced(node.root);
      } else {
        assert.equal(r.code, 1, `${name}: ${r.stderr}`);
        assert.equal(r.stderr.trim().split("\n").length >= 1, true);
      }
      assert.deepEqual(await listAll(outside), [`${outside}/passwd`], `${name}: outside`);
      assert.equal(await Deno.readTextFile(`${outside}/passwd`), "precious\n");
      for (const p of await listAll(node.dir)) {
        assert.ok(
          !/pwned/.test(p) || p.startsWith(`${images}/private/`),
          `${name}: ${p} written outside the private area`,
        );
      }
    }
    figure("tarballs", "os-template(deploy)", n);
  } finally {
    await node.cleanup();
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("tarballs: a saved image holding links to the node is inert when deployed again", async () => {
  const node = await makeSimNode({ flavour: "ubc" });
  const outside = await Deno.makeTempDir({ prefix: "onevz-outside-" });
  try {
    await Deno.writeTextFile(`${outside}/passwd`, "precious\n");
    const images = `${node.vmDir}45/images`;
    await Deno.mkdir(images, { recursive: true });
    await Deno.writeFile(`${images}/disk.0`, await makeTemplateTarball("gz"));
    const first = await node.action("deploy", [`${images}/deployment.0`], VPS145);
    assert.equal(first.code, 0, first.stderr);
    // The container's owner plants links to the node in its own file system.
    await Deno.symlink(outside, `${images}/private/mnt-out`);
    await Deno.symlink(`${outside}/passwd`, `${images}/private/etc/passwd-out`);
    await Deno.symlink(outside, `${images}/private/mnt`).catch(async () => {
      await Deno.remove(`${images}/private/mnt`, { recursive: true });
      await Deno.symlink(outside, `${images}/private/mnt`);
    });
    const down = await node.action("shutdown", ["1045"]);
    assert.equal(down.code, 0, down.stderr);
    // The epilog: the saved disk to the front-end (tm-mv archives the private area), DELETE.
    const fe = `${node.dir}/fe`;
    await Deno.mkdir(fe);
    const tmEnv = { ...node.env, ONEVZ_VM_DIR: node.vmDir, ONEVZ_NODE_SYSROOT: node.root };
    const tm = (...args: string[]) =>
      run(`${REPO}/node_modules/.bin/deno`, ["run", "-A", "--quiet", `${REPO}/main.ts`, ...args], {
        env: tmEnv,
      });
    const mv = await tm("tm-mv", `localhost:${images}/disk.0`, `${fe}/disk.0`);
    assert.equal(mv.code, 0, mv.stderr);
    assert.equal((await tm("tm-delete", `localhost:${images}`)).code, 0);
    await removePlaced(node.root);
    // The prolog of a VM from the saved image.
    await Deno.mkdir(images, { recursive: true });
    await Deno.copyFile(`${fe}/disk.0`, `${images}/disk.0`);
    // Deployed again from the saved image, with CONTEXT (deploy writes into /mnt).
    const doc = (await Deno.readTextFile(`${REPO}/fixtures/templates/vps145.xml`))
      .replace(/<FILES>.*?<\/FILES>/s, "");
    const again = await node.action("deploy", [`${images}/deployment.1`], doc);
    assert.equal(again.code, 1, again.stderr);
    assert.match(again.stderr, /symbolic link/);
    assert.deepEqual(await listAll(outside), [`${outside}/passwd`]);
    assert.equal(await Deno.readTextFile(`${outside}/passwd`), "precious\n");
    figure("tarballs", "saved-image(shutdown → deploy)", 1);
  } finally {
    await node.cleanup();
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("tarballs: tm-mv's tarExtract keeps GNU tar's protections", async () => {
  const argv = tarExtract("/STAGE");
  assert.ok(!argv.includes("-P") && !argv.includes("--absolute-names"), argv.join(" "));
  assert.ok(!argv.some((a) => /^-[a-zA-Z]*P/.test(a)));
  const outside = await Deno.makeTempDir({ prefix: "onevz-outside-" });
  const stage = await Deno.makeTempDir({ prefix: "onevz-stage-" });
  try {
    await Deno.writeTextFile(`${outside}/passwd`, "precious\n");
    let n = 0;
    for (const [name, entries] of Object.entries(hostileEntries(outside))) {
      const dir = `${stage}/${name}`;
      await Deno.mkdir(dir);
      const a = tarExtract(dir);
      const p = new Deno.Command(a[0], { args: a.slice(1), stdin: "piped", stderr: "piped" })
        .spawn();
      const w = p.stdin.getWriter();
      await w.write(tarOf(entries));
      await w.close();
      await p.output();
      n++;
      assert.deepEqual(await listAll(outside), [`${outside}/passwd`], name);
      assert.equal(await Deno.readTextFile(`${outside}/passwd`), "precious\n");
    }
    assert.ok(!(await listAll(stage)).some((p) => !p.startsWith(stage)));
    figure("tarballs", "tm-mv-stream", n);
    total("tarballs");
  } finally {
    await Deno.remove(outside, { recursive: true });
    await Deno.remove(stage, { recursive: true });
  }
});
