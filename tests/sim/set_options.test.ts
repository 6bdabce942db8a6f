// The simulator's `vzctl set` takes every option real vzctl 4.x takes and stores it the way
// vzctl does (vzctl-observed.md; the vzctl source where the reference is silent), and refuses
// what 4.11.1 refuses (exit 21, nothing saved) — so a test can tell onevz's refusals from the
// simulator's.
import assert from "node:assert/strict";
import { VZCTL_SET_OPTIONS } from "../../src/ovz/options.ts";
import { cleanup, mkRoot, read, vzctl } from "./helpers.ts";

/** One `vzctl set 101 … --save` per case and the line it must leave in 101.conf. */
const STORED: { opt: string; args: string[]; line: string | null; before?: string[] }[] = [
  ...[
    "kmemsize",
    "lockedpages",
    "privvmpages",
    "shmpages",
    "numproc",
    "physpages",
    "vmguarpages",
    "oomguarpages",
    "numtcpsock",
    "numflock",
    "numpty",
    "numsiginfo",
    "tcpsndbuf",
    "tcprcvbuf",
    "othersockbuf",
    "dgramrcvbuf",
    "numothersock",
    "dcachesize",
    "numfile",
    "numiptent",
    "swappages",
  ].map((o) => ({
    opt: o,
    args: [`--${o}`, "100:200", ...(o === "physpages" ? ["--swappages", "0"] : [])],
    line: `${o.toUpperCase()}="100:200"`,
  })),
  { opt: "ram", args: ["--ram", "512M", "--swap", "0"], line: 'PHYSPAGES="0:131072"' },
  { opt: "swap", args: ["--swap", "1G"], line: 'SWAPPAGES="0:262144"' },
  { opt: "vm_overcommit", args: ["--vm_overcommit", "1.5"], line: 'VM_OVERCOMMIT="1.5"' },
  { opt: "cpuunits", args: ["--cpuunits", "2000"], line: 'CPUUNITS="2000"' },
  { opt: "cpuweight", args: ["--cpuweight", "10"], line: 'CPUUWEIGHT="10"' },
  { opt: "cpulimit", args: ["--cpulimit", "25"], line: 'CPULIMIT="25"' },
  { opt: "cpus", args: ["--cpus", "2"], line: 'CPUS="2"' },
  { opt: "cpumask", args: ["--cpumask", "0-2,7"], line: 'CPUMASK="0-2,7"' },
  { opt: "nodemask", args: ["--nodemask", "0"], line: 'NODEMASK="0"' },
  { opt: "diskspace", args: ["--diskspace", "2G:2.2G"], line: 'DISKSPACE="2097152:2306867"' },
  {
    opt: "diskinodes",
    args: ["--diskinodes", "200000:220000"],
    line: 'DISKINODES="200000:220000"',
  },
  { opt: "quotatime", args: ["--quotatime", "600"], line: 'QUOTATIME="600"' },
  { opt: "quotaugidlimit", args: ["--quotaugidlimit", "100"], line: 'QUOTAUGIDLIMIT="100"' },
  { opt: "ioprio", args: ["--ioprio", "3"], line: 'IOPRIO="3"' },
  { opt: "iolimit", args: ["--iolimit", "10M"], line: 'IOLIMIT="10485760"' },
  { opt: "iopslimit", args: ["--iopslimit", "100"], line: 'IOPSLIMIT="100"' },
  { opt: "ipadd", args: ["--ipadd", "10.0.0.2"], line: 'IP_ADDRESS="10.0.0.2"' },
  {
    opt: "ipdel",
    args: ["--ipdel", "all"],
    line: 'IP_ADDRESS=""',
    before: ["--ipadd", "10.0.0.2"],
  },
  { opt: "hostname", args: ["--hostname", "ct.example.org"], line: 'HOSTNAME="ct.example.org"' },
  { opt: "nameserver", args: ["--nameserver", "10.0.0.1"], line: 'NAMESERVER="10.0.0.1"' },
  {
    opt: "searchdomain",
    args: ["--searchdomain", "example.org"],
    line: 'SEARCHDOMAIN="example.org"',
  },
  {
    opt: "netif_add",
    args: ["--netif_add", "eth1,02:00:00:00:00:01,veth101.1,02:00:00:00:00:02,br1"],
    line:
      'NETIF="ifname=eth1,bridge=br1,mac=02:00:00:00:00:01,host_ifname=veth101.1,host_mac=02:00:00:00:00:02"',
  },
  {
    opt: "netif_del",
    args: ["--netif_del", "eth1"],
    line: 'NETIF=""',
    before: ["--netif_add", "eth1"],
  },
  ...["ifname", "mac", "host_ifname", "host_mac", "bridge", "mac_filter"].map((opt) => ({
    opt,
    args: [
      "--ifname",
      "eth1",
      "--mac",
      "02:00:00:00:00:0a",
      "--host_ifname",
      "vethx",
      "--host_mac",
      "02:00:00:00:00:0b",
      "--bridge",
      "br2",
      "--mac_filter",
      "on",
    ],
    line:
      'NETIF="ifname=eth1,bridge=br2,mac=02:00:00:00:00:0A,host_ifname=vethx,host_mac=02:00:00:00:00:0B,mac_filter=on"',
    before: ["--netif_add", "eth1"],
  })),
  { opt: "netdev_add", args: ["--netdev_add", "eth5"], line: 'NETDEV="eth5"' },
  {
    opt: "netdev_del",
    args: ["--netdev_del", "eth5"],
    line: 'NETDEV=""',
    before: ["--netdev_add", "eth5"],
  },
  { opt: "onboot", args: ["--onboot", "yes"], line: 'ONBOOT="yes"' },
  { opt: "bootorder", args: ["--bootorder", "5"], line: 'BOOTORDER="5"' },
  { opt: "disabled", args: ["--disabled", "no"], line: 'DISABLED="no"' },
  { opt: "noatime", args: ["--noatime", "yes"], line: null },
  { opt: "meminfo", args: ["--meminfo", "pages:1000"], line: 'MEMINFO="pages:1000"' },
  { opt: "iptables", args: ["--iptables", "ipt_REJECT"], line: 'IPTABLES="ip_tables ipt_REJECT "' },
  { opt: "netfilter", args: ["--netfilter", "stateful"], line: 'NETFILTER="stateful"' },
  { opt: "features", args: ["--features", "nfs:on"], line: 'FEATURES="nfs:on"' },
  { opt: "capability", args: ["--capability", "net_admin:on"], line: 'CAPABILITY="NET_ADMIN:on"' },
  { opt: "devnodes", args: ["--devnodes", "net/tun:rw"], line: 'DEVNODES="net/tun:rw "' },
  { opt: "devices", args: ["--devices", "c:10:200:rw"], line: 'DEVICES="c:10:200:rw "' },
  { opt: "pci_add", args: ["--pci_add", "01:00.0"], line: 'PCI="0000:01:00.0"' },
  {
    opt: "pci_del",
    args: ["--pci_del", "01:00.0"],
    line: 'PCI=""',
    before: ["--pci_add", "01:00.0"],
  },
  { opt: "description", args: ["--description", "web server"], line: 'DESCRIPTION="web server"' },
  { opt: "name", args: ["--name", "web1"], line: 'NAME="web1"' },
  { opt: "stop-timeout", args: ["--stop-timeout", "30"], line: 'STOP_TIMEOUT="30"' },
  { opt: "userpasswd", args: ["--userpasswd", "root:secret"], line: null },
  { opt: "reset_ub", args: ["--reset_ub"], line: null },
];

