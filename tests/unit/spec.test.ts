import assert from "node:assert/strict";
import { InvalidInputError } from "../../src/cli/errors.ts";
import { parseTemplateText } from "../../src/one/defaults.ts";
import { toSpec } from "../../src/one/spec.ts";
import { parseTemplateXml } from "../../src/one/template.ts";
import { UNLIMITED } from "../../src/ovz/units.ts";

const SAMPLES = new URL("../../fixtures/samples/opennebula-2.2.1", import.meta.url).pathname;
const ROOT = new URL("../../", import.meta.url).pathname;
const sample = (f: string) => parseTemplateXml(Deno.readTextFileSync(`${SAMPLES}/${f}`));

function rejects(fn: () => unknown, message: string | RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InvalidInputError, `expected InvalidInputError, got ${e}`);
    if (typeof message === "string") assert.equal(e.message, message);
    else assert.match(e.message, message);
    assert.ok(!e.message.includes("\n"));
    return true;
  });
}

/** A template in OpenNebula syntax, with a valid base (VMID, one OS disk) unless overridden. */
function tpl(
  extra: string,
  base = 'VMID = 5\nDISK = [ SOURCE = "/srv/centos-6-x86_64.tar.gz" ]\n',
) {
  return toSpec(parseTemplateText(base + extra));
}

Deno.test("spec: samples without a disk are refused (VirtualMachinePoolTest_00..02)", () => {
  for (
    const f of [
      "VirtualMachinePoolTest_00.xml",
      "VirtualMachinePoolTest_01.xml",
      "VirtualMachinePoolTest_02.xml",
    ]
  ) {
    rejects(
      () => toSpec(sample(f)),
      "DISK: OpenVZ containers need one OS disk (DISK = [ IMAGE = … ] or [ SOURCE = … ]): none found",
    );
  }
});

Deno.test("spec: Xen samples with two disks are refused (VirtualMachineXMLTest_00..02)", () => {
  for (
    const f of [
      "VirtualMachineXMLTest_00.xml",
      "VirtualMachineXMLTest_01.xml",
      "VirtualMachineXMLTest_02.xml",
    ]
  ) {
    rejects(
      () => toSpec(sample(f)),
      "DISK: OpenVZ containers take one OS disk: DISK 0 and DISK 1 are both OS disks",
    );
  }
});

Deno.test("spec: oca fixture: a venet NIC without IP is refused, as veth it is valid", () => {
  rejects(
    () => toSpec(sample("oca_ruby_fixture_vm.xml")),
    "NIC 0: a venet NIC needs IP (use MODEL = veth for a bridged device without one)",
  );
  const s = toSpec(sample("oca_ruby_fixture_vm.xml"), { nicModel: "veth" });
  assert.equal(s.vmid, 6);
  assert.equal(s.ctid, 1006);
  assert.equal(s.osDisk.templateName, "ttylinux.img");
  assert.deepEqual(s.swap, { diskId: 1, sizeMb: 1024 });
  assert.deepEqual(s.nics, [{ index: 0, model: "veth", ifname: "eth0", mac: "50:20:20:20:20:20" }]);
  assert.deepEqual(s.memory, { kind: "mb", mb: 512 });
  assert.deepEqual(s.context?.vars, { DNS: "192.169.1.4", TYPE: "" });
});

