// The simulator as a stock vzctl 4.11.1 (and 3.0.30.2) install, per vzctl-observed.md:
// node defaults, ploop refusals and images, leftover configs, stored forms, config reading,
// status and vzlist on an empty node.
import assert from "node:assert/strict";
import { cleanup, mkCt, mkRoot, read, run, vzctl, vzlist } from "./helpers.ts";

const exists = (p: string) => {
  try {
    Deno.lstatSync(p);
    return true;
  } catch {
    return false;
  }
};

const PLOOP_LINES = [
  "No ploop support in the kernel, or kernel is way too old.",
  "Make sure you have OpenVZ kernel 042stab058.7 or later running,",
  "and kernel ploop modules loaded.",
  "Alternatively, if you can't or don't want to use ploop, please",
  "add --layout simfs option, or set VE_LAYOUT=simfs in /etc/vz/vz.conf",
  "Creation of container private area failed",
].join("\n") + "\n";

Deno.test("stock node: vz.conf, the packaged 0.conf and samples (4.11.1, 3.0.30.2)", async () => {
  for (const flavour of ["ubc", "vswap"]) {
    const root = await mkRoot("--flavour", flavour);
    try {
      const vz = read(`${root}/etc/vz/vz.conf`);
      assert.match(vz, /^VE_LAYOUT=ploop$/m);
      assert.match(vz, /^CONFIGFILE="vswap-256m"$/m);
      assert.match(read(`${root}/etc/vz/conf/0.conf`), /configuration file for VE0/);
      const basic = read(`${root}/etc/vz/conf/ve-basic.conf-sample`);
      assert.ok(basic.includes("\n#  This program is free software"), "GPL header");
      assert.match(basic, /^NUMOTHERSOCK="360:360"$/m);
      assert.match(basic, /^DISKINODES="131072:144179"$/m);
      assert.match(basic, /^NETFILTER="stateless"$/m);
      assert.doesNotMatch(basic, /ONBOOT/);
    } finally {
      cleanup(root);
    }
  }
  const old = await mkRoot("--vzctl", "3.0.30.2");
  try {
    const vz = read(`${old}/etc/vz/vz.conf`);
    assert.doesNotMatch(vz, /VE_LAYOUT/);
    assert.match(vz, /^CONFIGFILE="basic"$/m);
    const basic = read(`${old}/etc/vz/conf/ve-basic.conf-sample`);
    assert.match(basic, /^DISKINODES="200000:220000"$/m);
    assert.match(basic, /^NUMOTHERSOCK="360:360"$/m);
    assert.doesNotMatch(basic, /ONBOOT/);
  } finally {
    cleanup(old);
  }
});

Deno.test("stock node: create without --layout tries ploop: exit 99, six lines, nothing left", async () => {
  const root = await mkRoot();
  try {
    const r = await vzctl(root, "create", "101", "--ostemplate", "centos-6-x86_64");
    assert.equal(r.code, 99);
    assert.equal(r.stderr, PLOOP_LINES);
    assert.ok(!exists(`${root}/etc/vz/conf/101.conf`), "the sample copy is removed again");
    assert.ok(!exists(`${root}/vz/private/101`));
    const ok = await vzctl(
      root,
      "create",
      "101",
      "--ostemplate",
      "centos-6-x86_64",
      "--layout",
      "simfs",
    );
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(read(`${root}/etc/vz/conf/101.conf`), /^VE_LAYOUT="simfs"$/m);
    assert.ok(Deno.statSync(`${root}/vz/root/101`).isDirectory, "create makes the empty VE_ROOT");
    // --diskspace on a config without VE_LAYOUT: ploop (vz.conf) is assumed, exit 99
    Deno.writeTextFileSync(`${root}/etc/vz/conf/102.conf`, "");
    const ds = await vzctl(root, "set", "102", "--diskspace", "1G", "--save", "--force");
    assert.equal(ds.code, 99);
  } finally {
    cleanup(root);
  }
});

Deno.test("leftover CTID.conf without VE_LAYOUT: create ignores vz.conf and tries ploop", async () => {
  // The operator's vz.conf says simfs; a config left behind (no VE_LAYOUT) still breaks create.
  const root = await mkRoot("--ve-layout", "simfs");
  try {
    const conf = `${root}/etc/vz/conf/101.conf`;
    Deno.writeTextFileSync(conf, read(`${root}/etc/vz/conf/ve-vswap-256m.conf-sample`));
    const r = await vzctl(root, "create", "101", "--ostemplate", "centos-6-x86_64");
    assert.equal(r.code, 99);
    assert.equal(
      r.stdout,
      "Warning: CT config file already exists, not applying a default config sample.\n" +
        "It might lead to incomplete CT configuration, you can use --applyconfig to fix.\n",
    );
    assert.equal(r.stderr, PLOOP_LINES);
    assert.ok(exists(conf), "the leftover config stays");
    // a config this create makes from the sample follows vz.conf
    const fresh = await vzctl(root, "create", "102", "--ostemplate", "centos-6-x86_64");
    assert.equal(fresh.code, 0, fresh.stderr);
    assert.match(read(`${root}/etc/vz/conf/102.conf`), /^VE_LAYOUT="simfs"$/m);
    // an explicit --layout wins over the autodetection
    const explicit = await vzctl(
      root,
      "create",
      "101",
      "--ostemplate",
      "centos-6-x86_64",
      "--layout",
      "simfs",
    );
    assert.equal(explicit.code, 0, explicit.stderr);
  } finally {
    cleanup(root);
  }
});

