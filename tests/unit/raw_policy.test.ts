// RAW policy (issue 11 §1) and values real vzctl 4.11.1 refuses (issue 14 §5): the template
// boundary refuses them with the attribute, the rule and the fix in one line.
import assert from "node:assert/strict";
import { InvalidInputError } from "../../src/cli/errors.ts";
import { parseDriverConfig } from "../../src/one/config.ts";
import { parseTemplateText } from "../../src/one/defaults.ts";
import { toSpec } from "../../src/one/spec.ts";
import { planDeploy } from "../../src/ovz/plan.ts";

const BASE = 'VMID = 5\nDISK = [ SOURCE = "/srv/centos-6-x86_64.tar.gz" ]\n' +
  "CPU = 0.5\nVCPU = 2\nMEMORY = 512\n";

function spec(extra: string, conf: string | null = null) {
  return toSpec(parseTemplateText(BASE + extra), parseDriverConfig(conf));
}
const raw = (data: string) => `RAW = [ TYPE = ovz, DATA = "${data}" ]\n`;

function refused(fn: () => unknown, message: string | RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InvalidInputError, `expected InvalidInputError, got ${e}`);
    if (typeof message === "string") assert.equal(e.message, message);
    else assert.match(e.message, message);
    assert.ok(!e.message.includes("\n"));
    return true;
  });
}

function setArgv(s: ReturnType<typeof spec>, flavour: "ubc" | "vswap" = "ubc") {
  return planDeploy(s, {
    flavour,
    vmDir: "/var/lib/one",
    templateCacheDir: "/vz/template/cache",
    templateFileExt: ".tar.gz",
  }).commands[1].argv;
}

Deno.test("raw policy: options that reach the node are refused with the setting that allows them", () => {
  refused(
    () => spec(raw("--capability sys_admin:on")),
    'RAW 0/DATA: --capability sys_admin:on is refused: it gives the container kernel capabilities over the node; to allow it, add "capability=sys_admin:on" to ONEVZ/RAW_ALLOW in vmm_ssh_ovz.conf',
  );
  for (
    const [data, entry] of [
      ["--devices b:8:0:rw", "devices=b:8:0:rw"],
      ["--devnodes sda:rw", "devnodes=sda:rw"],
      ["--ipadd 10.0.0.7/24", "ipadd=10.0.0.7"],
      ["--ipdel all", "ipdel=all"],
      ["--netif_add eth1,,,,br7", "netif_add=br7"],
      ["--netif_add eth1", "netif_add=<bridge>"],
      ["--bridge br7", "bridge=br7"],
      ["--netfilter stateful", "netfilter=stateful"],
      ["--iptables ip_tables,ipt_REJECT", "iptables=ip_tables"],
      ["--features nfs:on,sysfs:on", "features=sysfs:on"],
      ["--mac_filter off", "mac_filter=off"],
      ["--name web", "name=web"],
      ["--userpasswd root:x", "userpasswd=root:x"],
      ["--netdev_add eth3", "netdev_add=eth3"],
      ["--quotatime 9999", "quotatime=9999"],
    ]
  ) {
    refused(
      () => spec(raw(data)),
      new RegExp(
        `^RAW 0/DATA: ${
          data.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
        } is refused: .*; to allow it, add "${
          entry.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
        }" to ONEVZ/RAW_ALLOW in vmm_ssh_ovz.conf$`,
      ),
    );
  }
  // narrowing values need no setting
  assert.deepEqual(
    spec(raw("--features nfs:on,bridge:off --netfilter disabled --mac_filter on")).raw,
    [
      "--features",
      "nfs:on,bridge:off",
      "--netfilter",
      "disabled",
      "--mac_filter",
      "on",
    ],
  );
});