Deno.test("spec: the constructed deployment file and onevm show -x give the same spec", () => {
  const a = toSpec(sample("constructed_2.2.1_xml_deployment.0"));
  const b = toSpec(sample("constructed_2.2.1_onevm_show_x.xml"));
  assert.deepEqual(a, b);
  assert.equal(a.vmid, 7);
  assert.equal(a.ctid, 1007);
  assert.equal(a.name, "ovz-test");
  assert.deepEqual(a.osDisk, {
    diskId: 0,
    templateName: "centos-5-x86-minimal",
    imageId: 3,
    source: "/srv/cloud/one/var//images/5d0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b",
    save: false,
  });
  assert.deepEqual(a.swap, { diskId: 1, sizeMb: 1024 });
  assert.equal(a.diskCount, 2);
  assert.deepEqual(a.memory, { kind: "mb", mb: 512 });
  assert.deepEqual(a.cpu, { cpuunits: 500, cpulimit: "50" });
  assert.deepEqual(a.nics, [{
    index: 0,
    model: "venet",
    ip: "192.168.0.10",
    mac: "02:00:c0:a8:00:0a",
    bridge: "br0",
    network: "Public",
  }]);
  assert.equal(a.context?.hostname, "ovz-test");
  assert.deepEqual(a.context?.files, ["/srv/cloud/one/ctx/init.sh"]);
  assert.deepEqual(a.raw, ["--diskspace", "2G:2.2G"]);
  assert.equal(a.contextDir, "/mnt");
});

Deno.test("spec: vps145 fixture (the seed's example as oned writes it)", () => {
  const s = toSpec(parseTemplateXml(Deno.readTextFileSync(`${ROOT}fixtures/templates/vps145.xml`)));
  assert.equal(s.vmid, 45);
  assert.equal(s.ctid, 1045);
  assert.deepEqual(s.osDisk, {
    diskId: 0,
    templateName: "centos-5-x86",
    source: "/srv/cloud/one/centos-5-x86.tar.bz2",
    save: true,
  });
  assert.equal(s.memory.kind, "ubc");
  if (s.memory.kind === "ubc") {
    assert.deepEqual(s.memory.beancounters.PHYSPAGES, { barrier: 0n, limit: UNLIMITED });
    assert.deepEqual(s.memory.beancounters.KMEMSIZE, { barrier: 14372700n, limit: 14790164n });
  }
  assert.deepEqual(s.cpu, { cpuunits: 2000, cpulimit: "25", cpus: 2 });
  assert.equal(s.diskspace, "10485760:11530240");
  assert.equal(s.diskinodes, "200000:220000");
  assert.equal(s.onboot, true);
  assert.deepEqual(s.context?.nameservers, ["111.111.111.2"]);
  assert.deepEqual(s.context?.files, [
    "/srv/cloud/one/vps145/init.sh",
    "/srv/cloud/one/vps145/id_rsa.pub",
  ]);
  // normalized as vzfirewall reads it: trimmed, blank lines and comments dropped
  assert.equal(s.context?.firewall, "[*]\n111.111.111.0/24\n[22]\n222.222.222.0/16");
});