Deno.test("ploop node: the private area is an image; files only at VE_ROOT while mounted", async () => {
  const root = await mkRoot("--flavour", "vswap", "--ploop");
  try {
    assert.ok(exists(`${root}/proc/vz/ploop_minor`));
    const r = await vzctl(root, "create", "101", "--ostemplate", "centos-6-x86_64");
    assert.equal(r.code, 0, r.stderr);
    const priv = `${root}/vz/private/101`;
    assert.match(read(`${root}/etc/vz/conf/101.conf`), /^VE_LAYOUT="ploop"$/m);
    assert.deepEqual([...Deno.readDirSync(priv)].map((e) => e.name), ["root.hdd"]);
    assert.ok(Deno.statSync(`${priv}/root.hdd/root.hdd`).isFile);
    assert.ok(exists(`${priv}/root.hdd/DiskDescriptor.xml`));
    assert.ok(!exists(`${priv}/etc`), "no files of the container in the private area");
    assert.equal((await vzctl(root, "start", "101")).code, 0);
    assert.ok(exists(`${root}/vz/root/101/sbin/init`));
    // the simulator's exec runs in the CT's files (cwd), so paths are relative
    const ex = await vzctl(root, "exec", "101", "echo kept > root/marker");
    assert.equal(ex.code, 0, ex.stderr);
    assert.equal((await vzctl(root, "stop", "101")).code, 0);
    assert.deepEqual([...Deno.readDirSync(`${root}/vz/root/101`)], [], "unmounted: VE_ROOT empty");
    assert.equal((await vzctl(root, "mount", "101")).code, 0);
    assert.equal(read(`${root}/vz/root/101/root/marker`), "kept\n");
    assert.equal((await vzctl(root, "umount", "101")).code, 0);
    assert.ok(!exists(`${root}/vz/root/101/root`));
    assert.equal((await vzctl(root, "destroy", "101")).code, 0);
    assert.ok(!exists(priv));
  } finally {
    cleanup(root);
  }
});

Deno.test("stored forms: CPUMASK ranges, canonical IPv6, one number when barrier = limit", async () => {
  const root = await mkRoot("--flavour", "vswap");
  try {
    await mkCt(root, 101);
    const conf = `${root}/etc/vz/conf/101.conf`;
    const set = async (...a: string[]) => {
      const r = await vzctl(root, "set", "101", ...a, "--save");
      assert.equal(r.code, 0, r.stderr);
      return read(conf);
    };
    for (
      const [mask, stored] of [
        ["0,1,2,3", "0-3"],
        ["3,1", "1,3"],
        ["2-3,0", "0,2-3"],
        ["0-4095", "all"],
      ]
    ) assert.match(await set("--cpumask", mask), new RegExp(`^CPUMASK="${stored}"$`, "m"));
    assert.match(await set("--ipadd", "2001:DB8:0:0::1"), /^IP_ADDRESS="2001:db8::1"$/m);
    assert.match(await set("--swap", "0"), /^SWAPPAGES="0"$/m);
    assert.match(await set("--numproc", "400:400"), /^NUMPROC="400"$/m);
  } finally {
    cleanup(root);
  }
});

Deno.test("config reading: first occurrence wins (warned), ONBOOT=yes # boot skipped", async () => {
  const root = await mkRoot();
  try {
    await mkCt(root, 101, "--hostname", "first.example");
    const conf = `${root}/etc/vz/conf/101.conf`;
    Deno.writeTextFileSync(conf, 'HOSTNAME="second.example"\nONBOOT=yes # boot\n', {
      append: true,
    });
    const lines = read(conf).split("\n");
    const first = lines.indexOf('HOSTNAME="first.example"') + 1;
    const dup = lines.indexOf('HOSTNAME="second.example"') + 1;
    const r = await vzctl(root, "status", "101");
    assert.equal(
      r.stderr,
      `Warning at /etc/vz/conf/101.conf:${dup}: duplicate for HOSTNAME ("second.example"), ignored\n` +
        `Warning at /etc/vz/conf/101.conf:${
          dup + 1
        }: invalid value for ONBOOT ("yes # boot"), skipped\n`,
    );
    assert.match(
      (await vzlist(root, "-a", "-H", "-o", "hostname,onboot")).stdout,
      /first\.example\s+no/,
    );
    // a multi-line value: vzctl skips its lines with a warning each, and keeps them on save
    Deno.writeTextFileSync(conf, 'FIREWALL="\n[22]\n*\n"\n', { append: true });
    const n = read(conf).split("\n").length - 1;
    const w = (await vzctl(root, "status", "101")).stderr.split("\n").slice(2, -1);
    assert.deepEqual(w, [
      `Warning: can't parse /etc/vz/conf/101.conf:${n - 3} (unmatched quotes), skipping`,
      `Warning: can't parse /etc/vz/conf/101.conf:${n - 2} ('=' not found), skipping`,
      `Warning: can't parse /etc/vz/conf/101.conf:${n - 1} ('=' not found), skipping`,
      `Warning: can't parse /etc/vz/conf/101.conf:${n} ('=' not found), skipping`,
    ]);
    // set replaces only the first occurrence
    assert.equal(
      (await vzctl(root, "--quiet", "set", "101", "--hostname", "new.example", "--save")).code,
      0,
    );
    const after = read(conf).split("\n");
    assert.equal(after[first - 1], 'HOSTNAME="new.example"');
    assert.equal(after[dup - 1], 'HOSTNAME="second.example"');
    assert.deepEqual(after.slice(-5, -1), ['FIREWALL="', "[22]", "*", '"']);
  } finally {
    cleanup(root);
  }
});

