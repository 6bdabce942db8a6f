import assert from "node:assert/strict";
import { cleanup, mkCt, mkRoot, read, run, vzctl } from "./helpers.ts";

const VPS145 = [
  "--kmemsize",
  "14372700:14790164",
  "--lockedpages",
  "2048:2048",
  "--privvmpages",
  "65536:69632",
  "--shmpages",
  "21504:21504",
  "--physpages",
  "0:unlimited",
  "--vmguarpages",
  "33792:unlimited",
  "--oomguarpages",
  "26112:unlimited",
  "--cpuunits",
  "2000",
  "--cpulimit",
  "25",
  "--cpus",
  "2",
  "--diskspace",
  "10485760:11530240",
  "--diskinodes",
  "200000:220000",
  "--swappages",
  "0:1024M",
  "--ipadd",
  "111.111.111.111",
  "--hostname",
  "vps145.example.org",
  "--nameserver",
  "111.111.111.2",
  "--onboot",
  "yes",
];
const VPS145_CONF = `KMEMSIZE="14372700:14790164"
LOCKEDPAGES="2048"
PRIVVMPAGES="65536:69632"
SHMPAGES="21504"
PHYSPAGES="0:unlimited"
VMGUARPAGES="33792:unlimited"
OOMGUARPAGES="26112:unlimited"
SWAPPAGES="0:262144"
IP_ADDRESS="111.111.111.111"
HOSTNAME="vps145.example.org"
NAMESERVER="111.111.111.2"
CPUUNITS="2000"
CPULIMIT="25"
CPUS="2"
ONBOOT="yes"
DISKSPACE="10485760:11530240"
DISKINODES="200000:220000"
`;

Deno.test("vzctl set --save writes the reference vps145 config byte for byte (4.x and 3.0.x)", async () => {
  for (const v of ["4.11.1", "3.0.30.2"]) {
    // observed with VE_LAYOUT=simfs (stock ploop refuses --diskspace without ploop: exit 99)
    const root = await mkRoot("--vzctl", v, ...(v === "4.11.1" ? ["--ve-layout", "simfs"] : []));
    try {
      Deno.writeTextFileSync(`${root}/etc/vz/conf/145.conf`, "");
      const r = await vzctl(root, "set", "145", ...VPS145, "--save", "--force");
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "CT configuration saved to /etc/vz/conf/145.conf\n");
      assert.equal(read(`${root}/etc/vz/conf/145.conf`), VPS145_CONF);
      // same values again: nothing to save
      const again = await vzctl(root, "set", "145", ...VPS145, "--save");
      assert.equal(again.stdout, "No changes in CT configuration, not saving\n");
    } finally {
      cleanup(root);
    }
  }
});

