/**
 * The OpenVZ output parsers against the reference samples (copied verbatim from
 * /work/shared/reference/samples/openvz-outputs.txt and openvz-tools.md) and edge cases.
 */
import assert from "node:assert/strict";
import {
  cpuPercent,
  expandVeid,
  netifHostNames,
  parseBeancounters,
  parseNetDev,
  parseVeinfo,
  parseVenetstat,
  parseVestat,
  parseVzConf,
  parseVzctlStatus,
  parseVzlistRows,
  veidSection,
} from "../../src/ovz/parsers.ts";
import { describeContainer, vmidFromImagesDir } from "../../src/ovz/container.ts";
import { osDiskOf } from "../../src/actions/vmm/driver_files.ts";

const VZLIST_A = `      CTID      NPROC STATUS    IP_ADDR         HOSTNAME
       101         12 running   10.0.0.101      ct101.example.com
       102          - stopped   10.0.0.102      ct102.example.com
       103          - mounted   -               -
`;
const VZLIST_H = `       101 running
       102 stopped
`;
const USER_BEANCOUNTERS = `Version: 2.5
       uid  resource                     held              maxheld              barrier                limit              failcnt
      101:  kmemsize                  2781412              3559424  9223372036854775807  9223372036854775807                    0
            lockedpages                     0                    0                65536                65536                    0
            privvmpages                 18463                22066  9223372036854775807  9223372036854775807                    0
            shmpages                        1                    1  9223372036854775807  9223372036854775807                    0
            dummy                           0                    0                    0                    0                    0
            numproc                        12                   30  9223372036854775807  9223372036854775807                    0
            physpages                    9127                12305                    0                65536                    0
            vmguarpages                     0                    0               196608  9223372036854775807                    0
            oomguarpages                 9127                12305                65536  9223372036854775807                    0
            numtcpsock                      3                    5  9223372036854775807  9223372036854775807                    0
            numflock                        1                    4  9223372036854775807  9223372036854775807                    0
            numpty                          0                    1  9223372036854775807  9223372036854775807                    0
            numsiginfo                      0                    5  9223372036854775807  9223372036854775807                    0
            tcpsndbuf                   52160                86880  9223372036854775807  9223372036854775807                    0
            tcprcvbuf                   49152                81920  9223372036854775807  9223372036854775807                    0
            othersockbuf                 4624                11560  9223372036854775807  9223372036854775807                    0
            dgramrcvbuf                     0                 2312  9223372036854775807  9223372036854775807                    0
            numothersock                   16                   20  9223372036854775807  9223372036854775807                    0
            dcachesize                 600315               630784  9223372036854775807  9223372036854775807                    0
            numfile                       178                  258  9223372036854775807  9223372036854775807                    0
            dummy                           0                    0                    0                    0                    0
            dummy                           0                    0                    0                    0                    0
            dummy                           0                    0                    0                    0                    0
            numiptent                      10                   10  9223372036854775807  9223372036854775807                    0
`;
const VESTAT =
  `Version: 2.2                                                                                                                                                                                                                                               
                VEID                 user                 nice               system               uptime                 idle                 strv               uptime                 used               maxlat               totlat             numsched
                 101                 1520                    0                 3310              4233071        4201347019254                    0        4233071223516          47825412875                    0                    0                    0
`;
const DEPLOYMENT_0 =
  `<TEMPLATE><CONTEXT><FILES><![CDATA[/srv/cloud/one/ctx/init.sh]]></FILES><HOSTNAME><![CDATA[ovz-test]]></HOSTNAME><IP_PUBLIC><![CDATA[192.168.0.10]]></IP_PUBLIC><TARGET><![CDATA[hdb]]></TARGET></CONTEXT><CPU><![CDATA[0.5]]></CPU><DISK><CLONE><![CDATA[YES]]></CLONE><DISK_ID><![CDATA[0]]></DISK_ID><IMAGE><![CDATA[centos-5-x86-minimal]]></IMAGE><IMAGE_ID><![CDATA[3]]></IMAGE_ID><READONLY><![CDATA[NO]]></READONLY><SAVE><![CDATA[NO]]></SAVE><SOURCE><![CDATA[/srv/cloud/one/var//images/5d0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b]]></SOURCE><TARGET><![CDATA[hda]]></TARGET><TYPE><![CDATA[DISK]]></TYPE></DISK><DISK><DISK_ID><![CDATA[1]]></DISK_ID><SIZE><![CDATA[1024]]></SIZE><TARGET><![CDATA[hdd]]></TARGET><TYPE><![CDATA[swap]]></TYPE></DISK><MEMORY><![CDATA[512]]></MEMORY><NAME><![CDATA[ovz-test]]></NAME><NIC><BRIDGE><![CDATA[br0]]></BRIDGE><IP><![CDATA[192.168.0.10]]></IP><MAC><![CDATA[02:00:c0:a8:00:0a]]></MAC><NETWORK><![CDATA[Public]]></NETWORK><NETWORK_ID><![CDATA[0]]></NETWORK_ID></NIC><RAW><DATA><![CDATA[--diskspace 2G:2.2G]]></DATA><TYPE><![CDATA[ovz]]></TYPE></RAW><REQUIREMENTS><![CDATA[HYPERVISOR="ovz"]]></REQUIREMENTS><VMID><![CDATA[7]]></VMID></TEMPLATE>`;
