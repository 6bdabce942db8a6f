/**
 * Concurrent actions on one simulated node: several deploys at once, polls during a deploy,
 * two actions on one container (the per-container lock serialises them), two deploys placing
 * the same OS template name into the cache. Each scenario checks the node's end state (configs,
 * files, no temporary or half-written file, no lock left) and the simulator's call log.
 * Prints `figures: concurrency <n> scenarios`.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { makeSimNode, makeTemplateTarball, type SimNode } from "../helpers/simnode.ts";
import { simVm, TEMPLATES } from "./fault_node.ts";

const OPTS = { sanitizeOps: false, sanitizeResources: false } as const;
const BASE = await Deno.readTextFile(`${TEMPLATES}/vswap-basic.xml`);
let scenarios = 0;

/** vswap-basic as VM `vid` (own VMID, IP, MAC), OS image NAME `image`. */
function vmXml(vid: number, image = "centos-6-x86_64"): string {
  return BASE.replace("<VMID><![CDATA[7]]>", `<VMID><![CDATA[${vid}]]>`)
    .replace("192.168.0.10", `192.168.0.${vid}`)
    .replace("02:00:c0:a8:00:0a", `02:00:c0:a8:00:${vid.toString(16).padStart(2, "0")}`)
    .replace("<IMAGE><![CDATA[centos-6-x86_64]]>", `<IMAGE><![CDATA[${image}]]>`);
}

async function prolog(node: SimNode, vid: number, image?: Uint8Array) {
  const r = `${node.vmDir}${vid}/images`;
  await Deno.mkdir(r, { recursive: true });
  await Deno.writeFile(`${r}/disk.0`, image ?? await makeTemplateTarball("gz"));
  return r;
}

/** Every file name under the node that looks temporary or half-written, and lock dirs. */
function leftovers(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of Deno.readDirSync(d)) {
      const p = `${d}/${e.name}`;
      if (/onevz-tmp|onevz-restore|\.onevz\.lock/.test(e.name)) out.push(p);
      if (e.isDirectory && !e.isSymlink && !p.endsWith("/proc")) walk(p);
    }
  };
  walk(dir);
  return out;
}

function pollLine(out: string) {
  const lines = out.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 1, `one line: ${JSON.stringify(out)}`);
  assert.match(
    lines[0],
    /^STATE=[apde]( USEDMEMORY=\d+ USEDCPU=\d+ NETRX=\d+ NETTX=\d+)?$/,
    lines[0],
  );
  return lines[0];
}

Deno.test({
  name: "concurrency: 4 deploys at once on one node → all run, distinct CTIDs, configs intact",
  ...OPTS,
  fn: async () => {
    const node = await makeSimNode({ flavour: "vswap" });
    try {
      const vids = [61, 62, 63, 64];
      const img = await makeTemplateTarball("gz");
      for (const v of vids) await prolog(node, v, img);
      const rs = await Promise.all(
        vids.map((v) => node.action("deploy", [`${node.vmDir}${v}/images/deployment.0`], vmXml(v))),
      );
      rs.forEach((r, i) => assert.equal(r.code, 0, `VM ${vids[i]}: ${r.stderr}`));
      assert.deepEqual(rs.map((r) => r.stdout), vids.map((v) => `${1000 + v}\n`));
      for (const v of vids) {
        const conf = await Deno.readTextFile(`${node.root}/etc/vz/conf/${1000 + v}.conf`);
        assert.match(conf, new RegExp(`^IP_ADDRESS="192.168.0.${v}"$`, "m"));
        assert.match(conf, new RegExp(`^VE_PRIVATE=".*/${v}/images/private"$`, "m"));
        assert.match((await node.tool("vzctl", ["status", String(1000 + v)])).stdout, /running/);
        assert.equal(
          await Deno.readTextFile(`${node.vmDir}${v}/images/deployment.0`),
          vmXml(v),
        );
      }
      const creates = (await node.calls()).filter((c) => c.argv.includes("create"));
      assert.equal(creates.length, 4, "one vzctl create per VM, no retries");
      assert.deepEqual(leftovers(node.dir), []);
      scenarios++;
    } finally {
      await node.cleanup();
    }
  },
});

Deno.test({
  name: "concurrency: polls during a deploy each print exactly one valid line",
  ...OPTS,
  fn: async () => {
    const node = await makeSimNode({ flavour: "ubc" });
    try {
      await prolog(node, 65);
      const deploying = node.action(
        "deploy",
        [`${node.vmDir}65/images/deployment.0`],
        vmXml(65),
      );
      let done = false;
      deploying.finally(() => done = true);
      const lines: string[] = [];
      while (!done || lines.length < 3) {
        const polls = await Promise.all([1, 2].map(() => node.action("poll", ["1065"])));
        for (const p of polls) {
          assert.equal(p.code, 0, p.stderr);
          lines.push(pollLine(p.stdout));
        }
        if (lines.length > 40) break;
      }
      const r = await deploying;
      assert.equal(r.code, 0, r.stderr);
      assert.match(pollLine((await node.action("poll", ["1065"])).stdout), /^STATE=a /);
      assert.deepEqual(leftovers(node.dir), []);
      scenarios++;
    } finally {
      await node.cleanup();
    }
  },
});