Deno.test("status: stat(VE_ROOT) on stderr when VE_ROOT is missing, exit 0", async () => {
  const root = await mkRoot();
  try {
    let r = await vzctl(root, "status", "777");
    assert.deepEqual(
      [r.code, r.stdout, r.stderr],
      [
        0,
        "CTID 777 deleted unmounted down\n",
        `stat(${root}/vz/root/777): No such file or directory\n`,
      ],
    );
    Deno.writeTextFileSync(`${root}/etc/vz/conf/201.conf`, "");
    r = await vzctl(root, "status", "201");
    assert.match(r.stderr, /^stat\(.*\/vz\/root\/201\): No such file or directory\n$/);
    await mkCt(root, 101);
    r = await vzctl(root, "status", "101");
    assert.deepEqual([r.stdout, r.stderr], ["CTID 101 exist unmounted down\n", ""]);
  } finally {
    cleanup(root);
  }
});

Deno.test("vzlist on an empty node: header only / [ ] with 0.conf; not found without; 3.0.30.2 exit 1", async () => {
  const root = await mkRoot();
  try {
    let r = await vzlist(root, "-a");
    assert.deepEqual(
      [r.code, r.stdout, r.stderr],
      [0, "      CTID      NPROC STATUS    IP_ADDR         HOSTNAME\n", ""],
    );
    r = await vzlist(root, "-a", "-H", "-o", "ctid,status");
    assert.deepEqual([r.code, r.stdout, r.stderr], [0, "", ""]);
    r = await vzlist(root, "-a", "-j");
    assert.deepEqual([r.code, r.stdout, r.stderr], [0, "[\n]\n", ""]);
    r = await vzlist(root, "-a", "-N", "x*");
    assert.deepEqual([r.code, r.stderr], [0, ""]);
    Deno.writeTextFileSync(`${root}/etc/vz/conf/201.conf`, "");
    r = await vzlist(root, "201");
    assert.deepEqual([r.code, r.stdout.split("\n").length, r.stderr], [0, 2, ""]);
    Deno.removeSync(`${root}/etc/vz/conf/0.conf`);
    r = await vzlist(root, "-a");
    assert.deepEqual([r.stdout, r.stderr], ["", "Container(s) not found\n"]);
  } finally {
    cleanup(root);
  }
  const old = await mkRoot("--vzctl", "3.0.30.2");
  try {
    const r = await vzlist(old, "-a");
    assert.deepEqual([r.code, r.stdout, r.stderr], [1, "", "Container(s) not found\n"]);
  } finally {
    cleanup(old);
  }
});

Deno.test("vzfirewall versions: how each tells its version; 1.13+ needs Perl's Switch", async () => {
  for (
    const [v, args, code, pattern] of [
      ["1.04", ["--version"], 255, /Version: 1\.04, 2010-03-04/],
      ["1.06", [], 255, /Version: 1\.06, 2013-12-18/],
      ["1.07", ["--version"], 0, /^vzfirewall 1\.07, /],
      ["1.11", ["-V"], 1, /Unknown option/],
      ["1.12", ["-V"], 0, /^vzfirewall 1\.12, /],
      ["1.14", ["--version"], 0, /^vzfirewall 1\.14, 2014-01-27\n$/],
    ] as const
  ) {
    const root = await mkRoot("--vzfirewall", v);
    try {
      const r = await run(root, "vzfirewall", [...args]);
      assert.equal(r.code, code, `${v} ${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stdout + r.stderr, pattern, v);
    } finally {
      cleanup(root);
    }
  }
  const noSwitch = await mkRoot("--vzfirewall", "1.13", "--no-perl-switch");
  try {
    const r = await run(noSwitch, "vzfirewall", ["-a"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^Can't locate Switch\.pm in @INC/);
    assert.match(
      r.stderr,
      /BEGIN failed--compilation aborted at \/usr\/sbin\/vzfirewall line 16\.\n$/,
    );
  } finally {
    cleanup(noSwitch);
  }
  const old = await mkRoot("--vzfirewall", "1.12", "--no-perl-switch");
  try {
    assert.equal((await run(old, "vzfirewall", ["--version"])).code, 0, "1.12 needs no Switch");
  } finally {
    cleanup(old);
  }
});
