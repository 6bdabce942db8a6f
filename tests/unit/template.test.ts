import assert from "node:assert/strict";
import { InvalidInputError } from "../../src/cli/errors.ts";
import { parseTemplateXml, single, values, vectors } from "../../src/one/template.ts";

const SAMPLES = new URL("../../fixtures/samples/opennebula-2.2.1", import.meta.url).pathname;
const read = (f: string) => Deno.readTextFileSync(`${SAMPLES}/${f}`);

function invalid(xml: string, re: RegExp) {
  assert.throws(() => parseTemplateXml(xml), (e: unknown) => {
    assert.ok(e instanceof InvalidInputError, `not InvalidInputError: ${e}`);
    assert.match(e.message, re);
    assert.ok(!e.message.includes("\n"), "one line");
    return true;
  });
}

Deno.test("template: the constructed 2.2.1 deployment file (TEMPLATE root, CDATA)", () => {
  const doc = parseTemplateXml(read("constructed_2.2.1_xml_deployment.0"));
  assert.equal(doc.vmId, undefined);
  assert.equal(single(doc, "VMID"), "7");
  assert.equal(single(doc, "cpu"), "0.5");
  assert.equal(single(doc, "REQUIREMENTS"), 'HYPERVISOR="ovz"');
  const disks = vectors(doc, "DISK");
  assert.equal(disks.length, 2);
  assert.equal(disks[0].IMAGE, "centos-5-x86-minimal");
  assert.equal(disks[1].TYPE, "swap");
  assert.deepEqual(vectors(doc, "RAW"), [{ DATA: "--diskspace 2G:2.2G", TYPE: "ovz" }]);
  assert.deepEqual([...doc.attributes.keys()], [
    "CONTEXT",
    "CPU",
    "DISK",
    "MEMORY",
    "NAME",
    "NIC",
    "RAW",
    "REQUIREMENTS",
    "VMID",
  ]);
});

Deno.test("template: full VM documents use the TEMPLATE child and keep the VM ID", () => {
  const doc = parseTemplateXml(read("constructed_2.2.1_onevm_show_x.xml"));
  assert.equal(doc.vmId, 7);
  assert.equal(single(doc, "NAME"), "ovz-test");
  assert.equal(values(doc, "HISTORY").length, 0);
  const pool = parseTemplateXml(read("VirtualMachinePoolTest_02.xml"));
  assert.equal(single(pool, "MEMORY"), "1024");
});

Deno.test("template: whitespace-padded and pretty-printed documents are trimmed", () => {
  const doc = parseTemplateXml(read("VirtualMachineXMLTest_00.xml"));
  assert.equal(doc.vmId, 0);
  assert.equal(single(doc, "NAME"), "vm-example");
  assert.deepEqual(vectors(doc, "CONTEXT")[0], {
    HOSTNAME: "vm-example",
    IP_GEN: "10.0.0.",
    IP_PRIVATE: "10.0.0.1",
  });
  const oca = parseTemplateXml(read("oca_ruby_fixture_vm.xml"));
  assert.equal(oca.vmId, 6);
  assert.deepEqual(vectors(oca, "CONTEXT")[0], { DNS: "192.169.1.4", TYPE: "" });
  assert.equal(single(oca, "REQUIREMENTS"), 'MAC="50:20:20:20:20:20"');
});

Deno.test("template: lower-case names are upper-cased, entities and CDATA decoded", () => {
  const doc = parseTemplateXml(
    `<TEMPLATE><name> a &amp; b &#65;&#x42; </name><context><files><![CDATA[ <x> &amp; ]]></files></context></TEMPLATE>`,
  );
  assert.equal(single(doc, "NAME"), "a & b AB");
  assert.deepEqual(vectors(doc, "CONTEXT"), [{ FILES: "<x> &amp;" }]);
});

Deno.test("template: bad input is one clear line", () => {
  invalid("", /empty input/);
  invalid("   \n ", /empty input/);
  invalid("<TEMPLATE><NAME>x</NAME>", /malformed/);
  invalid("<TEMPLATE><NAME>x</TEMPLATE>", /malformed/);
  invalid("<TEMPLATE><NAME><![CDATA[x</NAME></TEMPLATE>", /malformed|CDATA/);
  invalid("not xml at all", /malformed/);
  invalid("<HOST><ID>1</ID></HOST>", /root element is <HOST>, expected <TEMPLATE> or <VM>/);
  invalid(read("VirtualMachinePoolTest_03.xml"), /root element is <VM_POOL>/);
  invalid(read("VirtualMachineXMLTest_04.xml"), /root element is <HOST>/);
  invalid("<VM><ID>1</ID></VM>", /0 TEMPLATE elements/);
  invalid(
    `<!DOCTYPE t [<!ENTITY x "yyyy">]><TEMPLATE><NAME>&x;</NAME></TEMPLATE>`,
    /DOCTYPE/,
  );
  invalid("<TEMPLATE><NAME>&x;</NAME></TEMPLATE>", /unknown entity|malformed/);
  invalid("<TEMPLATE><DISK><A><B>1</B></A></DISK></TEMPLATE>", /DISK\/A has nested elements/);
  invalid(
    "<TEMPLATE><NAME>" + "x".repeat(4 * 1024 * 1024) + "</NAME></TEMPLATE>",
    /larger than 4 MiB/,
  );
});
