import assert from "node:assert/strict";
import { cleanup, mkCt, mkRoot, read, run, vzctl, vzlist } from "./helpers.ts";

/** A RegExp written with literal runs of spaces (turned into " {n}"). */
function spaced(re: string): RegExp {
  return new RegExp(re.replace(/ {2,}/g, (m) => ` {${m.length}}`));
}

const SAMPLES = read(new URL("./samples/openvz-outputs.txt", import.meta.url).pathname).split("\n");
function section(title: string): string[] {
  const i = SAMPLES.indexOf(`== ${title} ==`);
  const out: string[] = [];
  for (let j = i + 1; j < SAMPLES.length && !SAMPLES[j].startsWith("== "); j++) {
    out.push(SAMPLES[j]);
  }
  while (out.length && out[out.length - 1] === "") out.pop();
  return out;
}

const PINS: [string, string][] = [
  ["kmemsize", "2781412:3559424"],
  ["lockedpages", "0:0"],
  ["privvmpages", "18463:22066"],
  ["shmpages", "1:1"],
  ["numproc", "12:30"],
  ["physpages", "9127:12305"],
  ["vmguarpages", "0:0"],
  ["numtcpsock", "3:5"],
  ["numflock", "1:4"],
  ["numpty", "0:1"],
  ["numsiginfo", "0:5"],
  ["tcpsndbuf", "52160:86880"],
  ["tcprcvbuf", "49152:81920"],
  ["othersockbuf", "4624:11560"],
  ["dgramrcvbuf", "0:2312"],
  ["numothersock", "16:20"],
  ["dcachesize", "600315:630784"],
  ["numfile", "178:258"],
  ["numiptent", "10:10"],
];

/** The sample node: 101 running (2 IPs), 102 stopped, 103 mounted. */
async function sampleNode(flavour = "ubc"): Promise<string> {
  const root = await mkRoot("--flavour", flavour);
  await mkCt(
    root,
    101,
    "--ipadd",
    "10.0.0.101",
    "--ipadd",
    "10.0.0.201",
    "--hostname",
    "ct101.example.com",
  );
  // limits of the sample block
  Deno.writeTextFileSync(
    `${root}/etc/vz/conf/101.conf`,
    read(`${root}/etc/vz/conf/101.conf`).split("\n").filter((l) =>
      !/^[A-Z]+="\d+(:\d+)?"$|^[A-Z]+="\d+:unlimited"$|^[A-Z]+="2G:2.2G"$/.test(l) ||
      /^(DISK|QUOTA|CPU)/.test(l)
    ).join("\n"),
  );
  let r = await vzctl(
    root,
    "set",
    "101",
    "--lockedpages",
    "65536",
    "--physpages",
    "0:65536",
    "--swappages",
    "0:131072",
    "--vmguarpages",
    "196608:unlimited",
    "--oomguarpages",
    "65536:unlimited",
    "--save",
  );
  assert.equal(r.code, 0, r.stderr);
  for (const [res, v] of PINS) await run(root, "ovzsim", ["usage", root, "101", res, v]);
  // the reference rows are for CTs made from the classic UBC sample
  await mkCt(
    root,
    102,
    "--ipadd",
    "10.0.0.102",
    "--hostname",
    "ct102.example.com",
    "--config",
    "basic",
  );
  await mkCt(root, 103, "--config", "basic");
  r = await vzctl(root, "start", "101");
  assert.equal(r.code, 0);
  await vzctl(root, "mount", "103");
  return root;
}

