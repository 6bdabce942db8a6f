// ONEVZ LAYOUT and FIREWALL_CUSTOM, vzctl's version, deploy's vzfirewall warnings (pure parts).
import assert from "node:assert/strict";
import { parseDriverConfig } from "../../src/one/config.ts";
import { toSpec } from "../../src/one/spec.ts";
import { parseTemplateText } from "../../src/one/defaults.ts";
import { vzctlMajor, vzfirewallWarnings } from "../../src/actions/vmm/deploy_node.ts";
import { planDeploy } from "../../src/ovz/plan.ts";
import { withoutOnevzBlock } from "../../src/actions/vmm/deploy_steps.ts";
import { firewallBlock } from "../../src/one/context.ts";

Deno.test("ONEVZ LAYOUT and FIREWALL_CUSTOM: defaults, values, refusals", () => {
  const none = parseDriverConfig(null);
  assert.equal(none.layout, "simfs");
  assert.equal(none.firewallCustom, false);
  const set = parseDriverConfig('ONEVZ = [ LAYOUT = "PLOOP", FIREWALL_CUSTOM = "Yes" ]');
  assert.equal(set.layout, "ploop");
  assert.equal(set.firewallCustom, true);
  assert.throws(
    () => parseDriverConfig('ONEVZ = [ LAYOUT = "ext4" ]', "d.conf"),
    /d\.conf: ONEVZ\/LAYOUT: must be simfs or ploop$/,
  );
  assert.throws(
    () => parseDriverConfig('ONEVZ = [ FIREWALL_CUSTOM = "maybe" ]', "d.conf"),
    /ONEVZ\/FIREWALL_CUSTOM: must be yes or no/,
  );
});

Deno.test("vzctl --version: the major version decides --layout", () => {
  assert.equal(vzctlMajor("vzctl version 4.11.1\n"), 4);
  assert.equal(vzctlMajor("vzctl version 3.0.30.2\n"), 3);
  assert.equal(vzctlMajor("command not found"), undefined);
});

const spec = (extra: string) =>
  toSpec(parseTemplateText(`VMID = 7\nDISK = [ IMAGE = "centos-6-x86_64" ]\n${extra}`));

Deno.test("deploy's vzfirewall warnings: no rules, no venet IP, an IPv6 address", () => {
  assert.deepEqual(
    vzfirewallWarnings(spec('NIC = [ IP = "10.0.0.7" ]\nCONTEXT = [ FIREWALL = "[22]\n*" ]')),
    [],
  );
  const noFw = vzfirewallWarnings(spec('NIC = [ IP = "10.0.0.7" ]'));
  assert.equal(noFw.length, 1);
  assert.match(noFw[0], /no CONTEXT\/FIREWALL rules: .*accepts no inbound connection/);
  assert.match(
    vzfirewallWarnings(spec('NIC = [ IP = "10.0.0.7" ]\nCONTEXT = [ FIREWALL = "[22]" ]'))[0],
    /no CONTEXT\/FIREWALL rules/,
    "a section without a source opens nothing",
  );
  const veth = vzfirewallWarnings(
    spec('NIC = [ MODEL = "veth", BRIDGE = "br0" ]\nCONTEXT = [ FIREWALL = "[22]\n*" ]'),
  );
  assert.deepEqual(veth.length, 1);
  assert.match(veth[0], /container 1007 has no venet IP .*for the whole node/);
  const v6 = vzfirewallWarnings(
    spec('NIC = [ IP = "2001:db8::7" ]\nCONTEXT = [ FIREWALL = "[22]\n*" ]'),
  );
  assert.match(
    v6[0],
    /IPv6 address 2001:db8::7: .*iptables-restore refuses the whole node's rule set/,
  );
});

Deno.test("plan with LAYOUT = ploop: --layout ploop, the files written with the image mounted", () => {
  const s = spec('NIC = [ IP = "10.0.0.7" ]\nCONTEXT = [ HOSTNAME = "a", FIREWALL = "[22]\n*" ]');
  const facts = {
    flavour: "vswap" as const,
    vmDir: "/vz/one/vm",
    templateCacheDir: "/vz/template/cache",
    templateFileExt: ".tar.gz",
  };
  const ploop = planDeploy(s, { ...facts, layout: "ploop" });
  const R = "/vz/one/vm/7/images";
  assert.deepEqual(ploop.commands[0].argv.slice(-2), ["--layout", "ploop"]);
  assert.equal(ploop.paths.guest, `${R}/root`);
  const kinds = ploop.steps.map((x) => x.kind === "run" ? x.argv[2] : x.kind);
  assert.deepEqual(kinds, [
    "place-template",
    "create",
    "set",
    "mount",
    "copy-dir",
    "write-file",
    "umount",
    "append-config",
    "start",
  ]);
  const ctx = ploop.steps.find((x) => x.kind === "write-file");
  assert.equal(ctx?.kind === "write-file" && ctx.path, `${R}/root/mnt/context.sh`);
  const simfs = planDeploy(s, { ...facts, layout: "simfs" });
  assert.equal(simfs.paths.guest, `${R}/private`);
  assert.ok(!simfs.commands.some((c) => c.argv[2] === "mount"));
  const old = planDeploy(s, facts);
  assert.ok(!old.commands[0].argv.includes("--layout"), "vzctl 3.0.x: no --layout");
});

Deno.test("redeploy replaces onevz's block, also the commented one older versions wrote", () => {
  const old = 'IP_ADDRESS="10.0.0.7"\n' +
    "# onevz: vzfirewall rules from the OpenNebula template (CONTEXT/FIREWALL)\n" +
    '#FIREWALL="\n#[22]\n#*\n#"\nCPUUNITS="500"\n';
  assert.equal(withoutOnevzBlock(old), 'IP_ADDRESS="10.0.0.7"\nCPUUNITS="500"\n');
  const current = `IP_ADDRESS="10.0.0.7"\n${firewallBlock("[80]\n*")}ONBOOT="no"\n`;
  assert.equal(withoutOnevzBlock(current), 'IP_ADDRESS="10.0.0.7"\nONBOOT="no"\n');
});