Deno.test("raw policy: RAW_ALLOW values, networks and bridges; anything else still refused", () => {
  const conf = 'ONEVZ = [ RAW_ALLOW = "capability=NET_ADMIN:on ipadd=192.0.2.0/24|2001:db8::/32 ' +
    'netif_add=br1|br2 features=sysfs:on devnodes iptables=ip_tables|ipt_REJECT" ]';
  assert.deepEqual(
    spec(
      raw(
        "--capability net_admin:on --ipadd 192.0.2.9 --ipadd 2001:db8::9 --netif_add eth1,,,,br2 " +
          "--features sysfs:on,nfs:on --devnodes net/tun:rw --iptables ipt_REJECT",
      ),
      conf,
    ).raw.filter((a) => a.startsWith("--")),
    ["--capability", "--ipadd", "--ipadd", "--netif_add", "--features", "--devnodes", "--iptables"],
  );
  refused(
    () => spec(raw("--capability net_admin:on,sys_admin:on"), conf),
    /capability=sys_admin:on/,
  );
  refused(() => spec(raw("--ipadd 192.0.3.1"), conf), /add "ipadd=192\.0\.3\.1"/);
  refused(() => spec(raw("--ipadd 2001:db9::1"), conf), /add "ipadd=2001:db9::1"/);
  refused(() => spec(raw("--netif_add eth1,,,,br3"), conf), /add "netif_add=br3"/);
  refused(() => spec(raw("--iptables iptable_nat"), conf), /add "iptables=iptable_nat"/);
  // a device name that leaves /dev is refused by the value check itself, allowed or not
  refused(
    () => spec(raw("--devnodes ../dev/sda:rw"), conf),
    /^RAW 0\/DATA: --devnodes "\.\.\/dev\/sda:rw" is not device:perms with a name under \/dev/,
  );
});