const VEINFO = `       101     0    12      10.0.0.201      10.0.0.101
         0     0   143
`;

Deno.test("vzctl status: legacy and OpenVZ 7 lines", () => {
  assert.deepEqual(parseVzctlStatus("CTID 101 exist mounted running\n"), {
    ctid: "101",
    exists: true,
    mounted: true,
    running: true,
    suspended: false,
  });
  assert.deepEqual(parseVzctlStatus("CTID 999 deleted unmounted down"), {
    ctid: "999",
    exists: false,
    mounted: false,
    running: false,
    suspended: false,
  });
  const susp = parseVzctlStatus("CTID 101 exist unmounted down suspended");
  assert.equal(susp?.suspended, true);
  assert.equal(susp?.running, false);
  const v7 = parseVzctlStatus("VEID 101 exist mounted paused");
  assert.equal(v7?.running, false);
  assert.equal(v7?.suspended, true);
  // Noise before the status line (warnings on stdout) is skipped.
  assert.equal(parseVzctlStatus("Warning: something\nCTID 7 exist unmounted down")?.ctid, "7");
  assert.equal(parseVzctlStatus("Container config file does not exist"), undefined);
});

Deno.test("vzlist: -H rows, header and '-' placeholders, last field takes the rest", () => {
  assert.deepEqual(parseVzlistRows(VZLIST_H, ["ctid", "status"]), [
    { ctid: "101", status: "running" },
    { ctid: "102", status: "stopped" },
  ]);
  const rows = parseVzlistRows(VZLIST_A, ["ctid", "numproc", "status", "ip", "hostname"]);
  assert.equal(rows.length, 3);
  assert.deepEqual(rows[1], {
    ctid: "102",
    numproc: null,
    status: "stopped",
    ip: "10.0.0.102",
    hostname: "ct102.example.com",
  });
  assert.equal(rows[2].ip, null);
  assert.deepEqual(parseVzlistRows("  101 running 10.0.0.1 10.0.0.2\n", ["ctid", "status", "ip"]), [
    { ctid: "101", status: "running", ip: "10.0.0.1 10.0.0.2" },
  ]);
  assert.deepEqual(parseVzlistRows("", ["ctid"]), []);
});

Deno.test("user_beancounters: 24-row layout, dummies dropped, LONG_MAX → Infinity", () => {
  const t = parseBeancounters(USER_BEANCOUNTERS);
  assert.deepEqual([...t.keys()], [101]);
  const ct = t.get(101)!;
  assert.equal(Object.keys(ct).length, 20);
  assert.equal(ct.dummy, undefined);
  assert.deepEqual(ct.privvmpages, {
    held: 18463,
    maxheld: 22066,
    barrier: Infinity,
    limit: Infinity,
    failcnt: 0,
  });
  assert.equal(ct.physpages.held, 9127);
  assert.equal(ct.physpages.limit, 65536);
  assert.equal(ct.numiptent.held, 10);
});

