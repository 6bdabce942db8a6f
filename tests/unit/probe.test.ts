// im-probe: formatting survives oned 2.2.1's parsing; reading works against a node sysroot.
import assert from "node:assert/strict";
import {
  busyFraction,
  formatProbe,
  formatValue,
  parseCpuinfo,
  parseMeminfo,
  parseNetDev,
  parseProcStat,
  type ProbeFacts,
  readProbeFacts,
  templateNames,
} from "../../src/actions/im/probe.ts";
import { LocalHost } from "../../src/host/local.ts";

const root = new URL("../..", import.meta.url).pathname;
const deno = `${root}node_modules/.bin/deno`;

/**
 * What oned does with the probe output (InformationManagerDriver::protocol): run_probes joins
 * the lines with blanks, every "," becomes "\n", then the template parser reads KEY=VALUE
 * pairs: a value is a double-quoted string or a word without blanks, "=", ",", "[", "]", "#".
 * Anything else is a syntax error (the whole monitoring fails).
 */
function onedParse(probeStdout: string): Record<string, string> {
  const line = probeStdout.split("\n").join(" "); // run_probes: echo $data | tr '\n' ' '
  const text = line.replaceAll(",", "\n") + "\n";
  const out: Record<string, string> = {};
  const re = /([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?:"([^"]*)"|([^\s=,\[\]#"]+))/g;
  let rest = text;
  for (const m of text.matchAll(re)) {
    out[m[1].toUpperCase()] = m[2] ?? m[3];
    rest = rest.replace(m[0], "");
  }
  assert.equal(rest.trim(), "", `unparsed text left: ${JSON.stringify(rest.trim())}`);
  return out;
}

const facts: ProbeFacts = {
  hostname: "cn1.example.org",
  arch: "x86_64",
  modelName: 'Intel(R) Xeon(R) CPU E5520 @ 2.27GHz, "rev" 5 = x',
  cpuMhz: 2266,
  cores: 8,
  busy: 0.25,
  memTotalKb: 16000000,
  memFreeKb: 8000000,
  buffersKb: 1000000,
  cachedKb: 2000000,
  netRx: 123456,
  netTx: 654321,
  kernel: "vswap",
  vzctlVersion: "4.11.1",
  runningCts: 3,
  templates: ["centos-6-x86_64", "debian-7.0-x86_64"],
  problems: ["vzlist: a, b"],
};

Deno.test("probe: format has no commas, quotes blanks, oned parses every key", () => {
  const out = formatProbe(facts);
  assert.ok(!out.includes(","), out);
  const kv = onedParse(out);
  assert.equal(kv.HYPERVISOR, "ovz");
  assert.equal(kv.TOTALCPU, "800");
  assert.equal(kv.USEDCPU, "200");
  assert.equal(kv.FREECPU, "600");
  assert.equal(kv.TOTALMEMORY, "16000000");
  assert.equal(kv.USEDMEMORY, String(16000000 - 8000000 - 1000000 - 2000000));
  assert.equal(kv.FREEMEMORY, String(8000000 + 1000000 + 2000000));
  assert.equal(kv.MODELNAME, "Intel(R) Xeon(R) CPU E5520 @ 2.27GHz rev 5 x");
  assert.equal(kv.CPUSPEED, "2266");
  assert.equal(kv.OVZ_KERNEL, "vswap");
  assert.equal(kv.VZCTL_VERSION, "4.11.1");
  assert.equal(kv.OVZ_RUNNING_CTS, "3");
  assert.equal(kv.OVZ_TEMPLATES, "centos-6-x86_64 debian-7.0-x86_64");
  assert.equal(kv.NETRX, "123456");
  assert.equal(kv.HOSTNAME, "cn1.example.org");
  assert.match(out, /^MODELNAME="[^"=,]*"$/m);
});

Deno.test("probe: empty and odd values stay parseable", () => {
  const out = formatProbe({
    ...facts,
    modelName: "",
    templates: [],
    hostname: "a b",
    problems: [],
  });
  const kv = onedParse(out);
  assert.equal(kv.OVZ_TEMPLATES, "");
  assert.equal(kv.HOSTNAME, "a b");
  assert.equal(kv.MODELNAME, "unknown");
  assert.equal(formatValue("x=y"), '"xy"');
  assert.equal(formatValue("a,b"), '"a b"');
  assert.equal(formatValue(-3), "0");
});