Deno.test("vzctl set keeps comments, replaces in place, appends new keys; option errors", async () => {
  const root = await mkRoot();
  try {
    const p = `${root}/etc/vz/conf/101.conf`;
    Deno.writeTextFileSync(p, '# keep me\nCPUUNITS="1000"\nFOO="bar"\n');
    let r = await vzctl(root, "set", "101", "--cpuunits", "3000", "--ipadd", "10.0.0.1", "--save");
    assert.equal(r.code, 0);
    assert.equal(read(p), '# keep me\nCPUUNITS="3000"\nFOO="bar"\nIP_ADDRESS="10.0.0.1"\n');
    r = await vzctl(root, "set", "101", "--ipadd", "10.0.0.2", "--save");
    assert.match(read(p), /IP_ADDRESS="10.0.0.1 10.0.0.2"/);
    r = await vzctl(root, "set", "101", "--ipdel", "all", "--save");
    assert.match(read(p), /IP_ADDRESS=""/);
    r = await vzctl(root, "set", "101", "--ram", "512M", "--swap", "1G", "--save");
    assert.equal(r.code, 3);
    assert.match(r.stderr, /kernel does not support vswap/);
    r = await vzctl(root, "set", "101", "--ram", "512M", "--force", "--save");
    assert.equal(r.code, 3, "--force after --ram is too late");
    r = await vzctl(root, "set", "101", "--force", "--ram", "512M", "--swap", "1G", "--save");
    assert.equal(r.code, 0);
    assert.match(read(p), /PHYSPAGES="0:131072"\n/);
    assert.match(read(p), /SWAPPAGES="0:262144"\n/);
    const p2 = `${root}/etc/vz/conf/102.conf`;
    Deno.writeTextFileSync(p2, "");
    r = await vzctl(root, "set", "102", "--physpages", "0:512M", "--save");
    assert.equal(r.code, 28);
    assert.equal(r.stderr, "Error: required UB parameter (swap) not set\n");
    assert.equal(read(p2), "");
    r = await vzctl(root, "set", "102", "--kmemsize", "5:3", "--save");
    assert.equal(r.code, 0);
    r = await vzctl(root, "set", "102", "--foo", "1", "--save");
    assert.equal(r.code, 21);
    assert.match(r.stderr, /unrecognized option/);
    for (
      const [o, v] of [
        ["--kmemsize", "abc"],
        ["--cpus", "abc"],
        ["--onboot", "maybe"],
        ["--ipadd", "300.1.1.1"],
        ["--cpuunits", "999999999"],
        ["--cpuunits", "7"],
        ["--numproc", "10K"],
      ]
    ) {
      r = await vzctl(root, "set", "102", o, v, "--save");
      assert.equal(r.code, 21, `${o} ${v}`);
      assert.match(r.stderr, new RegExp(`Bad parameter for ${o}: ${v}`));
    }
    r = await vzctl(root, "set", "102", "--kmemsize");
    assert.equal(r.code, 21);
    r = await vzctl(root, "set", "abc", "--save");
    assert.equal(r.code, 21);
    r = await vzctl(root, "frobnicate", "102");
    assert.equal(r.code, 20);
    assert.equal(r.stderr, "Bad command: frobnicate\n");
    r = await vzctl(root, "set", "102");
    assert.equal(r.code, 0);
    assert.equal(r.stdout, "No changes in CT configuration, not saving\n");
    r = await vzctl(
      root,
      "set",
      "102",
      "--privvmpages",
      "1G:unlimited",
      "--tcpsndbuf",
      "1M",
      "--save",
    );
    assert.match(read(p2), /PRIVVMPAGES="262144:unlimited"\nTCPSNDBUF="1048576"\n/);
    r = await vzctl(
      root,
      "set",
      "102",
      "--netif_add",
      "eth0,02:00:0a:01:00:58,,,br0",
      "--nameserver",
      "8.8.8.8",
      "--nameserver",
      "8.8.4.4",
      "--cpulimit",
      "50%",
      "--name",
      "web",
      "--save",
    );
    assert.equal(r.code, 0, r.stderr);
    const t = read(p2);
    assert.match(
      t,
      /NETIF="ifname=eth0,bridge=br0,mac=02:00:0A:01:00:58,host_ifname=veth102\.0,host_mac=00:18:51:[0-9A-F:]{8}"/,
    );
    assert.match(t, /NAMESERVER="8.8.8.8 8.8.4.4"/);
    assert.match(t, /CPULIMIT="200"/);
    r = await vzctl(root, "status", "web");
    assert.equal(r.stdout, "CTID 102 deleted unmounted down\n");
    r = await vzctl(root, "set", "102", "--name", "x");
    assert.equal(r.code, 131);
    r = await vzctl(root, "set", "102", "--hostname", "h.example");
    assert.equal(r.code, 31);
    assert.match(r.stderr, /container is not running/);
  } finally {
    cleanup(root);
  }
});