Deno.test("/proc/bc/<id>/resources: rows without the id column belong to the owner", () => {
  const own = [
    "            kmemsize                  2781412              3559424  9223372036854775807  9223372036854775807                    0",
    "            physpages                    9127                12305                    0                65536                    0",
    "            swappages                      12                   14                    0               262144                    0",
  ].join("\n");
  const t = parseBeancounters(own, 101);
  assert.deepEqual([...t.keys()], [101]);
  assert.equal(t.get(101)!.physpages.held, 9127);
  assert.equal(t.get(101)!.kmemsize.limit, Infinity);
  // Without an owner such rows have nobody to belong to.
  assert.equal(parseBeancounters(own).size, 0);
});

Deno.test("/proc/bc/resources and OpenVZ 7 one-space layout, several CTs", () => {
  const text = [
    "       101: kmemsize     100 200 300 400 0",
    "            physpages    9127 12305 0 65536 0",
    "            swappages    12 14 0 262144 0",
    "         0: physpages    500 600 0 9223372036854775807 0",
    "      102:  privvmpages  7 8 9 10 1",
  ].join("\n");
  const t = parseBeancounters(text);
  assert.deepEqual([...t.keys()].sort(), [0, 101, 102]);
  assert.equal(t.get(101)!.swappages.held, 12);
  assert.equal(t.get(0)!.physpages.limit, Infinity);
  assert.equal(t.get(102)!.privvmpages.failcnt, 1);
});

Deno.test("vestat: columns by position, bigint counters, CPU percentage", () => {
  const t = parseVestat(VESTAT);
  assert.deepEqual([...t.keys()], [101]);
  const r = t.get(101)!;
  assert.equal(r.user, 1520n);
  assert.equal(r.system, 3310n);
  assert.equal(r.uptimeJiffies, 4233071n);
  assert.equal(r.idle, 4201347019254n);
  assert.equal(r.uptime, 4233071223516n);
  assert.equal(r.used, 47825412875n);
  // First poll: average since start = 100 × 47825412875 / 4233071223516 ≈ 1.13 %.
  assert.equal(cpuPercent(r), 1.12);
  // Second poll: 10 s later, 2.5 s of CPU used → 25 %.
  const later = { uptime: r.uptime + 10_000_000_000n, used: r.used + 2_500_000_000n };
  assert.equal(cpuPercent(later, r), 25);
  // Multi-core: more than one CPU busy → above 100.
  assert.equal(cpuPercent({ uptime: 20n, used: 30n }, { uptime: 10n, used: 10n }), 200);
  // CT restarted (uptime went back): the cumulative average is used.
  assert.equal(cpuPercent({ uptime: 100n, used: 50n }, { uptime: 1000n, used: 900n }), 50);
  assert.equal(cpuPercent({ uptime: 0n, used: 0n }), 0);
  // Values beyond 2^53 stay exact.
  const big = 2n ** 60n;
  assert.equal(
    cpuPercent({ uptime: big + 1000n, used: big + 100n }, { uptime: big, used: big }),
    10,
  );
});

Deno.test("veinfo: CT0 included, venet IPs back in configuration order", () => {
  const t = parseVeinfo(VEINFO);
  assert.deepEqual(t.get(101), {
    veid: 101,
    classId: 0,
    numProcs: 12,
    ips: ["10.0.0.101", "10.0.0.201"],
  });
  assert.deepEqual(t.get(0)?.ips, []);
  assert.equal(t.get(0)?.numProcs, 143);
});