/** A node whose /dev holds a character device at net/tun, mem and a loop device at loop0. */
async function nodeWithDevices(...init: string[]): Promise<string> {
  const root = await mkRoot(...init);
  Deno.mkdirSync(`${root}/dev/net`, { recursive: true });
  Deno.symlinkSync("/dev/null", `${root}/dev/net/tun`);
  Deno.symlinkSync("/dev/null", `${root}/dev/mem`);
  Deno.symlinkSync("/dev/loop0", `${root}/dev/loop0`);
  Deno.writeTextFileSync(`${root}/etc/shadow`, "root:x:::\n");
  return root;
}

Deno.test("vzctl set: every option onevz can pass is taken and stored as vzctl 4.11.1 stores it", async () => {
  const covered = new Set(STORED.map((c) => c.opt));
  const missing = [...VZCTL_SET_OPTIONS.keys()].filter((o) => !covered.has(o));
  assert.deepEqual(missing, [], "every option of onevz's RAW table has a simulator case");
  const root = await nodeWithDevices("--flavour", "vswap");
  try {
    const conf = `${root}/etc/vz/conf/101.conf`;
    for (const c of STORED) {
      // A simfs container's config: a stock vz.conf says ploop, where --diskspace needs ploop.
      Deno.writeTextFileSync(conf, 'VE_LAYOUT="simfs"\n');
      if (c.before) {
        const b = await vzctl(root, "set", "101", ...c.before, "--save");
        assert.equal(b.code, 0, `${c.opt} setup: ${b.stderr}`);
      }
      const r = await vzctl(root, "set", "101", ...c.args, "--save");
      assert.equal(r.code, 0, `--${c.opt}: ${r.stderr}`);
      const lines = read(conf).split("\n");
      if (c.line !== null) assert.ok(lines.includes(c.line), `--${c.opt}: ${read(conf)}`);
    }
  } finally {
    cleanup(root);
  }
});