Deno.test("spec: disk rules", () => {
  rejects(
    () =>
      tpl(
        'DISK = [ SOURCE = "/a/b.tar.gz", DISK_ID = 2 ]',
        'VMID = 5\nDISK = [ SOURCE = "/srv/c.tar.gz", DISK_ID = 0 ]\n',
      ),
    "DISK: OpenVZ containers take one OS disk: DISK 0 and DISK 2 are both OS disks",
  );
  rejects(
    () => tpl("DISK = [ TYPE = swap, SIZE = 1 ]\nDISK = [ TYPE = swap, SIZE = 2 ]"),
    "DISK: OpenVZ containers take at most one swap disk: DISK 1 and DISK 2 are both swap disks",
  );
  rejects(
    () => tpl('DISK = [ TYPE = CDROM, IMAGE = "x" ]'),
    /^DISK 1: is a CDROM disk: OpenVZ containers take one OS disk/,
  );
  rejects(
    () => tpl("DISK = [ TYPE = fs, SIZE = 10 ]"),
    /^DISK 1: is a new file-system \(TYPE=fs\) disk/,
  );
  rejects(() => tpl("DISK = [ TYPE = DATABLOCK ]"), /^DISK 1: is a DATABLOCK disk/);
  rejects(() => tpl("DISK = [ TYPE = swap ]"), "DISK 1/SIZE: a swap disk needs SIZE in MB");
  rejects(
    () => tpl("DISK = [ TYPE = swap, SIZE = -1 ]"),
    /^DISK 1\/SIZE: "-1" is not a size in MB/,
  );
  rejects(
    () => tpl("", "VMID = 1\nDISK = [ TARGET = hda ]"),
    "DISK 0: an OS disk needs IMAGE or SOURCE naming the OpenVZ OS template",
  );
  const s = tpl(
    "",
    'VMID = 1\nDISK = [ SOURCE = "/x/debian-6.0-x86.tgz", BUS = ide, TARGET = sda, DRIVER = raw, FORMAT = ext3, READONLY = yes, SAVE_AS = 12, TYPE = DISK ]',
  );
  assert.deepEqual(s.osDisk, {
    diskId: 0,
    templateName: "debian-6.0-x86",
    source: "/x/debian-6.0-x86.tgz",
    save: true,
    saveAs: "12",
  });
  assert.equal(
    tpl("", 'VMID = 1\nDISK = [ IMAGE = "centos-5-x86", SOURCE = "/var/images/abc" ]').osDisk
      .templateName,
    "centos-5-x86",
  );
  rejects(
    () => tpl("", 'VMID = 1\nDISK = [ IMAGE = "Ubuntu Server" ]'),
    /^DISK 0\/IMAGE: "Ubuntu Server" is not an OS template name/,
  );
  rejects(
    () => tpl("", 'VMID = 1\nDISK = [ IMAGE = "-rf" ]'),
    /^DISK 0\/IMAGE: "-rf" is not an OS template name/,
  );
  rejects(
    () => tpl("", 'VMID = 1\nDISK = [ SOURCE = "/x/.hidden.tar" ]'),
    /^DISK 0\/SOURCE: ".hidden" is not an OS template name/,
  );
  rejects(() => tpl("", 'VMID = 1\nDISK = [ IMAGE = "../../etc/passwd" ]'), /^DISK 0\/IMAGE/);
});

Deno.test("spec: VMID and CTID", () => {
  rejects(
    () => tpl("", 'DISK = [ SOURCE = "/a/b.tar" ]'),
    "VMID: missing (oned adds it to every deployment file)",
  );
  rejects(() => tpl("", 'VMID = -3\nDISK = [ SOURCE = "/a/b.tar" ]'), /^VMID: "-3" is not a VM id/);
  rejects(
    () => tpl("", 'VMID = 2147483000\nDISK = [ SOURCE = "/a/b.tar" ]'),
    /^VMID: CTID .* exceeds/,
  );
  assert.equal(
    toSpec(parseTemplateText('VMID = 5\nDISK = [ SOURCE = "/a/b.tar" ]'), { ctidOffset: 5000 })
      .ctid,
    5005,
  );
  assert.equal(tpl("").name, "one-5");
});