Deno.test("vzlist matches the reference samples byte for byte", async () => {
  const root = await sampleNode();
  try {
    let r = await vzlist(root, "-a");
    assert.equal(r.stdout, section("vzlist -a").join("\n") + "\n");
    r = await vzlist(root, "-a", "-H", "-o", "ctid,status");
    assert.equal(
      r.stdout,
      section("vzlist -a -H -o ctid,status").join("\n") + "\n       103 mounted\n",
    );
    // running only by default; -S stopped ones
    r = await vzlist(root);
    assert.equal(r.stdout.split("\n").length, 3);
    r = await vzlist(root, "-S", "-H", "-o", "ctid");
    assert.equal(r.stdout, "       102\n       103\n");
    // ip trimming: first IP only unless last field or -t
    r = await vzlist(root, "-H", "-o", "ip,ctid", "101");
    assert.equal(r.stdout, "10.0.0.101             101\n");
    r = await vzlist(root, "-H", "-o", "ctid,ip", "101");
    assert.equal(r.stdout, "       101 10.0.0.101 10.0.0.201\n");
    r = await vzlist(root, "-H", "-t", "-o", "ip,ctid", "101");
    assert.equal(r.stdout, "10.0.0.101 10.0.0.201        101\n");
    // nothing selected: 4.11.1 with the packaged 0.conf prints the header only, exit 0
    const header = "      CTID      NPROC STATUS    IP_ADDR         HOSTNAME\n";
    r = await vzlist(root, "999");
    assert.deepEqual([r.code, r.stdout, r.stderr], [0, header, ""]);
    r = await vzlist(root, "-h", "nomatch*");
    assert.deepEqual([r.code, r.stdout, r.stderr], [0, header, ""]);
    // UBC fields: stopped CT -> '-' for held, config values for .b/.l
    r = await vzlist(
      root,
      "-a",
      "-o",
      "ctid,numproc,numproc.m,physpages.b,physpages.l,kmemsize.l,kmemsize.f",
    );
    assert.equal(
      r.stdout,
      "      CTID      NPROC    NPROC.M    PHYSP.B    PHYSP.L KMEMSIZE.L KMEMSIZE.F\n" +
        "       101         12         30          0      65536 9223372036854775807          0\n" +
        "       102          -          -          0 9223372036854775807   14790164          -\n" +
        "       103          -          -          0 9223372036854775807   14790164          -\n",
    );
    r = await vzlist(
      root,
      "-H",
      "-o",
      "ctid,laverage,uptime,cpuunits,cpus,onboot,layout,vswap,diskspace.s",
      "101",
      "102",
    );
    const [l1, l2] = r.stdout.split("\n");
    assert.match(
      l1,
      spaced(
        "^       101 \\d\\.\\d\\d\\/\\d\\.\\d\\d\\/\\d\\.\\d\\d 000d00h:00m:\\d\\ds    1000     - {5}no simfs    yes    2097152$",
      ),
    );
    assert.equal(
      l2,
      "       102              -               -    1000     -     no simfs     no    2097152",
    );
    r = await vzlist(root, "-a", "-H", "-o", "ctid,hostname,private", "-s", "-ctid");
    assert.match(
      r.stdout,
      spaced(
        "^       103 -                                .*\\/vz\\/private\\/103\\n       102 ct102",
      ),
    );
    r = await vzlist(root, "-o", "ctid,bogus");
    assert.equal(r.code, 1);
  } finally {
    cleanup(root);
  }
});

Deno.test("vzlist -j follows the reference JSON shape; 3.0.x has no -j", async () => {
  const root = await sampleNode();
  try {
    const r = await vzlist(
      root,
      "-j",
      "-o",
      "ctid,status,ip,hostname,numproc,physpages,laverage,uptime",
      "101",
      "102",
    );
    assert.equal(r.code, 0);
    const sample = read(new URL("./samples/vzlist-json.txt", import.meta.url).pathname);
    const norm = (s: string) =>
      s.replace(/"laverage": \[[^\]]*\]/g, '"laverage": L').replace(
        /"uptime": [0-9.]+/g,
        '"uptime": U',
      )
        .replace(/"hostname": [^,]+/g, '"hostname": H')
        .replace(/("limit": )\d+/g, "$1N")
        .replace(/("barrier": )\d+/g, "$1B");
    assert.equal(norm(r.stdout), norm(sample));
    assert.match(r.stdout, /"uptime": \d+\.\d{3}\n/);
    assert.match(r.stdout, /"laverage": null/);
    assert.match(r.stdout, /"uptime": 0\.000/);
    const p = JSON.parse(r.stdout);
    assert.equal(p[0].physpages.limit, 65536);
    const bad = await vzlist(root, "-j", "-o", "numproc.l");
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /not available in JSON output/);
  } finally {
    cleanup(root);
  }
  const old = await mkRoot("--vzctl", "3.0.30.2");
  try {
    assert.equal((await vzlist(old, "-j")).code, 1);
  } finally {
    cleanup(old);
  }
});