Deno.test({
  name: "concurrency: shutdown + poll, save + shutdown on one container → serialised, consistent",
  ...OPTS,
  fn: async () => {
    const node = await makeSimNode({ flavour: "ubc" });
    try {
      // shutdown and two polls at once.
      const a = await simVm(node, 66, { save: true });
      const [sd, p1, p2] = await Promise.all([
        node.action("shutdown", [a.ctid]),
        node.action("poll", [a.ctid]),
        node.action("poll", [a.ctid]),
      ]);
      assert.equal(sd.code, 0, sd.stderr);
      for (const p of [p1, p2]) pollLine(p.stdout);
      // Kept, stopped, for the epilog (tm-mv archives it, tm-delete destroys it).
      assert.match((await node.tool("vzctl", ["status", a.ctid])).stdout, /exist unmounted down/);
      assert.ok(existsSync(`${a.r}/.onevz-shutdown.json`));
      scenarios++;

      // save and shutdown at once: whichever takes the lock first, the other sees its result.
      for (const vid of [67, 68]) {
        const b = await simVm(node, vid, { save: true });
        const cp = `${b.r}/checkpoint`;
        const before = (await node.calls()).length;
        const [sv, sd2] = await Promise.all([
          node.action("save", [b.ctid, cp]),
          node.action("shutdown", [b.ctid]),
        ]);
        assert.equal(sd2.code, 0, sd2.stderr);
        assert.match((await node.tool("vzctl", ["status", b.ctid])).stdout, /exist unmounted/);
        // The call log shows the two actions did not interleave: one of them stopped it.
        const vz = (await node.calls()).slice(before).filter((c) => c.argv.includes(b.ctid))
          .map((c) => c.argv.find((x) => !x.startsWith("-"))).filter((x) => x !== "status");
        if (sv.code === 0) {
          // save first: a complete checkpoint (0600) with its record; shutdown found it down.
          assert.equal((await Deno.stat(cp)).mode! & 0o777, 0o600);
          assert.ok(existsSync(`${cp}.onevz.json`));
          assert.deepEqual(vz, ["chkpnt"]);
        } else {
          // shutdown first: save found the container stopped and wrote nothing.
          assert.match(sv.stderr, /does not exist|not running/);
          assert.ok(!existsSync(cp) && !existsSync(`${cp}.onevz.json`));
          assert.deepEqual(vz, ["stop"]);
        }
        scenarios++;
      }
      assert.deepEqual(leftovers(node.dir), []);
    } finally {
      await node.cleanup();
    }
  },
});

Deno.test({
  name: "concurrency: two deploys placing the same template name → atomic cache placement",
  ...OPTS,
  fn: async () => {
    const node = await makeSimNode({ flavour: "ubc" });
    const cacheDir = `${node.root}/vz/template/cache`;
    const placed = () =>
      [...Deno.readDirSync(cacheDir)].map((e) => e.name).filter((n) => n.includes("-onevz-"))
        .sort();
    try {
      // Same image bytes: both deploy from one placed template.
      const img = await makeTemplateTarball("gz");
      await prolog(node, 71, img);
      await prolog(node, 72, img);
      const same = await Promise.all(
        [71, 72].map((v) =>
          node.action("deploy", [`${node.vmDir}${v}/images/deployment.0`], vmXml(v))
        ),
      );
      for (const r of same) assert.equal(r.code, 0, r.stderr);
      assert.equal(placed().length, 1, placed().join(" "));
      assert.deepEqual(await Deno.readFile(`${cacheDir}/${placed()[0]}`), img);
      scenarios++;

      // Different bytes under the same NAME (two tenants, two versions) at once: both deploy,
      // each container from its own image, each under a name of its own (each image has a
      // file of its own).
      const imgs = [
        await makeTemplateTarball("gz", { "etc/version-73": "other\n" }),
        await makeTemplateTarball("gz", { "etc/marker": "other\n" }),
      ];
      await prolog(node, 73, imgs[0]);
      await prolog(node, 74, imgs[1]);
      const rs = await Promise.all(
        [73, 74].map((v) =>
          node.action("deploy", [`${node.vmDir}${v}/images/deployment.0`], vmXml(v))
        ),
      );
      for (const r of rs) assert.equal(r.code, 0, r.stderr);
      assert.ok(!existsSync(`${node.vmDir}73/images/private/etc/marker`), "73 has its own image");
      assert.ok(
        existsSync(`${node.vmDir}73/images/private/etc/version-73`),
        "73 has its own image",
      );
      assert.ok(existsSync(`${node.vmDir}74/images/private/etc/marker`), "74 has its own image");
      assert.equal(placed().length, 3, placed().join(" "));
      assert.deepEqual(leftovers(node.dir), []);
      scenarios++;
    } finally {
      await node.cleanup();
    }
  },
});

Deno.test({
  name: "concurrency: figures",
  fn: () => {
    console.log(`figures: concurrency ${scenarios} scenarios`);
    assert.ok(scenarios > 0);
  },
});