Deno.test("/proc/net/dev and venetstat counters", () => {
  const dev = [
    "Inter-|   Receive                                                |  Transmit",
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets",
    "    lo:  1000 10 0 0 0 0 0 0  1000 10 0 0 0 0 0 0",
    "veth101.0: 5120 40 0 0 0 0 0 0 20480 80 0 0 0 0 0 0",
  ].join("\n");
  const d = parseNetDev(dev);
  assert.deepEqual(d.get("veth101.0"), { rxBytes: 5120n, txBytes: 20480n });
  assert.equal(d.get("lo")?.rxBytes, 1000n);
  // vznetstat's seq_show: "%u %s\n" with " %20Lu/%20Lu" per traffic class (16 classes).
  const pair = (a: number, b: number) => ` ${String(a).padStart(20)}/${String(b).padStart(20)}`;
  const line = (id: number, first: [number, number], second: [number, number]) =>
    `${id} ${pair(...first)}${pair(...second)}${pair(0, 0).repeat(14)}`;
  const vs = [line(101, [300, 400], [5, 6]), line(102, [0, 0], [0, 0])].join("\n") + "\n";
  assert.deepEqual(parseVenetstat(vs).get(101), { rxBytes: 305n, txBytes: 406n });
  assert.deepEqual(parseVenetstat(vs).get(102), { rxBytes: 0n, txBytes: 0n });
  assert.equal(parseVenetstat("garbage\n").size, 0);
});

Deno.test("CTID.conf / vz.conf: vzctl quoting rules, last key wins, $VEID", () => {
  const conf = parseVzConf([
    "# comment",
    "",
    'VE_ROOT="/vz/root/$VEID"',
    "VE_PRIVATE=/vz/private/$VEID",
    'HOSTNAME="a"',
    '  HOSTNAME="b"   ',
    'DESCRIPTION="say \\"hi\\" there"',
    'IP_ADDRESS="10.0.0.1 10.0.0.2"',
    'NETIF="ifname=eth0,bridge=br0,mac=00:18:51:A1:C6:35,host_ifname=veth101.0,host_mac=00"',
    "EMPTY=",
    'QUOTED_EMPTY=""',
    "not a key line",
    '#FIREWALL="',
  ].join("\n"));
  assert.equal(conf.HOSTNAME, "a"); // the first occurrence wins, as in vzctl
  assert.equal(conf.VE_ROOT, "/vz/root/$VEID");
  assert.equal(expandVeid(conf.VE_PRIVATE, 101), "/vz/private/101");
  assert.equal(expandVeid("/x/${VEID}/y", 7), "/x/7/y");
  assert.equal(conf.DESCRIPTION, 'say "hi" there');
  assert.equal(conf.IP_ADDRESS, "10.0.0.1 10.0.0.2");
  assert.equal(conf.EMPTY, "");
  assert.equal(conf.QUOTED_EMPTY, "");
  assert.equal(conf.FIREWALL, undefined);
  assert.deepEqual(netifHostNames(conf.NETIF), ["veth101.0"]);
  assert.deepEqual(
    netifHostNames("ifname=eth0,host_ifname=veth7.0;ifname=eth1,host_ifname=veth7.1"),
    ["veth7.0", "veth7.1"],
  );
  assert.deepEqual(netifHostNames(undefined), []);
});

Deno.test("container layout: R from VE_PRIVATE, vid from R", () => {
  const ct = describeContainer(
    1007,
    "/etc/vz/conf/1007.conf",
    'VE_PRIVATE="/var/lib/one//7/images/private"\nVE_ROOT="/var/lib/one//7/images/root"\n',
  );
  assert.equal(ct.imagesDir, "/var/lib/one//7/images");
  assert.equal(ct.vmid, 7);
  assert.equal(ct.rootDir, "/var/lib/one//7/images/root");
  assert.equal(vmidFromImagesDir("/srv/cloud/one/var/12/images/"), 12);
  assert.equal(vmidFromImagesDir("/vz/private"), undefined);
  const stock = describeContainer(101, "x", "VE_PRIVATE=/vz/private/$VEID\n");
  assert.equal(stock.privateDir, "/vz/private/101");
  assert.equal(stock.vmid, undefined);
  assert.throws(() => describeContainer(101, "x", "HOSTNAME=a\n"));
});