Deno.test("/proc files: beancounters, bc/resources, vestat, veinfo, vzquota formats", async () => {
  const root = await sampleNode();
  try {
    const ub = read(`${root}/proc/user_beancounters`).split("\n");
    const sample = section("/proc/user_beancounters (head)");
    assert.deepEqual(ub.slice(0, 26), sample);
    const blocks = ub.filter((l) => /^\s+\d+:/.test(l));
    assert.deepEqual(blocks.map((l) => l.trim().split(":")[0]), ["101", "0"]);
    assert.equal(ub.length, 2 + 24 * 2 + 1);
    const bc = read(`${root}/proc/bc/resources`).split("\n");
    assert.equal(bc.filter((l) => /dummy/.test(l)).length, 0);
    assert.match(bc[20], /^\s+swappages\s+\d+\s+\d+\s+0\s+131072\s+0$/);
    const vs1 = read(`${root}/proc/vz/vestat`).split("\n");
    const vsSample = section("/proc/vz/vestat");
    assert.equal(vs1[0], vsSample[0]);
    assert.equal(vs1[0].length, 251);
    assert.equal(vs1[1], vsSample[1]);
    assert.equal(vs1.length, 4);
    await new Promise((r) => setTimeout(r, 300));
    await vzlist(root);
    const vs2 = read(`${root}/proc/vz/vestat`).split("\n");
    const c1 = vs1[2].trim().split(/\s+/).map(BigInt), c2 = vs2[2].trim().split(/\s+/).map(BigInt);
    assert.equal(c1[0], 101n);
    assert.equal(c1[0].toString().padStart(20), vs1[2].slice(0, 20));
    assert.ok(c2[7] > c1[7] && c2[8] > c1[8], "uptime and used grow");
    assert.ok(c2[8] < c2[7], "used < uptime");
    assert.ok(c2[4] > c1[4]);
    const vi = read(`${root}/proc/vz/veinfo`);
    assert.equal(vi, section("/proc/vz/veinfo").join("\n") + "\n");
    const q = read(`${root}/proc/vz/vzquota`).split("\n");
    const qs = section("/proc/vz/vzquota");
    assert.equal(q[0], qs[0]);
    assert.deepEqual(q.slice(1, 7).map((l) => l.replace(/\/\S+\/vz\//, "/vz/")), [
      "101: /vz/private/101",
      q[2],
      q[3],
      "103: /vz/private/103",
      q[5],
      q[6],
    ]);
    assert.match(
      q[2],
      spaced("^  1k-blocks {3}[ \\d]{12}        2097152        2306867          0          0$"),
    );
    assert.match(
      q[3],
      spaced("^     inodes {3}[ \\d]{12}         131072         144179          0          0$"),
    );
    assert.equal(q[2].length, qs[3].length);
    await vzctl(root, "stop", "101");
    const ub2 = read(`${root}/proc/user_beancounters`);
    assert.doesNotMatch(ub2, /101:/);
    assert.equal(read(`${root}/proc/vz/vestat`).split("\n").length, 3);
    let missing = false;
    try {
      Deno.statSync(`${root}/proc/vz/vswap`);
    } catch {
      missing = true;
    }
    assert.ok(missing, "no /proc/vz/vswap on a UBC node");
  } finally {
    cleanup(root);
  }
});

Deno.test("beancounter values change over time and stay within limits (vswap node)", async () => {
  const root = await mkRoot("--flavour", "vswap");
  try {
    await mkCt(root, 101);
    await vzctl(root, "set", "101", "--ram", "64M", "--swap", "128M", "--save");
    await vzctl(root, "start", "101");
    const get = async () => {
      await vzlist(root);
      const t = read(`${root}/proc/bc/resources`);
      const m = /101:\s+kmemsize\s+(\d+)/.exec(t)!;
      const p = /physpages\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/.exec(t)!;
      return [Number(m[1]), Number(p[1]), Number(p[4])];
    };
    const a = await get();
    await new Promise((r) => setTimeout(r, 1200));
    const b = await get();
    assert.notEqual(a[0], b[0]);
    assert.equal(a[2], 16384);
    assert.ok(b[1] <= 16384);
    const lp = /101:[^]*?lockedpages\s+\d+\s+\d+\s+(\d+)\s+(\d+)/.exec(
      read(`${root}/proc/user_beancounters`),
    )!;
    assert.deepEqual([lp[1], lp[2]], ["16384", "16384"], "VSwap default lockedpages = ram");
  } finally {
    cleanup(root);
  }
});
