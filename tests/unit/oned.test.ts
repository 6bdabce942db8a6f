// The operator's template (OpenNebula syntax) → what oned would pass to deploy: one parser
// for both syntaxes, and oned's part (VMID, NAME, leases, image disks, CONTEXT variables)
// done for `onevz plan`, with every assumption said.
import assert from "node:assert/strict";
import { parseNetworkOptions, prepareLikeOned } from "../../src/one/oned.ts";
import { toSpec } from "../../src/one/spec.ts";
import { single, vectors } from "../../src/one/template.ts";
import { parseTemplate } from "../../src/one/template_syntax.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const SAMPLES = `${ROOT}fixtures/samples/opennebula-2.2.1`;
const read = (p: string) => Deno.readTextFileSync(`${ROOT}${p}`);

Deno.test("template syntax: the seed's vps145.one and the vps145 deployment file hold the same VM", () => {
  const one = parseTemplate(read("fixtures/templates/vps145.one"), "vps145.one");
  assert.equal(one.syntax, "template");
  const xml = parseTemplate(read("fixtures/templates/vps145.xml"));
  assert.equal(xml.syntax, "xml");
  const { doc } = prepareLikeOned(one.doc, {
    vmid: 45,
    networks: { Public: { DNS: "111.111.111.2", BRIDGE: "eth0" } }, // the seed's public.net
  });
  const a = toSpec(doc);
  const b = toSpec(xml.doc);
  // The seed spells FIREWALLl: the only difference (it is a plain context variable there).
  assert.equal(a.context!.firewall, undefined);
  assert.ok(a.context!.vars.FIREWALLL.includes("111.111.111.0/24"));
  for (const s of [a, b]) {
    delete s.context!.firewall;
    s.context!.vars = {};
  }
  assert.deepEqual(a, b);
});

Deno.test("template syntax: a leading BOM or blank lines before < is still XML; empty is refused", () => {
  const xml = read("fixtures/templates/vswap-basic.xml");
  assert.equal(parseTemplate(`\uFEFF\n  ${xml}`).syntax, "xml");
  const vm = parseTemplate(
    Deno.readTextFileSync(`${SAMPLES}/constructed_2.2.1_onevm_show_x.xml`),
  );
  assert.equal(vm.syntax, "xml");
  assert.equal(vm.doc.vmId, 7);
  assert.throws(() => parseTemplate(" \n\n", "x.one"), /x\.one: empty template/);
  assert.throws(() => parseTemplate('NAME = "open', "x.one"), /x\.one:1: unterminated/);
});

Deno.test("oned: VMID and NAME are added as oned adds them, the VMID assumption is said", () => {
  const { doc } = parseTemplate('DISK = [ SOURCE = "/a/centos-6-x86.tar.gz" ]');
  const r = prepareLikeOned(doc);
  assert.equal(single(r.doc, "VMID"), "0");
  assert.equal(single(r.doc, "NAME"), "one-0");
  assert.deepEqual(r.assumptions, [
    "VMID: oned assigns it at onevm create; plan assumed 0 (give --vmid N)",
  ]);
  const given = prepareLikeOned(doc, { vmid: 12 });
  assert.equal(single(given.doc, "NAME"), "one-12");
  assert.deepEqual(given.assumptions, []);
  assert.equal(toSpec(given.doc).ctid, 1012);
});

Deno.test("oned: CONTEXT variables are substituted as vm_var_parser does", () => {
  const { doc } = parseTemplate(`
NAME = web
CPU = 0.5
NIC = [ NETWORK = "Public", IP = "10.0.0.5" ]
NIC = [ NETWORK = "Private LAN", IP = "192.168.1.7", MODEL = veth ]
DISK = [ SOURCE = "/a/centos-6-x86.tar.gz" ]
CONTEXT = [
  HOSTNAME = "$NAME.example.org",
  IP_PUBLIC = "$NIC[IP]",
  IP_PRIVATE = "$NIC[IP, NETWORK=\\"Private LAN\\"]",
  NAMESERVER = "$NETWORK[DNS, NAME=\\"Public\\"]",
  GATEWAY = "$NETWORK[GATEWAY, NAME=\\"Public\\" ]",
  ID = "vm-$VMID",
  COST = "$CPU units, $ 5",
  TYPO = "$NAEM" ]
`);
  const r = prepareLikeOned(doc, {
    vmid: 3,
    networks: parseNetworkOptions(["Public:DNS=10.0.0.2 10.0.0.3,GATEWAY=10.0.0.1"]),
  });
  const ctx = vectors(r.doc, "CONTEXT")[0];
  assert.deepEqual(ctx, {
    HOSTNAME: "web.example.org",
    IP_PUBLIC: "10.0.0.5",
    IP_PRIVATE: "192.168.1.7",
    NAMESERVER: "10.0.0.2 10.0.0.3",
    GATEWAY: "10.0.0.1",
    ID: "vm-3",
    COST: "0.5 units, $ 5",
    TYPO: "",
    TARGET: "hdb",
  });
  assert.deepEqual(r.warnings, [
    'CONTEXT/TYPO: $NAEM is not a single attribute of the template: oned substitutes ""',
  ]);
  const spec = toSpec(r.doc);
  assert.equal(spec.context!.hostname, "web.example.org");
  assert.deepEqual(spec.context!.nameservers, ["10.0.0.2", "10.0.0.3"]);
});