Deno.test("vzctl set: list options merge and store as vzctl does (capability, features, iptables, devices)", async () => {
  const root = await nodeWithDevices();
  try {
    const conf = `${root}/etc/vz/conf/101.conf`;
    Deno.writeTextFileSync(conf, "");
    const set = (...a: string[]) => vzctl(root, "set", "101", ...a, "--save");
    assert.equal((await set("--capability", "sys_admin:on,CHOWN:off")).code, 0);
    assert.equal((await set("--capability", "net_admin:on")).code, 0);
    assert.match(read(conf), /^CAPABILITY="CHOWN:off NET_ADMIN:on SYS_ADMIN:on"$/m);
    assert.equal((await set("--features", "nfsd:on", "--features", "sysfs:off nfs:on")).code, 0);
    assert.match(read(conf), /^FEATURES="sysfs:off nfs:on nfsd:on"$/m);
    // dependencies are added; a later --iptables replaces the list
    assert.equal((await set("--iptables", "ip_nat_ftp")).code, 0);
    assert.match(
      read(conf),
      /^IPTABLES="ip_tables ip_conntrack ip_conntrack_ftp iptable_nat ip_nat_ftp "$/m,
    );
    assert.equal((await set("--iptables", "ipt_state")).code, 0);
    assert.match(read(conf), /^IPTABLES="ip_tables ip_conntrack ipt_state "$/m);
    assert.equal((await set("--devices", "b:8:all:wr c:10:200:rw")).code, 0);
    assert.equal((await set("--devices", "c:10:200:none c:1:1:q")).code, 0);
    assert.match(read(conf), /^DEVICES="b:8:all:rw c:1:1:q "$/m);
    assert.equal((await set("--devnodes", "mem:r", "--devnodes", "net/tun:rw")).code, 0);
    assert.match(read(conf), /^DEVNODES="mem:r net\/tun:rw "$/m);
    // 3.0.30.2 writes the feature list with a trailing blank (vzctl-observed.md)
    const old = await mkRoot("--vzctl", "3.0.30.2");
    try {
      Deno.writeTextFileSync(`${old}/etc/vz/conf/101.conf`, "");
      const r = await vzctl(old, "set", "101", "--features", "nfs:on", "--save");
      assert.equal(r.code, 0, r.stderr);
      assert.match(read(`${old}/etc/vz/conf/101.conf`), /^FEATURES="nfs:on "$/m);
      const nf = await vzctl(old, "set", "101", "--netfilter", "full", "--save");
      assert.equal(nf.code, 21, "--netfilter is a 4.x option");
    } finally {
      cleanup(old);
    }
  } finally {
    cleanup(root);
  }
});