Deno.test("vzctl create: each compression, errors 44/91/82, dists warning, config content", async () => {
  const root = await mkRoot(
    "--template",
    "centos-6-x86_64.tar",
    "--template",
    "debian-8.0-x86_64.tar.gz",
    "--template",
    "ubuntu-16.04-x86_64.tar.bz2",
    "--template",
    "suse-42-x86_64.tar.xz",
    "--ve-layout",
    "simfs",
  );
  try {
    const names = ["centos-6-x86_64", "debian-8.0-x86_64", "ubuntu-16.04-x86_64", "suse-42-x86_64"];
    for (const [i, n] of names.entries()) {
      const id = String(201 + i);
      const r = await vzctl(root, "create", id, "--ostemplate", n, "--ipadd", `10.0.0.${i + 1}`);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(
        Deno.statSync(`${root}/vz/private/${id}/sbin/init`).isFile,
        `${n}: template extracted`,
      );
      const expect = [`Creating container private area (${n})`];
      if (n.startsWith("suse")) {
        expect.push(
          `Warning: configuration file for distribution ${n} not found, using defaults from /etc/vz/dists/default`,
        );
      }
      expect.push(
        "Performing postcreate actions",
        `CT configuration saved to /etc/vz/conf/${id}.conf`,
        "Container private area was created",
      );
      assert.equal(r.stdout, expect.join("\n") + "\n");
    }
    const conf = read(`${root}/etc/vz/conf/201.conf`);
    assert.ok(
      conf.endsWith(
        `IP_ADDRESS="10.0.0.1"\nVE_ROOT="${root}/vz/root/$VEID"\nVE_PRIVATE="${root}/vz/private/$VEID"\nVE_LAYOUT="simfs"\nOSTEMPLATE="centos-6-x86_64"\nORIGIN_SAMPLE="vswap-256m"\n`,
      ),
      conf,
    );
    // CONFIGFILE="vswap-256m" on a UBC node too, as a stock 4.11.1 install sets it
    assert.match(conf, /PHYSPAGES="0:256M"/);
    let r = await vzctl(root, "create", "201", "--ostemplate", names[0]);
    assert.equal(r.code, 44);
    assert.equal(
      r.stderr,
      `Private area already exists in ${root}/vz/private/201\nCreation of container private area failed\n`,
    );
    r = await vzctl(root, "create", "301", "--ostemplate", "nope-1-x86");
    assert.equal(r.code, 91);
    assert.match(r.stderr, /Cached OS template .*nope-1-x86\.tar\[\.gz\|\.bz2\|\.xz\] not found/);
    r = await vzctl(root, "create", "302", "--ostemplate", names[0], "--config", "missing");
    assert.equal(r.code, 82);
    r = await vzctl(root, "create", "201", "--ostemplate", names[0], "--config", "basic");
    assert.equal(r.code, 82);
    r = await vzctl(
      root,
      "create",
      "303",
      "--ostemplate",
      names[0],
      "--config",
      "vswap-256m",
      "--private",
      `${root}/alt/$VEID`,
      "--root",
      `${root}/altroot/$VEID`,
      "--hostname",
      "h303",
    );
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Deno.statSync(`${root}/alt/303/etc`).isDirectory);
    assert.match(
      read(`${root}/etc/vz/conf/303.conf`),
      /PHYSPAGES="0:256M"\n\n# Swap\nSWAPPAGES="0:512M"/,
    );
    assert.match(read(`${root}/etc/vz/conf/303.conf`), /VE_PRIVATE="[^"]*\/alt\/\$VEID"/);
    r = await vzctl(root, "start", "303");
    assert.equal(r.code, 0);
    assert.ok(Deno.statSync(`${root}/altroot/303`).isDirectory);
  } finally {
    cleanup(root);
  }
});

Deno.test("vzctl 3.0.x: only .tar/.tar.gz templates, no VE_LAYOUT", async () => {
  const root = await mkRoot(
    "--vzctl",
    "3.0.30.2",
    "--template",
    "centos-6-x86_64.tar.xz",
    "--template",
    "debian-8.0-x86_64.tar.gz",
  );
  try {
    let r = await vzctl(root, "create", "101", "--ostemplate", "centos-6-x86_64");
    assert.equal(r.code, 91);
    assert.match(r.stderr, /centos-6-x86_64\.tar\.gz not found/);
    r = await vzctl(
      root,
      "create",
      "102",
      "--ostemplate",
      "debian-8.0-x86_64",
      "--layout",
      "simfs",
    );
    assert.equal(r.code, 21, "3.0.x create has no --layout");
    r = await vzctl(root, "create", "102", "--ostemplate", "debian-8.0-x86_64");
    assert.equal(r.code, 0);
    assert.doesNotMatch(read(`${root}/etc/vz/conf/102.conf`), /VE_LAYOUT/);
    r = await vzctl(root, "--version");
    assert.equal(r.stdout, "vzctl version 3.0.30.2\n");
  } finally {
    cleanup(root);
  }
});