Deno.test("oned: unknown network values are assumed (documentation addresses) and said", () => {
  const { doc } = parseTemplate(read("fixtures/templates/vps145.one"), "vps145.one");
  const r = prepareLikeOned(doc, { vmid: 45 });
  assert.equal(vectors(r.doc, "CONTEXT")[0].NAMESERVER, "192.0.2.53");
  assert.deepEqual(r.assumptions, [
    'CONTEXT/NAMESERVER: $NETWORK[DNS, NAME="Public" ] is network Public\'s DNS, which only ' +
    "oned knows; plan assumed 192.0.2.53 (give --network Public:DNS=…)",
  ]);
  // The placeholder is a valid address: the template is planned, not refused.
  assert.deepEqual(toSpec(r.doc).context!.nameservers, ["192.0.2.53"]);
});

Deno.test("oned: NIC = [ NETWORK, IP ] keeps the IP, derives the MAC, needs no network", () => {
  const { doc } = parseTemplate(`
DISK = [ SOURCE = "/a/centos-6-x86.tar.gz" ]
NIC = [ NETWORK = "Public", IP = "111.111.111.111", TARGET = vnet0, MAC = "aa:aa:aa:aa:aa:aa" ]
NIC = [ NETWORK_ID = 4, MODEL = veth ]
NIC = [ IP = "10.9.9.9", BRIDGE = br9 ]
`);
  const r = prepareLikeOned(doc, { vmid: 1 });
  assert.deepEqual(vectors(r.doc, "NIC"), [
    { NETWORK: "Public", IP: "111.111.111.111", MAC: "02:00:6f:6f:6f:6f" },
    { NETWORK_ID: "4", MODEL: "veth", IP: "192.0.2.11", MAC: "02:00:c0:00:02:0b", BRIDGE: "br0" },
    { IP: "10.9.9.9", BRIDGE: "br9" },
  ]);
  assert.deepEqual(r.assumptions, [
    'NIC 1: oned leases an address of network 4 at onevm create; plan assumed 192.0.2.11 (write IP = "…" in the NIC to reserve one, as oned allows)',
    "NIC 1: the bridge is network 4's BRIDGE; plan assumed br0 (give --network 4:BRIDGE=…)",
  ]);
  const known = prepareLikeOned(doc, {
    vmid: 1,
    networks: parseNetworkOptions(["4:BRIDGE=br4"]),
  });
  assert.equal(vectors(known.doc, "NIC")[1].BRIDGE, "br4");
});

Deno.test("oned: an image DISK is rewritten (DISK_ID, CLONE, SAVE…), its other keys dropped with a warning", () => {
  const { doc } = parseTemplate(`
DISK = [ IMAGE = "debian-6.0-x86_64", DISKSPACE = "2G:2.2G", TARGET = sda ]
DISK = [ TYPE = swap, SIZE = 512 ]
`);
  const r = prepareLikeOned(doc, { vmid: 2 });
  assert.deepEqual(vectors(r.doc, "DISK"), [
    {
      IMAGE: "debian-6.0-x86_64",
      TARGET: "sda",
      CLONE: "YES",
      SAVE: "NO",
      TYPE: "DISK",
      READONLY: "NO",
      DISK_ID: "0",
    },
    { TYPE: "swap", SIZE: "512", DISK_ID: "1" },
  ]);
  assert.deepEqual(r.warnings, [
    "DISK 0/DISKSPACE: oned replaces a DISK that uses IMAGE or IMAGE_ID with the image's " +
    'attributes, so DISKSPACE never reaches deploy: write DISKSPACE = "…" at top level',
  ]);
  // IMAGE_ID only: the name is oned's to fill in; plan says what it assumed.
  const byId = prepareLikeOned(parseTemplate("DISK = [ IMAGE_ID = 7 ]").doc, { vmid: 2 });
  assert.equal(vectors(byId.doc, "DISK")[0].IMAGE, "image-7");
  assert.match(byId.assumptions.at(-1)!, /^DISK 0: oned puts the NAME of image 7 here/);
  const named = prepareLikeOned(
    parseTemplate('OSTEMPLATE = "centos-6-x86_64"\nDISK = [ IMAGE_ID = 7 ]').doc,
    { vmid: 2 },
  );
  assert.equal(toSpec(named.doc).osDisk.templateName, "centos-6-x86_64");
  assert.deepEqual(named.assumptions, []);
});

Deno.test("oned: --network values parse; malformed ones are refused", () => {
  assert.deepEqual(
    parseNetworkOptions(["Public:DNS=1.2.3.4 5.6.7.8,gateway=1.2.3.1", "Public:BRIDGE=br1"]),
    { Public: { DNS: "1.2.3.4 5.6.7.8", GATEWAY: "1.2.3.1", BRIDGE: "br1" } },
  );
  assert.throws(() => parseNetworkOptions(["Public"]), /NAME:KEY=VALUE/);
  assert.throws(() => parseNetworkOptions(["Public:DNS"]), /is not KEY=VALUE/);
});