Deno.test("probe: /proc parsers", () => {
  const stat =
    "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 50 0 50 400 0 0 0 0\ncpu1 50 0 50 400 0 0 0 0\n";
  const a = parseProcStat(stat);
  assert.equal(a.cores, 2);
  assert.deepEqual(a.sample, { total: 1000, idle: 800 });
  assert.equal(busyFraction(a.sample, { total: 1100, idle: 850 }), 0.5);
  assert.equal(busyFraction(a.sample, a.sample), 0);
  const ci = parseCpuinfo(
    "processor\t: 0\nmodel name\t: X\ncpu MHz\t\t: 2400.499\nprocessor\t: 1\n",
  );
  assert.deepEqual(ci, { model: "X", mhz: 2400, processors: 2 });
  assert.equal(parseMeminfo("MemTotal:  100 kB\nMemFree: 10 kB\n").MemFree, 10);
  const net = "Inter-|   Receive\n face |bytes\n    lo: 999 1 0 0 0 0 0 0 999 1 0 0 0 0 0 0\n" +
    "  eth0: 10 1 0 0 0 0 0 0 20 1 0 0 0 0 0 0\nvenet0:5 1 0 0 0 0 0 0 7 1 0 0 0 0 0 0\n";
  assert.deepEqual(parseNetDev(net), { rx: 15, tx: 27 });
  assert.deepEqual(
    templateNames([
      "b.tar.gz",
      "a.tar.xz",
      "notes.txt",
      ".x.tar.gz",
      "c.tar",
      "a.tar.gz",
      "web-onevz-0123456789ab.tar.gz", // a VM's image deploy placed: not the node's template
      "c.tar.onevz-tmp-1a2b3c4d",
    ]),
    ["a", "b", "c"],
  );
});

/** A node sysroot by hand (or the simulator's, when it exists) plus fake OpenVZ tools. */
async function makeNode(): Promise<{ dir: string; sysroot: string; bin: string }> {
  const dir = await Deno.makeTempDir({ prefix: "onevz-probe-" });
  const ovzsim = `${root}fixtures/sim/bin/ovzsim`;
  let sysroot = `${dir}/root`;
  let bin = `${dir}/bin`;
  let simulated = false;
  try {
    await Deno.stat(ovzsim);
    const r = await new Deno.Command(ovzsim, {
      args: ["init", sysroot, "--flavour", "vswap", "--template", "centos-6-x86_64"],
      stdout: "null",
      stderr: "piped",
    }).output();
    simulated = r.success;
    if (simulated) bin = `${root}fixtures/sim/bin`;
  } catch { /* no simulator in this checkout */ }
  const w = async (p: string, text: string) => {
    await Deno.mkdir(`${sysroot}/${p}`.replace(/\/[^/]*$/, ""), { recursive: true });
    await Deno.writeTextFile(`${sysroot}/${p}`, text);
  };
  if (!simulated) {
    sysroot = `${dir}/root`;
    await w("etc/vz/vz.conf", `VIRTUOZZO=yes\nTEMPLATE="${sysroot}/vz/template"\n`);
    await w("vz/template/cache/centos-6-x86_64.tar.gz", "");
    await w("vz/template/cache/debian-7.0-x86_64.tar.xz", "");
    await w("proc/vz/vswap", "");
    await Deno.mkdir(bin, { recursive: true });
    await Deno.writeTextFile(`${bin}/vzctl`, "#!/bin/sh\necho 'vzctl version 4.11.1'\n", {
      mode: 0o755,
    });
    await Deno.writeTextFile(
      `${bin}/vzlist`,
      "#!/bin/sh\nprintf '       101\\n       102\\n'\n",
      { mode: 0o755 },
    );
  }
  // Fixed /proc files so the numbers are known (the simulator's are used when it has them).
  await w("proc/stat", "cpu  10 0 10 80 0 0 0 0\ncpu0 5 0 5 40\ncpu1 5 0 5 40\ncpu2 0 0 0 0\n");
  await w("proc/cpuinfo", "processor\t: 0\nmodel name\t: Sim CPU, 2 cores\ncpu MHz\t\t: 1999.9\n");
  await w("proc/meminfo", "MemTotal: 4000 kB\nMemFree: 1000 kB\nBuffers: 500 kB\nCached: 500 kB\n");
  await w("proc/net/dev", "  lo: 9 0 0 0 0 0 0 0 9 0\n eth0: 100 0 0 0 0 0 0 0 200 0\n");
  return { dir, sysroot, bin };
}

Deno.test("probe: reads a node sysroot through the Host", async () => {
  const node = await makeNode();
  const oldPath = Deno.env.get("PATH");
  Deno.env.set("PATH", `${node.bin}:${oldPath}`);
  Deno.env.set("OVZ_SIM_ROOT", node.sysroot);
  try {
    const host = new LocalHost({ sysroot: node.sysroot, useSudo: false });
    const ran: string[] = [];
    host.observe((c) => ran.push(c.argv[0]));
    const f = await readProbeFacts(host, { sampleMs: 10 });
    // On the node itself only the tools start a process: the template cache is read directly.
    assert.deepEqual(ran.sort(), ["uname", "vzctl", "vzlist"]);
    assert.equal(f.cores, 3);
    assert.equal(f.cpuMhz, 2000);
    assert.equal(f.memTotalKb, 4000);
    assert.deepEqual({ rx: f.netRx, tx: f.netTx }, { rx: 100, tx: 200 });
    assert.equal(f.kernel, "vswap");
    assert.ok(f.templates.includes("centos-6-x86_64"), f.templates.join(" "));
    const kv = onedParse(formatProbe(f));
    assert.equal(kv.TOTALCPU, "300");
    assert.equal(kv.USEDCPU, "0");
    assert.equal(kv.FREECPU, "300");
    assert.equal(kv.USEDMEMORY, "2000");
    assert.equal(kv.FREEMEMORY, "2000");
    assert.equal(kv.MODELNAME, "Sim CPU 2 cores");
    assert.match(kv.VZCTL_VERSION, /^\d+(\.\d+)+$/);
  } finally {
    Deno.env.set("PATH", oldPath!);
    Deno.env.delete("OVZ_SIM_ROOT");
    await Deno.remove(node.dir, { recursive: true });
  }
});