Deno.test("vzctl lifecycle: start/stop/status/mount/umount/destroy/exec exit codes", async () => {
  const root = await mkRoot();
  try {
    let r = await vzctl(root, "start", "101");
    assert.equal(r.code, 14);
    assert.equal(r.stderr, "Container config file does not exist\n");
    for (const a of ["stop", "destroy", "exec", "mount", "chkpnt", "restore"]) {
      assert.equal((await vzctl(root, a, "101")).code, 14, a);
    }
    r = await vzctl(root, "status", "999");
    assert.deepEqual([r.code, r.stdout], [0, "CTID 999 deleted unmounted down\n"]);
    await mkCt(root, 101, "--ipadd", "10.0.0.101", "--hostname", "ct101");
    r = await vzctl(root, "status", "101");
    assert.equal(r.stdout, "CTID 101 exist unmounted down\n");
    r = await vzctl(root, "exec", "101", "true");
    assert.equal(r.code, 8);
    r = await vzctl(root, "exec2", "101", "true");
    assert.equal(r.code, 31);
    r = await vzctl(root, "stop", "101");
    assert.deepEqual([r.code, r.stdout, r.stderr], [
      0,
      "",
      "Unable to stop: container is not running\n",
    ]);
    r = await vzctl(root, "start", "101");
    assert.equal(r.code, 0);
    assert.equal(
      r.stdout,
      "Starting container...\nContainer is mounted\nAdding IP address(es): 10.0.0.101\nSetting CPU units: 1000\nContainer start in progress...\n",
    );
    r = await vzctl(root, "start", "101");
    assert.deepEqual([r.code, r.stderr], [32, "Container is already running\n"]);
    r = await vzctl(root, "status", "101");
    assert.equal(r.stdout, "CTID 101 exist mounted running\n");
    r = await vzctl(root, "--quiet", "status", "101");
    assert.equal(r.stdout, "CTID 101 exist mounted running\n");
    r = await vzctl(root, "destroy", "101");
    assert.deepEqual([r.code, r.stderr], [32, "Container is currently running. Stop it first.\n"]);
    r = await vzctl(root, "umount", "101");
    assert.equal(r.code, 32);
    r = await vzctl(root, "exec", "101", "cat /proc/net/dev | grep -c venet0; exit 3");
    assert.deepEqual([r.code, r.stdout], [8, "1\n"]);
    r = await vzctl(root, "exec2", "101", "exit", "3");
    assert.equal(r.code, 3);
    r = await vzctl(root, "exec", "101", "test", "-f", "etc/redhat-release");
    assert.equal(r.code, 0);
    r = await run(root, "vzctl", ["exec", "101", "-"], { stdin: "echo hi\n" });
    assert.equal(r.stdout, "hi\n");
    r = await vzctl(root, "set", "101", "--cpulimit", "50");
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Setting CPU limit: 50\nWARNING: Settings were not saved/);
    r = await vzctl(root, "--quiet", "stop", "101");
    assert.deepEqual([r.code, r.stdout], [0, ""]);
    r = await vzctl(root, "mount", "101");
    assert.equal(r.stdout, "Container is mounted\n");
    r = await vzctl(root, "mount", "101");
    assert.deepEqual([r.code, r.stderr], [0, "Container is already mounted\n"]);
    r = await vzctl(root, "status", "101");
    assert.equal(r.stdout, "CTID 101 exist mounted down\n");
    r = await vzctl(root, "destroy", "101");
    assert.equal(r.code, 41);
    r = await vzctl(root, "umount", "101");
    assert.equal(r.code, 0);
    r = await vzctl(root, "umount", "101");
    assert.equal(r.code, 40);
    r = await vzctl(root, "restart", "101");
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Restarting container\nStarting container/);
    await vzctl(root, "stop", "101");
    Deno.renameSync(`${root}/vz/private/101`, `${root}/vz/private/101.x`);
    r = await vzctl(root, "start", "101");
    assert.deepEqual([r.code, r.stderr], [
      43,
      `Container private area ${root}/vz/private/101 does not exist\n`,
    ]);
    Deno.renameSync(`${root}/vz/private/101.x`, `${root}/vz/private/101`);
    r = await vzctl(root, "destroy", "101");
    assert.equal(r.code, 0);
    assert.equal(
      r.stdout,
      `Destroying container private area: ${root}/vz/private/101\nContainer private area was destroyed\n`,
    );
    assert.ok(Deno.statSync(`${root}/etc/vz/conf/101.conf.destroyed`).isFile);
    r = await vzctl(root, "status", "101");
    assert.equal(r.stdout, "CTID 101 deleted unmounted down\n");
  } finally {
    cleanup(root);
  }
});

