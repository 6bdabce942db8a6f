// ovzsim populate (many containers at once) and OVZ_SIM_TIMES (per-call tool lifetimes).
import assert from "node:assert/strict";
import { BIN, cleanup, mkCt, mkRoot, read, run, vzctl, vzlist } from "./helpers.ts";

const exists = (p: string) => {
  try {
    Deno.lstatSync(p);
    return true;
  } catch {
    return false;
  }
};

/** Every entry under dir: relative path, type, mode and (for files/links) content. */
function tree(dir: string): string[] {
  const res: string[] = [];
  const walk = (rel: string) => {
    const p = rel ? `${dir}/${rel}` : dir;
    const st = Deno.lstatSync(p);
    const mode = (st.mode! & 0o7777).toString(8);
    if (st.isDirectory) {
      res.push(`${rel}/ d ${mode}`);
      for (const e of [...Deno.readDirSync(p)].map((e) => e.name).sort()) {
        walk(rel ? `${rel}/${e}` : e);
      }
    } else if (st.isSymlink) res.push(`${rel} l ${Deno.readLinkSync(p)}`);
    else res.push(`${rel} f ${mode} ${read(p)}`);
  };
  walk("");
  return res;
}

/** Blocks of a beancounter table ("  <id>:  kmemsize ..."), as ids. */
const ubIds = (text: string) => [...text.matchAll(/^ *(\d+): +kmemsize /gm)].map((m) => m[1]);

Deno.test("ovzsim populate: 50 running CTs, the same on disk as vzctl create + start", async () => {
  const root = await mkRoot();
  try {
    const p = await run(root, "ovzsim", ["populate", root, "50"]);
    assert.equal(p.code, 0, p.stderr);
    assert.equal(p.stderr, "");
    // setup, not tool calls: nothing in the call log
    assert.equal((await run(root, "ovzsim", ["calls", root])).stdout, "");

    const l = await vzlist(root, "-H", "-o", "ctid,status");
    assert.equal(l.code, 0, l.stderr);
    const rows = l.stdout.trim().split("\n").map((s) => s.trim().split(/\s+/));
    assert.equal(rows.length, 50);
    assert.deepEqual(rows.map((r) => Number(r[0])), Array.from({ length: 50 }, (_, i) => 2001 + i));
    assert.ok(rows.every((r) => r[1] === "running"));
    const ips = (await vzlist(root, "-H", "-o", "ip")).stdout.trim().split(/\s+/);
    assert.equal(new Set(ips).size, 50);
    assert.ok(ips.every((ip) => /^10\.1\.\d+\.\d+$/.test(ip)), ips.join(" "));
    assert.equal((await vzctl(root, "status", "2025")).stdout, "CTID 2025 exist mounted running\n");

    // the /proc tables list every one of them, plus the host
    const ub = read(`${root}/proc/user_beancounters`);
    const ids = ubIds(ub);
    assert.equal(ids.length, 51);
    assert.deepEqual(ids.slice(0, 50).map(Number), rows.map((r) => Number(r[0])));
    assert.equal(ids[50], "0");
    assert.equal(ubIds(read(`${root}/proc/bc/resources`)).length, 51);
    assert.equal(read(`${root}/proc/vz/vestat`).trim().split("\n").length, 2 + 50);
    assert.equal(read(`${root}/proc/vz/venetstat`).trim().split("\n").length, 50);
    const veinfo = read(`${root}/proc/vz/veinfo`).trim().split("\n");
    assert.equal(veinfo.length, 51);
    assert.ok(veinfo.some((v) => v.trim().startsWith("2050 ") && v.includes(` ${ips[49]}`)));
    assert.equal(
      read(`${root}/proc/vz/vzquota`).split("\n").filter((x) => /^\d+: /.test(x)).length,
      50,
    );

    // a CT made the ordinary way, with the IP 2030 got: same config, private area, state
    const ip2030 = read(`${root}/etc/vz/conf/2030.conf`).match(/^IP_ADDRESS="(.*)"$/m)![1];
    await mkCt(root, 101, "--ipadd", ip2030);
    assert.equal((await vzctl(root, "start", "101")).code, 0);
    assert.equal(read(`${root}/etc/vz/conf/2030.conf`), read(`${root}/etc/vz/conf/101.conf`));
    assert.deepEqual(tree(`${root}/vz/private/2030`), tree(`${root}/vz/private/101`));
    assert.ok(Deno.statSync(`${root}/vz/root/2030`).isDirectory);
    const st = (id: number) => {
      const s = JSON.parse(read(`${root}/sim/ct/${id}.json`));
      return { ...s, started: typeof s.started };
    };
    assert.deepEqual(st(2030), st(101));

    // stop / destroy behave exactly as for the created one
    for (const a of ["stop", "destroy", "status"]) {
      const x = await vzctl(root, a, "2030");
      const y = await vzctl(root, a, "101");
      assert.equal(x.code, y.code, a);
      assert.equal(x.stdout.replaceAll("2030", "101"), y.stdout, a);
      assert.equal(x.stderr.replaceAll("2030", "101"), y.stderr, a);
    }
    assert.ok(!exists(`${root}/vz/private/2030`));
    assert.ok(exists(`${root}/etc/vz/conf/2030.conf.destroyed`));
    assert.ok(!exists(`${root}/sim/ct/2030.json`));
    assert.deepEqual(ubIds(read(`${root}/proc/user_beancounters`)).length, 50);
  } finally {
    cleanup(root);
  }
});