Deno.test("vzctl set: values 4.11.1 refuses give exit 21 and save nothing; 3.0.30.2 takes unlimited quotas", async () => {
  const root = await nodeWithDevices();
  try {
    const conf = `${root}/etc/vz/conf/101.conf`;
    Deno.writeTextFileSync(conf, 'CPUUNITS="1000"\n');
    const refused: [string[], RegExp][] = [
      [["--diskspace", "unlimited"], /^Bad parameter for --diskspace: unlimited$/m],
      [["--diskspace", "1G:unlimited"], /^Bad parameter for --diskspace: 1G:unlimited$/m],
      [["--diskinodes", "unlimited"], /^Bad parameter for --diskinodes: unlimited$/m],
      [["--cpumask", "4096"], /^Bad parameter for --cpumask: 4096$/m],
      [["--cpumask", "5000"], /Bad parameter for --cpumask/],
      [["--cpumask", "0-4096"], /Bad parameter for --cpumask/],
      [["--cpumask", "3-1"], /Bad parameter for --cpumask/],
      [["--ipadd", "010.0.0.1"], /^Bad parameter for --ipadd: 010.0.0.1$/m],
      [["--features", "bogus:on"], /^Bad parameter for --features: bogus:on$/m],
      [["--capability", "bogus:on"], /^Capability bogus is unknown$/m],
      [["--iptables", "ipt_bogus"], /Unknown iptable module: ipt_bogus/],
      [["--netfilter", "everything"], /^Incorrect netfilter value: everything$/m],
      [["--devices", "b:7:0:rw"], /Bad parameter for --devices/],
      [["--devnodes", "sda:rw"], /^Incorrect device name \/dev\/sda: No such file or directory$/m],
      [
        ["--devnodes", "../etc/shadow:r"],
        /^The \/dev\/..\/etc\/shadow is not block or character device$/m,
      ],
      [["--devnodes", "loop0:rw"], /^Device loop0 is not allowed to be assigned to a CT$/m],
      [["--netdev_add", "venet0"], /Bad parameter for --netdev_add/],
      [["--stop-timeout", "30"], /requires --save/],
    ];
    for (const [args, message] of refused) {
      const save = args[0] === "--stop-timeout" ? [] : ["--save"];
      const r = await vzctl(root, "set", "101", ...args, ...save);
      assert.equal(r.code, args[0] === "--stop-timeout" ? 20 : 21, `${args}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(" "));
      assert.equal(read(conf), 'CPUUNITS="1000"\n', `${args}: nothing saved`);
    }
    const f = await vzctl(root, "set", "101", "--features", "bogus:on", "--save");
    assert.equal(f.stdout, "Warning: Unknown feature: bogus:on\n");
    const ok = await vzctl(root, "set", "101", "--cpumask", "4095", "--save");
    assert.equal(ok.code, 0, ok.stderr);
    // a repeated scalar option: vzctl keeps the first; beancounters take the last
    const d = await vzctl(
      root,
      "set",
      "101",
      ...["--cpuunits", "500", "--cpuunits", "100", "--numproc", "10", "--numproc", "20"],
      "--save",
    );
    assert.equal(d.code, 0, d.stderr);
    assert.match(read(conf), /^CPUUNITS="500"$/m);
    assert.match(read(conf), /^NUMPROC="20"$/m);
    const old = await mkRoot("--vzctl", "3.0.30.2");
    try {
      Deno.writeTextFileSync(`${old}/etc/vz/conf/101.conf`, "");
      const r = await vzctl(
        old,
        "set",
        "101",
        ...["--diskspace", "1G:unlimited", "--diskinodes", "unlimited", "--save"],
      );
      assert.equal(r.code, 0, r.stderr);
      const t = read(`${old}/etc/vz/conf/101.conf`);
      assert.match(t, /^DISKSPACE="1048576:9223372036854775807"$/m);
      assert.match(t, /^DISKINODES="9223372036854775807:9223372036854775807"$/m);
    } finally {
      cleanup(old);
    }
  } finally {
    cleanup(root);
  }
});