Deno.test("spec: memory as beancounters or MB", () => {
  const s = tpl('MEMORY = [ privvmpages = "256M:unlimited", numproc = "240", kmemsize = "14M" ]');
  assert.equal(s.memory.kind, "ubc");
  if (s.memory.kind === "ubc") {
    assert.deepEqual(s.memory.beancounters.PRIVVMPAGES, { barrier: 65536n, limit: UNLIMITED });
    assert.deepEqual(s.memory.beancounters.NUMPROC, { barrier: 240n, limit: 240n });
    assert.deepEqual(s.memory.beancounters.KMEMSIZE, { barrier: 14680064n, limit: 14680064n });
  }
  rejects(
    () => tpl('MEMORY = [ RAM = "1G" ]'),
    /^MEMORY\/RAM: not a beancounter \(one of KMEMSIZE, /,
  );
  rejects(
    () => tpl('MEMORY = [ NUMPROC = "1K" ]'),
    'MEMORY/NUMPROC: "1K": item counts take no suffix',
  );
  rejects(
    () => tpl('MEMORY = [ PRIVVMPAGES = "9223372036854775808" ]'),
    /^MEMORY\/PRIVVMPAGES: .* exceeds 9223372036854775807/,
  );
  rejects(
    () => tpl('MEMORY = [ SHMPAGES = "1:2:3" ]'),
    /^MEMORY\/SHMPAGES: "1:2:3" is not barrier\[:limit\]/,
  );
  rejects(() => tpl("MEMORY = 0"), /^MEMORY: 0 is out of range 1\.\.16777216/);
  rejects(() => tpl("MEMORY = 1.5"), /^MEMORY: "1.5" is not a size in MB/);
  assert.deepEqual(tpl("").memory, { kind: "none" });
});

Deno.test("spec: CPU raw values win, CPU/VCPU derive the rest", () => {
  assert.deepEqual(tpl("CPU = 0.5\nVCPU = 2").cpu, { cpuunits: 500, cpulimit: "50", cpus: 2 });
  assert.deepEqual(tpl('CPU = 2\nVCPU = 4\nCPUUNITS = 3000\nCPUMASK = "0-2,7"').cpu, {
    cpuunits: 3000,
    cpulimit: "200",
    cpus: 4,
    cpumask: "0-2,7",
  });
  assert.equal(tpl("CPU = 0.001").cpu.cpuunits, 8, "clamped to vzctl's minimum");
  assert.equal(tpl('CPULIMIT = "50%"').cpu.cpulimit, "50%");
  rejects(() => tpl("CPUUNITS = 999999999"), "CPUUNITS: 999999999 is out of range 8..500000");
  rejects(() => tpl("CPUUNITS = 7"), "CPUUNITS: 7 is out of range 8..500000");
  rejects(() => tpl('CPULIMIT = "150%"'), /^CPULIMIT: "150%" is not a percentage/);
  rejects(() => tpl("CPU = -1"), /^CPU: "-1" is not a positive number/);
  rejects(() => tpl("CPU = 0"), /^CPU: 0 is out of range/);
  rejects(() => tpl("VCPU = 0"), /^VCPU: 0 is out of range 1\.\.4096/);
  rejects(() => tpl('CPUMASK = "0-2;reboot"'), /^CPUMASK: .* is not a CPU mask/);
  rejects(() => tpl("CPUS = [ A = 1 ]"), "CPUS: expected a value, found a vector [ … ]");
});

Deno.test("spec: disk quota from the OS DISK first, then top level; ONBOOT", () => {
  const s = tpl(
    "DISKSPACE = 1G\nDISKINODES = 100",
    'VMID = 1\nDISK = [ SOURCE = "/a/b.tar", DISKSPACE = "2G:2.2G" ]\n',
  );
  assert.equal(s.diskspace, "2G:2.2G");
  assert.equal(s.diskinodes, "100");
  rejects(
    () => tpl("", 'VMID = 1\nDISK = [ SOURCE = "/a/b.tar", DISKINODES = "1;2" ]\n'),
    /^DISK 0\/DISKINODES: "1;2" is not soft\[:hard\]/,
  );
  rejects(() => tpl('DISKSPACE = "$(reboot)"'), /^DISKSPACE: /);
  for (
    const [v, b] of [["yes", true], ["TRUE", true], ["1", true], ["no", false], ["false", false], [
      "0",
      false,
    ]] as const
  ) {
    assert.equal(tpl(`ONBOOT = "${v}"`).onboot, b);
  }
  rejects(() => tpl("ONBOOT = maybe"), 'ONBOOT: "maybe" is not yes or no');
});

Deno.test("spec: NICs", () => {
  const s = tpl(
    'NIC = [ IP = "10.0.0.5" ]\nNIC = [ MODEL = veth, MAC = "02:00:0a:00:00:06", BRIDGE = br1 ]\nNIC = [ IP = "fe80::1", MODEL = venet ]\nNIC = [ MODEL = veth ]',
  );
  assert.deepEqual(s.nics, [
    { index: 0, model: "venet", ip: "10.0.0.5" },
    { index: 1, model: "veth", ifname: "eth0", mac: "02:00:0a:00:00:06", bridge: "br1" },
    { index: 2, model: "venet", ip: "fe80::1" },
    { index: 3, model: "veth", ifname: "eth1" },
  ]);
  rejects(
    () => tpl('NIC = [ IP = "300.1.1.1" ]'),
    'NIC 0/IP: "300.1.1.1" is not an IPv4 or IPv6 address',
  );
  rejects(() => tpl('NIC = [ IP = "1.2.3.4 --ipdel all" ]'), /^NIC 0\/IP: /);
  rejects(
    () => tpl('NIC = [ IP = "1.2.3.4", MAC = "zz:00:00:00:00:00" ]'),
    /^NIC 0\/MAC: "zz:00:00:00:00:00" is not a MAC address/,
  );
  rejects(
    () => tpl('NIC = [ IP = "1.2.3.4", BRIDGE = "br0;reboot" ]'),
    /^NIC 0\/BRIDGE: "br0;reboot" is not a bridge name/,
  );
  rejects(
    () => tpl('NIC = [ IP = "1.2.3.4", BRIDGE = "averyveryverylongbridge" ]'),
    /^NIC 0\/BRIDGE: /,
  );
  rejects(() => tpl('NIC = [ MAC = "02:00:00:00:00:01" ]'), /^NIC 0: a venet NIC needs IP/);
});

Deno.test("spec: context values", () => {
  const s = tpl(
    'CONTEXT = [ HOSTNAME = "a-1.example.org", NAMESERVER = "8.8.8.8, 8.8.4.4 2001:4860:4860::8888", FILES = "/a/init.sh  /b/c", CUSTOM_VAR = "x$y" ]',
  );
  assert.equal(s.context?.hostname, "a-1.example.org");
  assert.deepEqual(s.context?.nameservers, ["8.8.8.8", "8.8.4.4", "2001:4860:4860::8888"]);
  assert.deepEqual(s.context?.files, ["/a/init.sh", "/b/c"]);
  assert.equal(s.context?.vars.CUSTOM_VAR, "x$y");
  rejects(
    () => tpl('CONTEXT = [ HOSTNAME = "bad_host" ]'),
    /^CONTEXT\/HOSTNAME: "bad_host" is not a hostname \(RFC 1123/,
  );
  rejects(() => tpl('CONTEXT = [ HOSTNAME = "-a.org" ]'), /^CONTEXT\/HOSTNAME: /);
  rejects(() => tpl('CONTEXT = [ HOSTNAME = "$NAME.example.org" ]'), /^CONTEXT\/HOSTNAME: /);
  rejects(() => tpl(`CONTEXT = [ HOSTNAME = "${"a".repeat(64)}.org" ]`), /^CONTEXT\/HOSTNAME: /);
  rejects(
    () => tpl('CONTEXT = [ HOSTNAME = "a\nb" ]'),
    /^CONTEXT\/HOSTNAME: "a\\nb" is not a hostname/,
  );
  rejects(
    () => tpl('CONTEXT = [ NAMESERVER = "8.8.8.8;rm" ]'),
    /^CONTEXT\/NAMESERVER: "8.8.8.8;rm" is not an IPv4 or IPv6 address/,
  );
  rejects(
    () => tpl('CONTEXT = [ FILES = "relative/x" ]'),
    'CONTEXT/FILES: "relative/x" is not an absolute path',
  );
  rejects(
    () => tpl('CONTEXT = [ FILES = "/srv/../etc/shadow" ]'),
    `CONTEXT/FILES: "/srv/../etc/shadow" has a '..' segment`,
  );
  rejects(
    () => tpl('CONTEXT = [ FIREWALL = "[22]\n1.2.3.4\\"\nIP_ADDRESS=\\"6.6.6.6" ]'),
    /^CONTEXT\/FIREWALL: must not contain '"'/,
  );
  rejects(
    () => tpl('CONTEXT = [ FIREWALL = "a\u0001" ]'),
    "CONTEXT/FIREWALL: contains a control character",
  );
  assert.equal(
    tpl('CONTEXT = [ FIREWALL = "[22]\n\t10.0.0.0/8" ]').context?.firewall,
    "[22]\n10.0.0.0/8",
  );
  rejects(
    () =>
      toSpec(
        parseTemplateXml(
          "<TEMPLATE><VMID>1</VMID><DISK><SOURCE>/a/b.tar</SOURCE></DISK><CONTEXT><X-Y>1</X-Y></CONTEXT></TEMPLATE>",
        ),
      ),
    "CONTEXT/X-Y: variable names are letters, digits and '_'",
  );
  rejects(() => tpl("CONTEXT = x"), "CONTEXT: expected a vector CONTEXT = [ … ]");
  rejects(() => tpl('NAME = "a\nb"'), /^NAME: "a\\nb" contains a control character/);
  rejects(() => tpl('CONTEXT = [ GATEWAY = "gw" ]'), /^CONTEXT\/GATEWAY: /);
});

Deno.test("spec: RAW TYPE=ovz is tokenised and checked, other types ignored", () => {
  assert.deepEqual(
    tpl(
      `RAW = [ TYPE = "OVZ", DATA = "--numproc 400:400 --features='nfs:on' --description \\"my ct\\" --reset_ub" ]\nRAW = [ TYPE = kvm, DATA = "<x/>" ]`,
    ).raw,
    ["--numproc", "400:400", "--features", "nfs:on", "--description", "my ct", "--reset_ub"],
  );
  rejects(
    () => tpl('RAW = [ TYPE = ovz, DATA = "--private /etc" ]'),
    "RAW 0/DATA: --private is not a vzctl set option onevz accepts",
  );
  rejects(
    () => tpl('RAW = [ TYPE = ovz, DATA = "--bogus 1" ]'),
    "RAW 0/DATA: --bogus is not a vzctl set option onevz accepts",
  );
  rejects(() => tpl('RAW = [ TYPE = ovz, DATA = "--cpus" ]'), "RAW 0/DATA: --cpus needs a value");
  rejects(
    () => tpl('RAW = [ TYPE = ovz, DATA = "--reset_ub=1" ]'),
    "RAW 0/DATA: --reset_ub takes no value",
  );
  rejects(
    () => tpl('RAW = [ TYPE = ovz, DATA = "150" ]'),
    'RAW 0/DATA: "150" is not a --option (values follow their option)',
  );
  rejects(
    () => tpl('RAW = [ TYPE = ovz, DATA = "--cpuunits 999999999" ]'),
    /^RAW 0\/DATA: --cpuunits "999999999" is not an integer in 8\.\.500000/,
  );
  rejects(
    () => tpl('RAW = [ TYPE = ovz, DATA = "--kmemsize abc" ]'),
    /^RAW 0\/DATA: --kmemsize "abc" is not a number/,
  );
  rejects(
    () => tpl(`RAW = [ TYPE = ovz, DATA = "--hostname 'a" ]`),
    "RAW 0/DATA: has an unterminated ' quote",
  );
  rejects(
    () => tpl(`RAW = [ TYPE = ovz, DATA = "--description 'a\nb'" ]`),
    "RAW 0/DATA: --description: value contains NUL or newline",
  );
  rejects(
    () => tpl('RAW = [ TYPE = ovz, DATA = "--onboot maybe" ]'),
    /^RAW 0\/DATA: --onboot "maybe" is not one of yes\|no/,
  );
  rejects(() => tpl('RAW = [ TYPE = ovz, DATA = "--save" ]'), /--save is not a vzctl set option/);
});

Deno.test("spec: a barrier above its limit is refused with the pair it meant", () => {
  rejects(
    () => tpl('MEMORY = [ PRIVVMPAGES = "69632:65536" ]'),
    'MEMORY/PRIVVMPAGES: "69632:65536" has its barrier above its limit: vzctl\'s validator ' +
      'refuses it ("barrier should be <= limit") and the kernel would enforce the limit alone; ' +
      'did you mean "65536:69632"?',
  );
  rejects(
    () => tpl('MEMORY = [ KMEMSIZE = "5:3" ]'),
    /^MEMORY\/KMEMSIZE: .* did you mean "3:5"\?$/,
  );
  // equal, below, unlimited limits and a lone barrier are fine
  const ok = tpl(
    'MEMORY = [ LOCKEDPAGES = "2048:2048", PHYSPAGES = "0:unlimited", NUMPROC = 240 ]',
  );
  assert.equal(ok.memory.kind, "ubc");
  rejects(
    () => tpl('MEMORY = [ KMEMSIZ = "1:2" ]'),
    "MEMORY/KMEMSIZ: not a beancounter: did you mean KMEMSIZE?",
  );
});

Deno.test("spec: CPULIMIT above 100 × CPUS is warned (it can never apply)", () => {
  assert.deepEqual(tpl('CPULIMIT = "300"\nCPUS = 2').warnings, [
    "CPULIMIT 300 is above 100 × CPUS (2) = 200: the container runs on at most 2 CPU(s), so " +
    "the limit never applies; set CPULIMIT ≤ 200, or raise CPUS (vzctl passes it on unchecked)",
  ]);
  assert.match(
    tpl("CPU = 4\nVCPU = 1").warnings[0],
    /^CPULIMIT 400 \(= CPU × 100\) is above 100 × CPUS \(1\)/,
  );
  assert.deepEqual(tpl('CPULIMIT = "200"\nCPUS = 2').warnings, []);
  assert.deepEqual(tpl('CPULIMIT = "100%"\nCPUS = 2').warnings, [], "N% is of all CPUs");
  assert.deepEqual(tpl('CPULIMIT = "800"').warnings, [], "without CPUS every host CPU counts");
});

Deno.test("spec: OS template names: archive extension, repository hash, IMAGE_ID, OSTEMPLATE", () => {
  const withExt = tpl('DISK = [ IMAGE = "centos-5-x86.tar.gz" ]', "VMID = 5\n");
  assert.equal(withExt.osDisk.templateName, "centos-5-x86");
  assert.deepEqual(withExt.warnings, [
    'DISK 0/IMAGE: "centos-5-x86.tar.gz" ends in .tar.gz: the OS template is centos-5-x86 ' +
    "(deploy gives the cached file the extension of the image's bytes); name it " +
    '"centos-5-x86" to silence this',
  ]);
  rejects(
    () =>
      tpl(
        'DISK = [ SOURCE = "/srv/cloud/images/70f38bbaf574eef06b8e3ca4e8ebee3eb1f1786d" ]',
        "VMID = 5\n",
      ),
    /^DISK 0\/SOURCE: ".*70f38bb.*" is an image of OpenNebula's repository, named by a hash, not an OS template name: use DISK = \[ IMAGE = "<the image's NAME, e.g. centos-5-x86>" \] .* or set OSTEMPLATE = "centos-5-x86"$/,
  );
  rejects(
    () => tpl("DISK = [ IMAGE_ID = 3 ]", "VMID = 5\n"),
    /^DISK 0: IMAGE_ID "3" without IMAGE or SOURCE: onevz needs the OS template name; give IMAGE = /,
  );
  // OSTEMPLATE names it explicitly (one-ovz-driver's DISTRO use case): it wins over the image.
  const explicit = tpl(
    'OSTEMPLATE = "debian-6.0-x86_64"\nDISK = [ SOURCE = "/srv/cloud/images/70f38bbaf574eef06b8e3ca4e8ebee3eb1f1786d", IMAGE_ID = 3 ]',
    "VMID = 5\n",
  );
  assert.equal(explicit.osDisk.templateName, "debian-6.0-x86_64");
  assert.deepEqual(explicit.warnings, []);
  assert.equal(
    tpl('OSTEMPLATE = "ubuntu-12.04-x86_64.tar.xz"').osDisk.templateName,
    "ubuntu-12.04-x86_64",
  );
  rejects(() => tpl('OSTEMPLATE = "../x"'), /^OSTEMPLATE: "..\/x" is not an OS template name/);
});