Deno.test("ovzsim populate: --first/--stopped/--ipbase, vswap node", async () => {
  const root = await mkRoot("--flavour", "vswap", "--template", "debian-8.0-x86_64.tar.xz");
  try {
    let p = await run(root, "ovzsim", [
      "populate",
      root,
      "3",
      "--first",
      "301",
      "--stopped",
      "--ipbase",
      "192.168",
    ]);
    assert.equal(p.code, 0, p.stderr);
    assert.equal(
      (await vzlist(root, "-a", "-H", "-o", "ctid,status,ip,ostemplate")).stdout,
      "       301 stopped   192.168.1.48    debian-8.0-x86_64\n" +
        "       302 stopped   192.168.1.49    debian-8.0-x86_64\n" +
        "       303 stopped   192.168.1.50    debian-8.0-x86_64\n",
    );
    assert.equal((await vzctl(root, "status", "302")).stdout, "CTID 302 exist unmounted down\n");
    assert.ok(!exists(`${root}/sim/ct/302.json`));
    assert.deepEqual(ubIds(read(`${root}/proc/user_beancounters`)), ["0"]);
    assert.equal((await vzctl(root, "start", "302")).code, 0);

    p = await run(root, "ovzsim", ["populate", root, "2", "--first", "401"]);
    assert.equal(p.code, 0, p.stderr);
    assert.deepEqual(ubIds(read(`${root}/proc/bc/resources`)), ["302", "401", "402", "0"]);
    assert.ok(exists(`${root}/proc/vz/vswap`));
    assert.match(read(`${root}/etc/vz/conf/401.conf`), /^ORIGIN_SAMPLE="vswap-256m"$/m);
  } finally {
    cleanup(root);
  }
});

Deno.test("ovzsim populate: bad count, existing CTID, missing template: error, nothing made", async () => {
  const root = await mkRoot();
  try {
    await mkCt(root, 2005);
    const before = () =>
      ["etc/vz/conf", "vz/private", "vz/root", "sim/ct"].flatMap((d) =>
        [...Deno.readDirSync(`${root}/${d}`)].map((e) => `${d}/${e.name}`)
      ).sort().join(" ") + "|" + read(`${root}/proc/user_beancounters`);
    const snap = before();
    const cases: [string[], RegExp][] = [
      [["0"], /count must be a positive integer/],
      [["abc"], /count must be a positive integer/],
      [["2.5"], /count must be a positive integer/],
      [[], /Usage/],
      [["10"], /CT 2005 already exists/],
      [["3", "--first", "2003"], /CT 2005 already exists/],
      [["3", "--first", "x"], /--first/],
      [["3", "--ipbase", "10.300"], /--ipbase/],
      [["3", "--first", "7001", "--ostemplate", "nosuch"], /Cached OS template .*nosuch/],
    ];
    for (const [args, re] of cases) {
      const r = await run(root, "ovzsim", ["populate", root, ...args]);
      assert.notEqual(r.code, 0, args.join(" "));
      assert.match(r.stderr, re, args.join(" "));
      assert.equal(before(), snap, args.join(" "));
    }
    const r = await run(root, "ovzsim", ["populate", `${root}/nonode`, "3"]);
    assert.notEqual(r.code, 0);

    // a copy failing half-way (a cp that fails for CT 3010): the ones made are removed again
    const fake = `${root}/../fakebin`;
    Deno.mkdirSync(fake);
    Deno.writeTextFileSync(
      `${fake}/cp`,
      '#!/bin/bash\ncase "${@: -1}" in *3010.tmp) echo "cp: disk full" >&2; exit 1;; esac\n' +
        'exec /bin/cp "$@"\n',
      { mode: 0o755 },
    );
    const env = { PATH: `${fake}:${BIN}:${Deno.env.get("PATH")}` };
    const f = await run(root, "ovzsim", ["populate", root, "30", "--first", "3001"], { env });
    assert.equal(f.code, 46, f.stderr);
    assert.match(f.stderr, /cp: disk full\nCreation of container private area failed\n/);
    assert.match(f.stderr, /CT 3010 failed \(exit 46\); all undone/);
    assert.equal(before(), snap);
    assert.equal((await vzlist(root, "-a", "-H", "-o", "ctid")).stdout, "      2005\n");
  } finally {
    cleanup(root);
  }
});