Deno.test("vzctl lock: a live lock gives 9, --skiplock ignores it, stale locks are taken", async () => {
  const root = await mkRoot();
  try {
    await mkCt(root, 101);
    Deno.writeTextFileSync(`${root}/vz/lock/101.lck`, `${Deno.pid}\n`);
    let r = await vzctl(root, "start", "101");
    assert.deepEqual([r.code, r.stderr], [9, "Container already locked\n"]);
    r = await vzctl(root, "status", "101");
    assert.equal(r.code, 0);
    r = await vzctl(root, "--skiplock", "start", "101");
    assert.equal(r.code, 0);
    Deno.writeTextFileSync(`${root}/vz/lock/101.lck`, "999999999\n");
    r = await vzctl(root, "stop", "101");
    assert.equal(r.code, 0);
  } finally {
    cleanup(root);
  }
});

Deno.test("vzctl chkpnt/restore: 4.x deletes the dump, 3.0.x keeps it; start restores", async () => {
  for (const v of ["4.11.1", "3.0.30.2"]) {
    const root = await mkRoot("--vzctl", v);
    try {
      await mkCt(root, 101);
      let r = await vzctl(root, "chkpnt", "101");
      assert.equal(r.code, 31);
      await vzctl(root, "start", "101");
      const dump = `${root}/dump.101`;
      r = await vzctl(root, "chkpnt", "101", "--dumpfile", dump);
      assert.equal(r.code, 0);
      assert.equal(
        r.stdout,
        "Setting up checkpoint...\n\tsuspend...\n\tdump...\n\tkill...\nCheckpointing completed successfully\n",
      );
      assert.equal((await vzctl(root, "status", "101")).stdout, "CTID 101 exist unmounted down\n");
      r = await vzctl(root, "restore", "101", "--dumpfile", `${root}/nope`);
      assert.equal(r.code, 17);
      r = await vzctl(root, "restore", "101", "--dumpfile", dump);
      assert.equal(r.code, 0);
      assert.equal(
        r.stdout,
        "Restoring container ...\nContainer is mounted\n\tundump...\n\tresume...\nRestoring completed successfully\n",
      );
      let kept = true;
      try {
        Deno.statSync(dump);
      } catch {
        kept = false;
      }
      assert.equal(kept, v.startsWith("3"), `dump kept for ${v}`);
      r = await vzctl(root, "restore", "101", "--dumpfile", dump);
      assert.equal(r.code, 32);
      // default dump path: status suspended, start restores from it
      r = await vzctl(root, "chkpnt", "101");
      assert.equal(r.code, 0);
      r = await vzctl(root, "status", "101");
      assert.equal(r.stdout, "CTID 101 exist unmounted down suspended\n");
      r = await vzctl(root, "start", "101");
      assert.equal(r.code, 0);
      assert.match(
        r.stdout,
        /^Dump file .*Dump\.101 exists, trying to restore from it\nRestoring container/,
      );
      assert.equal((await vzctl(root, "status", "101")).stdout, "CTID 101 exist mounted running\n");
      Deno.chmodSync(`${root}/vz/dump`, 0o500);
      r = await vzctl(root, "chkpnt", "101");
      Deno.chmodSync(`${root}/vz/dump`, 0o755);
      if (Deno.uid() !== 0) assert.equal(r.code, 16);
    } finally {
      cleanup(root);
    }
  }
});