Deno.test("raw policy: resources only tighten what CPU/VCPU/MEMORY/DISK gave, unless RAW_LOOSEN", () => {
  const tight = spec(
    'DISKSPACE = "10G:11G"\nCPUMASK = "0-3"\n' +
      raw(
        "--cpuunits 100 --cpulimit 20 --cpus 1 --cpumask 1,3 --diskspace 5G:6G " +
          "--privvmpages 1000:2000 --numproc 100 --ioprio 2 --iolimit 10M",
      ),
  );
  // Options the template already produced are replaced, not repeated (vzctl keeps the first).
  const argv = setArgv(tight);
  for (const o of ["--cpuunits", "--cpulimit", "--cpus", "--cpumask", "--diskspace"]) {
    assert.equal(argv.filter((a) => a === o).length, 1, o);
  }
  assert.deepEqual(
    ["--cpuunits", "--cpulimit", "--cpus", "--cpumask", "--diskspace"].map((o) =>
      argv[argv.indexOf(o) + 1]
    ),
    ["100", "20", "1", "1,3", "5G:6G"],
  );
  assert.ok(tight.notes.includes("RAW --cpuunits 100 replaces the template's --cpuunits 500"));
  // beancounters after the derived ones: vzctl takes the last
  assert.deepEqual(argv.slice(argv.indexOf("--privvmpages", argv.indexOf("--cpus"))).slice(0, 2), [
    "--privvmpages",
    "1000:2000",
  ]);

  const loose: [string, RegExp][] = [
    ["--cpuunits 600", /--cpuunits 600 loosens the template's CPUUNITS 500: /],
    ["--cpulimit 51", /--cpulimit 51 loosens the template's CPULIMIT 50/],
    ["--cpulimit 0", /--cpulimit 0 loosens/],
    ["--cpulimit 10%", /--cpulimit 10% loosens/],
    ["--cpus 3", /--cpus 3 loosens the template's CPUS 2/],
    ["--privvmpages unlimited", /loosens the template's PRIVVMPAGES 131072:144179: /],
    ["--physpages 0:1G", /loosens the template's PHYSPAGES 0:131072 on VSwap nodes/],
    ["--ram 1G", /--ram 1G loosens the template's PHYSPAGES 0:131072 on VSwap nodes/],
    ["--swap 1M", /--swap 1M loosens the template's SWAPPAGES 0:0 on VSwap nodes/],
    ["--kmemsize unlimited", /the template sets no KMEMSIZE; RAW may not make it unlimited/],
    ["--ioprio 7", /--ioprio 7 loosens vzctl's default IOPRIO 4/],
  ];
  for (const [data, message] of loose) {
    refused(() => spec(raw(data)), message);
    refused(
      () => spec(raw(data)),
      /RAW may only tighten resources; to allow it, add "[a-z]+" to ONEVZ\/RAW_LOOSEN in vmm_ssh_ovz\.conf$/,
    );
  }
  refused(
    () => spec('CPUMASK = "0-3"\n' + raw("--cpumask 2-5")),
    /loosens the template's CPUMASK 0-3/,
  );
  refused(
    () => spec('CPUMASK = "0-3"\n' + raw("--cpumask all")),
    /loosens the template's CPUMASK 0-3/,
  );
  refused(
    () => spec('DISKINODES = "1000:1100"\n' + raw("--diskinodes 1000:1200")),
    /loosens the template's DISKINODES 1000:1100/,
  );
  // without a template CPUUNITS, vzctl's default 1000 is the reference
  const noCpu = 'VMID = 5\nDISK = [ SOURCE = "/srv/centos-6-x86_64.tar.gz" ]\n';
  assert.throws(
    () => toSpec(parseTemplateText(noCpu + raw("--cpuunits 1001")), parseDriverConfig(null)),
    /loosens vzctl's default CPUUNITS 1000/,
  );
  const ok = spec(
    raw("--cpuunits 500000 --privvmpages unlimited"),
    'ONEVZ = [ RAW_LOOSEN = "cpuunits privvmpages" ]',
  );
  assert.equal(ok.cpu.cpuunits, 500000);
  assert.deepEqual(ok.raw, ["--privvmpages", "unlimited"]);
  refused(
    () => spec(raw("--numproc 10 --numproc 20")),
    "RAW 0/DATA: --numproc is given twice (vzctl keeps only one of them)",
  );
});

Deno.test("raw policy: RAW_ALLOW and RAW_LOOSEN syntax errors name the setting", () => {
  const bad: [string, RegExp][] = [
    ['RAW_ALLOW = "bogus"', /ONEVZ\/RAW_ALLOW: "bogus" is not a vzctl set option/],
    ['RAW_ALLOW = "cpuunits"', /ONEVZ\/RAW_ALLOW: cpuunits is a resource option: .* RAW_LOOSEN/],
    ['RAW_ALLOW = "features=bogus:on"', /ONEVZ\/RAW_ALLOW: features=bogus:on: /],
    ['RAW_ALLOW = "ipadd=10.0.0.0/33"', /ONEVZ\/RAW_ALLOW: "10\.0\.0\.0\/33" is not an IPv4/],
    ['RAW_ALLOW = "capability="', /ONEVZ\/RAW_ALLOW: "capability=": empty value/],
    ['RAW_ALLOW = "reset_ub=1"', /ONEVZ\/RAW_ALLOW: reset_ub takes no value/],
    ['RAW_LOOSEN = "capability"', /ONEVZ\/RAW_LOOSEN: capability is not a resource option/],
  ];
  for (const [setting, message] of bad) {
    assert.throws(() => parseDriverConfig(`ONEVZ = [ ${setting} ]`), (e: unknown) => {
      assert.ok(e instanceof InvalidInputError);
      assert.match(e.message, /^vmm_ssh_ovz\.conf: /);
      assert.match(e.message, message);
      return true;
    });
  }
  const c = parseDriverConfig(
    'ONEVZ = [ RAW_ALLOW = "--capability=net_admin:on capability=chown:off ipadd", RAW_LOOSEN = "cpus, numproc" ]',
  );
  assert.deepEqual(c.rawPolicy.allow.get("capability"), ["net_admin:on", "chown:off"]);
  assert.equal(c.rawPolicy.allow.get("ipadd"), null);
  assert.deepEqual([...c.rawPolicy.loosen], ["cpus", "numproc"]);
  // the shipped defaults file parses and allows nothing beyond the defaults
  const stock = parseDriverConfig(
    Deno.readTextFileSync(new URL("../../fixtures/templates/vmm_ssh_ovz.conf", import.meta.url)),
  );
  assert.equal(stock.rawPolicy.allow.size, 0);
  assert.equal(stock.rawPolicy.loosen.size, 0);
});

Deno.test("vzctl 4.11.1 values: unlimited disk quotas, CPUs >= 4096, leading zeros, unknown features", () => {
  refused(
    () => spec("DISKSPACE = unlimited\n"),
    'DISKSPACE: "unlimited": vzctl 4.x refuses "unlimited" for --diskspace (exit 21, Bad parameter); give a size in KB or with K/M/G/T, e.g. 100G:110G, or leave it out to keep the node\'s default quota',
  );
  refused(
    () => spec('DISKSPACE = "1G:unlimited"\n'),
    /^DISKSPACE: "1G:unlimited": vzctl 4\.x refuses/,
  );
  refused(
    () => spec("DISKINODES = unlimited\n"),
    /^DISKINODES: "unlimited": vzctl 4\.x refuses "unlimited" for --diskinodes .* give an inode count/,
  );
  refused(
    () =>
      toSpec(
        parseTemplateText(
          'VMID = 5\nDISK = [ SOURCE = "/a/centos-6.tar", DISKSPACE = "unlimited" ]\n',
        ),
      ),
    /^DISK 0\/DISKSPACE: "unlimited": vzctl 4\.x refuses/,
  );
  refused(
    () => spec(raw("--diskspace 1G:unlimited")),
    /^RAW 0\/DATA: --diskspace "1G:unlimited": vzctl 4\.x refuses/,
  );
  refused(
    () => spec('DISKSPACE = "9000000000000000000G"\n'),
    /^DISKSPACE: .* exceeds 9223372036854775807/,
  );
  for (const mask of ["4096", "5000", "0-4096", "3-1", "0,,1"]) {
    refused(() => spec(`CPUMASK = "${mask}"\n`), /^CPUMASK: /);
    refused(() => spec(raw(`--cpumask ${mask}`)), /^RAW 0\/DATA: --cpumask /);
  }
  refused(
    () => spec('CPUMASK = "4096"\n'),
    'CPUMASK: "4096" names CPU 4096: vzctl 4.x accepts CPUs 0..4095 (exit 21 above)',
  );
  assert.equal(spec('CPUMASK = "0-4095"\n').cpu.cpumask, "0-4095");
  const allowAll = 'ONEVZ = [ RAW_ALLOW = "ipadd ipdel" ]';
  for (
    const data of [
      "--ipadd 010.0.0.1",
      "--ipadd 10.0.0.01/24",
      "--ipdel 10.00.0.1",
      "--nameserver 010.0.0.1",
    ]
  ) {
    refused(() => spec(raw(data), allowAll), /^RAW 0\/DATA: --(ipadd|ipdel|nameserver) "/);
  }
  refused(
    () => spec('NIC = [ IP = "010.0.0.1" ]\n'),
    /^NIC 0\/IP: "010\.0\.0\.1" is not an IPv4 or IPv6 address/,
  );
  refused(
    () => spec(raw("--features bogus:on"), 'ONEVZ = [ RAW_ALLOW = "features" ]'),
    'RAW 0/DATA: --features "bogus:on" is not name:on|off with a feature vzctl knows (sysfs, nfs, sit, ipip, ppp, ipgre, bridge, nfsd)',
  );
  assert.deepEqual(spec(raw("--features nfsd:off")).raw, ["--features", "nfsd:off"]);
});