// ------------------------------------------------------------------------------ OVZ_SIM_TIMES

const LINE = /^(vzctl|vzlist|vzmigrate|vzfirewall) (\d+\.\d{6}) (\d+\.\d{6}) (\d+)$/;

function timesOf(file: string): { tool: string; start: number; end: number; code: number }[] {
  return read(file).split("\n").filter(Boolean).map((l) => {
    const m = LINE.exec(l);
    assert.ok(m, `bad line: ${l}`);
    return { tool: m[1], start: Number(m[2]), end: Number(m[3]), code: Number(m[4]) };
  });
}

Deno.test("OVZ_SIM_TIMES: one line per call, output and exit codes unchanged", async () => {
  const root = await mkRoot();
  const times = `${root}/../times`;
  try {
    await mkCt(root, 101);
    const calls: string[][] = [["status", "101"], ["start", "999"]];
    const plain = [];
    for (const a of calls) plain.push(await vzctl(root, ...a));
    assert.deepEqual(plain.map((r) => r.code), [0, 14]);

    const env = { OVZ_SIM_TIMES: times };
    const t0 = Date.now() / 1000;
    const timed = [];
    for (const a of calls) timed.push(await run(root, "vzctl", a, { env }));
    const t1 = Date.now() / 1000;
    assert.deepEqual(timed, plain);

    const lines = timesOf(times);
    assert.equal(lines.length, 2);
    assert.deepEqual(lines.map((l) => [l.tool, l.code]), [["vzctl", 0], ["vzctl", 14]]);
    for (const l of lines) {
      assert.ok(l.end >= l.start, JSON.stringify(l));
      assert.ok(l.start >= t0 - 0.05 && l.end <= t1 + 0.05, JSON.stringify({ l, t0, t1 }));
    }
    assert.ok(lines[1].start >= lines[0].end);

    // stdin still reaches the tool; other tools log under their own name
    assert.equal((await vzctl(root, "start", "101")).code, 0);
    const ex = await run(root, "vzctl", ["exec2", "101", "cat; exit 3"], { env, stdin: "hi\n" });
    assert.deepEqual([ex.code, ex.stdout], [3, "hi\n"]);
    const ls = await run(root, "vzlist", ["-H", "-o", "ctid"], { env });
    assert.equal(ls.stdout, "       101\n");
    assert.deepEqual(timesOf(times).slice(2).map((l) => [l.tool, l.code]), [
      ["vzctl", 3],
      ["vzlist", 0],
    ]);

    // concurrent calls: whole lines
    Deno.writeTextFileSync(times, "");
    await Promise.all(Array.from({ length: 8 }, () => run(root, "vzlist", ["-a"], { env })));
    assert.equal(timesOf(times).length, 8);
  } finally {
    cleanup(root);
  }
});

Deno.test("OVZ_SIM_TIMES unset: the shim execs the tool (no extra process)", async () => {
  const root = await mkRoot();
  try {
    await mkCt(root, 101);
    assert.equal((await vzctl(root, "start", "101")).code, 0);
    // `vzctl exec` runs bash under the tool: its $PPID is the tool's pid
    const ppid = async (env: Record<string, string>) => {
      const c = new Deno.Command(`${BIN}/vzctl`, {
        args: ["exec", "101", "echo $PPID"],
        env: { OVZ_SIM_ROOT: root, ...env },
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const o = await c.output();
      return [c.pid, Number(new TextDecoder().decode(o.stdout).trim())];
    };
    const [pid, toolPid] = await ppid({ OVZ_SIM_TIMES: "" });
    assert.equal(toolPid, pid);
    const [pid2, toolPid2] = await ppid({ OVZ_SIM_TIMES: `${root}/../times` });
    assert.notEqual(toolPid2, pid2);
  } finally {
    cleanup(root);
  }
});