Deno.test("probe: the real program (`onevz im-probe ovz cn1`) prints parseable output", async () => {
  const node = await makeNode();
  try {
    const r = await new Deno.Command(deno, {
      args: ["run", "-A", "--quiet", `${root}main.ts`, "im-probe", "ovz", "cn1"],
      env: {
        ONEVZ_SYSROOT: node.sysroot,
        OVZ_SIM_ROOT: node.sysroot,
        PATH: `${node.bin}:${Deno.env.get("PATH")}`,
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(r.stdout);
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
    const kv = onedParse(out);
    assert.equal(kv.HYPERVISOR, "ovz");
    assert.equal(kv.TOTALCPU, "300");
    assert.ok(Number(kv.TOTALMEMORY) > 0);
  } finally {
    await Deno.remove(node.dir, { recursive: true });
  }
});

Deno.test("probe: CPU use over the monitoring interval, from the previous probe's sample", async () => {
  const node = await makeNode();
  const remotes = `${node.dir}/remotes`;
  await Deno.mkdir(remotes);
  const probe = async () => {
    const r = await new Deno.Command(deno, {
      args: ["run", "-A", "--quiet", `${root}main.ts`, "im-probe", "ovz", "cn1"],
      env: {
        ONEVZ_SYSROOT: node.sysroot,
        OVZ_SIM_ROOT: node.sysroot,
        ONEVZ_REMOTES: remotes,
        PATH: `${node.bin}:${Deno.env.get("PATH")}`,
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
    return onedParse(new TextDecoder().decode(r.stdout));
  };
  try {
    // First probe: no previous sample; /proc/stat does not move, so 0 % used.
    assert.equal((await probe()).USEDCPU, "0");
    const [sample] = [...Deno.readDirSync(remotes)].map((e) => e.name);
    assert.match(sample, /^\.onevz-probe-.+\.json$/);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(`${remotes}/${sample}`)), {
      total: 100,
      idle: 80,
    });
    // Between the probes the node spent 50 jiffies, 40 of them busy: 80 % of 3 cores.
    await Deno.writeTextFile(
      `${node.sysroot}/proc/stat`,
      "cpu  50 0 10 90 0 0 0 0\ncpu0 5 0 5 40\ncpu1 5 0 5 40\ncpu2 0 0 0 0\n",
    );
    const second = await probe();
    assert.equal(second.USEDCPU, "240");
    assert.equal(second.FREECPU, "60");
    // A sample from before a reboot (counters went back) is not used: sampled afresh.
    await Deno.writeTextFile(`${remotes}/${sample}`, JSON.stringify({ total: 9e9, idle: 1 }));
    assert.equal((await probe()).USEDCPU, "0");
  } finally {
    await Deno.remove(node.dir, { recursive: true });
  }
});

Deno.test("probe run by hand: the CPU sample goes to $XDG_RUNTIME_DIR, or nowhere; never TMPDIR", async () => {
  const node = await makeNode();
  const tmp = `${node.dir}/tmp`;
  const runtime = `${node.dir}/runtime`;
  await Deno.mkdir(tmp);
  await Deno.mkdir(runtime, { mode: 0o700 });
  const probe = async (xdg: string) => {
    const r = await new Deno.Command(deno, {
      args: ["run", "-A", "--quiet", `${root}main.ts`, "im-probe", "ovz", "cn1"],
      env: {
        ONEVZ_SYSROOT: node.sysroot,
        OVZ_SIM_ROOT: node.sysroot,
        ONEVZ_REMOTES: "",
        TMPDIR: tmp,
        XDG_RUNTIME_DIR: xdg,
        PATH: `${node.bin}:${Deno.env.get("PATH")}`,
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
    assert.equal(onedParse(new TextDecoder().decode(r.stdout)).HYPERVISOR, "ovz");
  };
  try {
    await probe("");
    assert.deepEqual([...Deno.readDirSync(tmp)], [], "nothing left in TMPDIR");
    await probe(runtime);
    assert.deepEqual([...Deno.readDirSync(tmp)], [], "nothing left in TMPDIR");
    const kept = [...Deno.readDirSync(runtime)].map((e) => e.name);
    assert.equal(kept.length, 1, kept.join(" "));
    assert.match(kept[0], /^\.onevz-probe-.+\.json$/);
  } finally {
    await Deno.remove(node.dir, { recursive: true });
  }
});
