// Template mistakes that are still valid templates: warned about with the fix ("did you
// mean …"), while OpenNebula's own attributes and custom attributes stay quiet.
import assert from "node:assert/strict";
import { specFromXml } from "../../src/actions/vmm/deploy.ts";
import { parseDriverConfig } from "../../src/one/config.ts";
import { editDistance, lintTemplate, OPENNEBULA_ATTRIBUTES, suggest } from "../../src/one/lint.ts";
import { parseTemplateXml } from "../../src/one/template.ts";
import { parseTemplate } from "../../src/one/template_syntax.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const SAMPLES = `${ROOT}fixtures/samples/opennebula-2.2.1`;
const lint = (text: string) => lintTemplate(parseTemplate(text).doc);

Deno.test("lint: the seed's FIREWALLl, CPUUNIT and a top-level KMEMSIZE are warned with the fix", () => {
  const seed = parseTemplate(Deno.readTextFileSync(`${ROOT}fixtures/templates/vps145.one`)).doc;
  assert.deepEqual(lintTemplate(seed), [
    "CONTEXT/FIREWALLL: did you mean CONTEXT/FIREWALL? (FIREWALLL is passed to context.sh as a " +
    "plain variable; onevz acts on FIREWALL)",
  ]);
  assert.deepEqual(lint('CPUUNIT = "2000"\nKMEMSIZE = "14372700:14790164"'), [
    "CPUUNIT is not an attribute OpenNebula or onevz reads: did you mean CPUUNITS?",
    "KMEMSIZE is a beancounter and is ignored outside MEMORY: write it inside " +
    'MEMORY = [ KMEMSIZE = "barrier:limit", … ]',
  ]);
  assert.deepEqual(lint('DISK = [ SOUCRE = "/a/b.tar" ]\nNIC = [ NETWROK = "Public" ]'), [
    "DISK 0/SOUCRE: did you mean DISK 0/SOURCE?",
    "NIC 0/NETWROK: did you mean NIC 0/NETWORK?",
  ]);
  assert.deepEqual(lint('DISK = [ IMAGE = "x", OSTEMPLATE = "debian-6.0-x86_64" ]'), [
    'DISK 0/OSTEMPLATE: onevz reads the OS template name from the top-level OSTEMPLATE = "…" ' +
    "(oned rewrites a DISK that uses IMAGE or IMAGE_ID and drops its other keys): move it out " +
    "of the DISK as OSTEMPLATE",
  ]);
});

Deno.test("lint: OpenNebula 2.2.1's own attributes and custom attributes stay quiet", () => {
  const all = OPENNEBULA_ATTRIBUTES.map((a) => `${a} = "x"`).join("\n");
  assert.deepEqual(lint(all), []);
  assert.deepEqual(
    lint(
      "ONBOOT = yes\nCPUUNITS = 1\nCPULIMIT = 1\nCPUS = 1\nCPUMASK = all\nDISKSPACE = 1\n" +
        'DISKINODES = 1\nOSTEMPLATE = x\nOWNER_TEAM = "web"\nBACKUP = daily\n' +
        "CONTEXT = [ IP_PUBLIC = x, SSH_KEY = y, USERNAME = z, DNS = w, ROOT_PUBKEY = v ]",
    ),
    [],
  );
  // Every real 2.2.1 template document of the samples (tests, examples, constructed files).
  let linted = 0;
  for (const f of Deno.readDirSync(SAMPLES)) {
    if (
      !/^(VirtualMachine(Pool|XML)Test|constructed_2\.2\.1_(xml_deployment|onevm_show_x)|oca_ruby_fixture_vm)/
        .test(f.name)
    ) continue;
    const text = Deno.readTextFileSync(`${SAMPLES}/${f.name}`);
    let doc;
    try {
      doc = parseTemplateXml(text);
    } catch {
      continue; // pool documents: not one template
    }
    assert.deepEqual(lintTemplate(doc), [], f.name);
    linted++;
  }
  assert.ok(linted >= 9, `${linted} sample templates linted`);
  assert.deepEqual(
    lint(Deno.readTextFileSync(`${SAMPLES}/share_examples_vm.template`)),
    [],
  );
});

Deno.test("lint: a typo in the defaults file's ONEVZ vector or attributes names the file", () => {
  const cfg = parseDriverConfig(
    'ONEVZ = [ CTID_OFFSET = 1000, NIC_MODL = veth ]\nCPUUNIT = 500\nMEMORY = [ KMEMSIZE = "1:2" ]',
    "/etc/one/vmm_ssh/vmm_ssh_ovz.conf",
  );
  assert.deepEqual(cfg.warnings, [
    "/etc/one/vmm_ssh/vmm_ssh_ovz.conf: ONEVZ/NIC_MODL is not an onevz setting: did you mean ONEVZ/NIC_MODEL?",
    "/etc/one/vmm_ssh/vmm_ssh_ovz.conf: CPUUNIT is not an attribute OpenNebula or onevz reads: did you mean CPUUNITS?",
  ]);
  assert.equal(cfg.nicModel, "venet", "the misspelt setting is not applied");
  // The shipped defaults file is clean.
  assert.deepEqual(
    parseDriverConfig(Deno.readTextFileSync(`${ROOT}fixtures/templates/vmm_ssh_ovz.conf`)).warnings,
    [],
  );
});

Deno.test("lint: deploy's spec carries the template's and the defaults file's warnings", () => {
  const xml = Deno.readTextFileSync(`${ROOT}fixtures/templates/vps145.xml`)
    .replace("<FIREWALL>", "<FIREWALLl>").replace("</FIREWALL>", "</FIREWALLl>")
    .replace("<CPUUNITS>", "<CPUUNIT>").replace("</CPUUNITS>", "</CPUUNIT>");
  const spec = specFromXml(xml, parseDriverConfig("ONEVZ = [ NIC_MODL = veth ]", "d.conf"));
  assert.deepEqual(spec.warnings, [
    "d.conf: ONEVZ/NIC_MODL is not an onevz setting: did you mean ONEVZ/NIC_MODEL?",
    "CONTEXT/FIREWALLL: did you mean CONTEXT/FIREWALL? (FIREWALLL is passed to context.sh as a plain variable; onevz acts on FIREWALL)",
    "CPUUNIT is not an attribute OpenNebula or onevz reads: did you mean CPUUNITS?",
  ]);
  assert.equal(spec.context!.firewall, undefined);
});

Deno.test("lint: suggestions are one slip away (two for long names), never for short names", () => {
  assert.equal(editDistance("FIREWALL", "FIERWALL"), 1, "a transposition is one slip");
  assert.equal(suggest("NAMESERVRE", ["NAMESERVER"]), "NAMESERVER");
  assert.equal(suggest("NAMSEVER", ["NAMESERVER"]), undefined, "8 letters: one slip only");
  assert.equal(suggest("NAMESRVRE", ["NAMESERVER"]), "NAMESERVER", "9+ letters: two slips");
  assert.equal(suggest("IPS", ["IP"]), undefined);
  assert.equal(suggest("CPUS", ["CPUS", "CPU"]), undefined, "known names are not typos");
});
