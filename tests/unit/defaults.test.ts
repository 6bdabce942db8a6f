import assert from "node:assert/strict";
import { InvalidInputError } from "../../src/cli/errors.ts";
import { parseDriverConfig } from "../../src/one/config.ts";
import { applyDefaults, parseTemplateText } from "../../src/one/defaults.ts";
import { parseTemplateXml, single, values, vectors } from "../../src/one/template.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test("defaults: template syntax (quotes spanning lines, vectors, comments, case)", () => {
  const doc = parseTemplateText(`
# comment
name = vps145   # trailing comment
cpu=0.5
Context = [ hostname = "a.example.org", files = "/a /b",
  firewall = "
    [22]
    10.0.0.0/8
  " ]
RAW = [ TYPE = "ovz", DATA = "--features \\"nfs:on\\"" ]
MEMORY = [ KMEMSIZE="1:2", ]
DISK = [ TYPE = swap, SIZE = 1024 ]
DISK = [ SOURCE = "/x/centos.tar.gz" ]
`);
  assert.equal(single(doc, "NAME"), "vps145");
  assert.equal(single(doc, "CPU"), "0.5");
  const ctx = vectors(doc, "CONTEXT")[0];
  assert.equal(ctx.HOSTNAME, "a.example.org");
  assert.match(ctx.FIREWALL, /\[22\]\n\s+10\.0\.0\.0\/8/);
  assert.equal(vectors(doc, "RAW")[0].DATA, '--features "nfs:on"');
  assert.deepEqual(vectors(doc, "MEMORY")[0], { KMEMSIZE: "1:2" });
  assert.equal(values(doc, "DISK").length, 2);
});

Deno.test("defaults: syntax errors name the line", () => {
  const bad = (text: string, re: RegExp) =>
    assert.throws(() => parseTemplateText(text, "f.conf"), (e: unknown) => {
      assert.ok(e instanceof InvalidInputError);
      assert.match(e.message, re);
      return true;
    });
  bad('A = "open', /f\.conf:1: unterminated quoted value/);
  bad("A = [ B = 1\nC = 2 ]", /f\.conf:2: expected ',' or '\]'/);
  bad("A 1", /f\.conf:1: expected '=' after A/);
  bad("\n\nA =", /f\.conf:end: expected a value for A/);
  bad("1A = 2", /bad attribute name/);
});

Deno.test("defaults: missing attributes are added, vector keys filled, template wins", () => {
  const tpl = parseTemplateXml(
    "<TEMPLATE><CONTEXT><HOSTNAME><![CDATA[mine]]></HOSTNAME></CONTEXT><CPUUNITS><![CDATA[2000]]></CPUUNITS><MEMORY><![CDATA[512]]></MEMORY><VMID><![CDATA[1]]></VMID></TEMPLATE>",
  );
  const defs = parseTemplateText(`
CPUUNITS = 1000
ONBOOT = no
CONTEXT = [ HOSTNAME = theirs, NAMESERVER = "8.8.8.8" ]
MEMORY = [ KMEMSIZE = "1:2" ]
RAW = [ TYPE = ovz, DATA = "--numproc 100" ]
`);
  const merged = applyDefaults(tpl, defs);
  assert.equal(single(merged, "CPUUNITS"), "2000");
  assert.equal(single(merged, "ONBOOT"), "no");
  assert.deepEqual(vectors(merged, "CONTEXT")[0], { HOSTNAME: "mine", NAMESERVER: "8.8.8.8" });
  assert.equal(single(merged, "MEMORY"), "512", "plain template MEMORY wins over a vector default");
  assert.equal(vectors(merged, "RAW")[0].DATA, "--numproc 100");
  // inputs untouched
  assert.deepEqual(vectors(tpl, "CONTEXT")[0], { HOSTNAME: "mine" });
  assert.equal(single(tpl, "ONBOOT"), undefined);
  // vector + vector: missing keys only
  const t2 = parseTemplateText('MEMORY = [ KMEMSIZE = "5:6" ]');
  const m2 = applyDefaults(t2, parseTemplateText('MEMORY = [ KMEMSIZE = "1:2", NUMPROC = "240" ]'));
  assert.deepEqual(vectors(m2, "MEMORY")[0], { KMEMSIZE: "5:6", NUMPROC: "240" });
});

Deno.test("defaults: the shipped vmm_ssh_ovz.conf parses to the documented settings", () => {
  const text = Deno.readTextFileSync(`${ROOT}fixtures/templates/vmm_ssh_ovz.conf`);
  const cfg = parseDriverConfig(text);
  assert.equal(cfg.ctidOffset, 1000);
  assert.equal(cfg.contextDir, "/mnt");
  assert.equal(cfg.nicModel, "venet");
  assert.equal(cfg.defaults.attributes.has("ONEVZ"), false);
  assert.equal(cfg.defaults.attributes.size, 0, "all VM defaults are commented out");
});

Deno.test("config: ONEVZ settings validated, missing file gives built-in defaults", () => {
  const none = parseDriverConfig(null);
  assert.deepEqual([none.ctidOffset, none.contextDir, none.nicModel], [1000, "/mnt", "venet"]);
  const c = parseDriverConfig(
    'onevz = [ ctid_offset = 5000, nic_model = VETH, context_dir = "/opt/ctx" ]\nONBOOT = yes',
  );
  assert.deepEqual([c.ctidOffset, c.contextDir, c.nicModel], [5000, "/opt/ctx", "veth"]);
  assert.equal(single(c.defaults, "ONBOOT"), "yes");
  const bad = (t: string, re: RegExp) =>
    assert.throws(
      () => parseDriverConfig(t),
      (e: unknown) => e instanceof InvalidInputError && re.test(e.message),
    );
  bad("ONEVZ = [ CTID_OFFSET = 50 ]", /ONEVZ\/CTID_OFFSET: must be between 101/);
  bad("ONEVZ = [ CTID_OFFSET = x ]", /ONEVZ\/CTID_OFFSET: must be an integer/);
  bad('ONEVZ = [ CONTEXT_DIR = "mnt" ]', /ONEVZ\/CONTEXT_DIR: must be an absolute path/);
  bad('ONEVZ = [ CONTEXT_DIR = "/a/../etc" ]', /ONEVZ\/CONTEXT_DIR/);
  bad("ONEVZ = [ NIC_MODEL = e1000 ]", /ONEVZ\/NIC_MODEL: must be venet or veth/);
  bad("ONEVZ = 3", /ONEVZ must be a vector/);
});