Deno.test("deployment file: OS disk and SAVE", () => {
  const sample = DEPLOYMENT_0;
  assert.deepEqual(osDiskOf(sample), { diskId: "0", save: false });
  const d = (disks: string) => `<TEMPLATE>${disks}<VMID><![CDATA[7]]></VMID></TEMPLATE>`;
  const disk = (kv: Record<string, string>) =>
    "<DISK>" + Object.entries(kv).map(([k, v]) => `<${k}><![CDATA[${v}]]></${k}>`).join("") +
    "</DISK>";
  assert.deepEqual(
    osDiskOf(d(disk({ DISK_ID: "0", TYPE: "swap" }) + disk({ DISK_ID: "1", SAVE: "Yes" }))),
    { diskId: "1", save: true },
  );
  assert.deepEqual(osDiskOf(d(disk({ DISK_ID: "2", SAVE: "NO", SAVE_AS: "14" }))), {
    diskId: "2",
    save: true,
  });
  assert.deepEqual(osDiskOf(d(disk({ DISK_ID: "3", SAVE: "no" }))), { diskId: "3", save: false });
  assert.equal(osDiskOf(d(disk({ DISK_ID: "0", TYPE: "swap" }))), undefined);
  assert.equal(osDiskOf(d("")), undefined);
  assert.deepEqual(osDiskOf(`<VM><ID>7</ID>${d(disk({ DISK_ID: "0", SAVE: "yes" }))}</VM>`), {
    diskId: "0",
    save: true,
  });
  assert.throws(() => osDiskOf("<VM_POOL/>"));
});

Deno.test("one container's section of a /proc table parses as in the whole table", () => {
  // Ids that are prefixes of one another (10, 101, 1010) and both beancounter layouts.
  const ids = [0, 10, 101, 1010, 2147483644];
  const block = (id: number, i: number) =>
    `${String(id).padStart(10)}:${i % 2 ? " " : "  "}kmemsize  ${id} 2 3 4 0\n` +
    `            privvmpages  ${id + 1} 5 6 7 0\n            dummy 0 0 0 0 0\n` +
    `            physpages  ${id + 2} 9 0 65536 ${i}\n`;
  const bc = "Version: 2.5\n       uid  resource  held maxheld barrier limit failcnt\n" +
    ids.map(block).join("");
  const vestatRow = (id: number) =>
    `${String(id).padStart(20)}${
      [1, 0, 3, 4, 5, 0, 7 + id, 8 + id, 0, 0, 0].map((n) => String(n).padStart(21)).join("")
    }\n`;
  const vestat = VESTAT.split("\n").slice(0, 2).join("\n") + "\n" +
    ids.filter((id) => id).map(vestatRow).join("");
  const venet = ids.filter((id) => id).map((id) => `${id}  ${id}/${id * 2}   1/2\n`).join("");
  const fullBc = parseBeancounters(bc);
  const fullVestat = parseVestat(vestat);
  const fullVenet = parseVenetstat(venet);
  for (const id of ids) {
    assert.deepEqual(
      parseBeancounters(veidSection(bc, id, { block: true })).get(id),
      fullBc.get(id),
    );
    assert.deepEqual(parseVestat(veidSection(vestat, id)).get(id), fullVestat.get(id));
    assert.deepEqual(parseVenetstat(veidSection(venet, id)).get(id), fullVenet.get(id));
  }
  assert.ok(fullBc.get(1010) && fullVestat.get(1010) && fullVenet.get(1010));
  // Absent containers (and ids that only occur as values or as a prefix) find nothing.
  for (const id of [1, 102, 5, 3]) {
    assert.equal(veidSection(bc, id, { block: true }), "");
    assert.equal(veidSection(venet, id), "");
  }
  assert.equal(veidSection(bc, -1, { block: true }), "");
  // The last block of a table runs to its end.
  assert.equal(
    parseBeancounters(veidSection(bc, 2147483644, { block: true })).get(2147483644)
      ?.physpages.failcnt,
    4,
  );
});