Deno.test("vzctl on a VSwap node accepts --ram/--swap without --force", async () => {
  const root = await mkRoot("--flavour", "vswap");
  try {
    await mkCt(root, 101);
    const r = await vzctl(root, "set", "101", "--ram", "1G", "--swap", "512M", "--save");
    assert.equal(r.code, 0, r.stderr);
    const t = read(`${root}/etc/vz/conf/101.conf`);
    assert.match(t, /PHYSPAGES="0:262144"/);
    assert.match(t, /ORIGIN_SAMPLE="vswap-256m"/);
    assert.ok(Deno.statSync(`${root}/proc/vz/vswap`).isFile);
  } finally {
    cleanup(root);
  }
});

Deno.test("vzctl set: remaining options, runscript, concurrent lock", async () => {
  const root = await mkRoot();
  try {
    await mkCt(root, 101);
    let r = await vzctl(
      root,
      "set",
      "101",
      "--searchdomain",
      "example.org",
      "--cpumask",
      "0-2,7",
      "--description",
      "web server",
      "--capability",
      "net_admin:on",
      "--features",
      "nfs:on",
      "--iptables",
      "ip_tables",
      "--iptables",
      "iptable_filter",
      "--quotatime",
      "600",
      "--setmode",
      "restart",
      "--netif_add",
      "eth1",
      "--netif_add",
      "eth2,,,,br1",
      "--netif_del",
      "eth1",
      "--root",
      "/vz/root/$VEID",
      "--save",
    );
    assert.equal(r.code, 0, r.stderr);
    const t = read(`${root}/etc/vz/conf/101.conf`);
    for (
      const l of [
        'SEARCHDOMAIN="example.org"',
        'CPUMASK="0-2,7"',
        'DESCRIPTION="web server"',
        'CAPABILITY="NET_ADMIN:on"',
        'FEATURES="nfs:on"',
        'IPTABLES="ip_tables iptable_filter "',
        'QUOTATIME="600"',
        'VE_ROOT="/vz/root/$VEID"',
      ]
    ) assert.ok(t.includes(`\n${l}\n`), l);
    assert.match(
      t,
      /\nNETIF="ifname=eth2,bridge=br1,mac=00:18:51:[0-9A-F:]{8},host_ifname=veth101\.2,host_mac=00:18:51:[0-9A-F:]{8}"\n/,
    );
    // vzctl's table order for appended keys: … CPULIMIT NETIF FEATURES (vzctl-observed.md)
    assert.ok(t.indexOf("\nNETIF=") < t.indexOf("\nFEATURES="));
    r = await vzctl(root, "set", "101", "--setmode", "later", "--save");
    assert.equal(r.code, 21);
    r = await vzctl(root, "set", "101", "--ostemplate", "x");
    assert.equal(r.code, 20);
    const script = `${root}/script.sh`;
    Deno.writeTextFileSync(script, "test -f etc/redhat-release && exit 4\n");
    r = await vzctl(root, "runscript", "101", script);
    assert.equal(r.code, 4);
    r = await vzctl(root, "runscript", "101", `${root}/none.sh`);
    assert.equal(r.code, 11);
    // concurrent calls: one of two simultaneous lockers may see exit 9, never anything else
    const results = await Promise.all(
      [1, 2, 3, 4].map(() => vzctl(root, "set", "101", "--cpuunits", "1500", "--save")),
    );
    for (const x of results) assert.ok(x.code === 0 || x.code === 9, String(x.code));
    assert.match(read(`${root}/etc/vz/conf/101.conf`), /CPUUNITS="1500"/);
  } finally {
    cleanup(root);
  }
});
