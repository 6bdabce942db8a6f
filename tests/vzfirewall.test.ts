// The vzfirewall hook with the vzfirewall the operator has (issue 12 §5b): every version
// family reads onevz's FIREWALL block, the block survives later `vzctl set --save` calls,
// deploy warns about containers vzfirewall would close or choke on, and doctor reports the
// version, its Perl modules and whether `vzfirewall -t` gets through the node's configs.
import assert from "node:assert/strict";
import {
  makeSimNode,
  makeTemplateTarball,
  REPO,
  run,
  SIM_BIN,
  type SimNode,
} from "./helpers/simnode.ts";
import { evaluateVzfirewall, vzfirewallProbes } from "../src/admin/checks/vzfirewall.ts";
import { parseProbeOutput, probeScript } from "../src/admin/checks/types.ts";

const VPS145 = await Deno.readTextFile(`${REPO}/fixtures/templates/vps145.xml`);
const TARBALL = await makeTemplateTarball("bz2");
const HOOK = `${REPO}/remotes/hooks/vzfirewall.sh`;
const ALLOW_ANY_PORT = "-A FORWARD -s 111.111.111.0/24 -d 111.111.111.111 -j ACCEPT";
const ALLOW_SSH =
  "-A FORWARD -s 222.222.222.0/16 -d 111.111.111.111 -m multiport -p tcp --dports 22 -j ACCEPT";

async function deployed(node: SimNode, xml = VPS145, vid = 45) {
  const images = `${node.vmDir}${vid}/images`;
  await Deno.mkdir(`${images}/disk.2`, { recursive: true });
  await Deno.writeFile(`${images}/disk.0`, TARBALL); // one image: same bytes for every VM
  await Deno.writeTextFile(`${images}/disk.2/init.sh`, "echo booted\n");
  await Deno.writeTextFile(`${images}/disk.2/id_rsa.pub`, "ssh-rsa AAAA test\n");
  return await node.action("deploy", [`${images}/deployment.0`], xml);
}

/** The vzfirewall hook as oned's hook manager runs it on the node. */
const hook = (node: SimNode) => run(HOOK, ["-"], { env: node.env });
const applied = (node: SimNode) =>
  Deno.readTextFile(`${node.root}/sim/iptables.applied`).catch(() => "");

/** Swap the node's installed vzfirewall for another version. */
async function installVzfirewall(node: SimNode, version: string) {
  const p = `${node.root}/sim/node.json`;
  const info = JSON.parse(await Deno.readTextFile(p));
  await Deno.writeTextFile(p, JSON.stringify({ ...info, vzfirewall: version }) + "\n");
}

const FAMILIES = ["1.04", "1.05", "1.06", "1.12", "1.14"];
/** Nodes whose operator set VE_LAYOUT=simfs: these tests are about the firewall alone. */
const SIMFS = ["--ve-layout", "simfs"];

Deno.test("every vzfirewall version from 1.04 on applies the rules onevz writes", async () => {
  for (const v of FAMILIES) {
    const node = await makeSimNode({ init: ["--vzfirewall", v, ...SIMFS] });
    try {
      const d = await deployed(node);
      assert.equal(d.code, 0, d.stderr);
      const h = await hook(node);
      assert.equal(h.code, 0, `${v}: ${h.stdout}${h.stderr}`);
      const rules = await applied(node);
      assert.ok(rules.includes(ALLOW_ANY_PORT + "\n"), `${v}:\n${rules}`);
      assert.ok(rules.includes(ALLOW_SSH + "\n"), `${v}:\n${rules}`);
    } finally {
      await node.cleanup();
    }
  }
});

Deno.test("the FIREWALL block is kept byte for byte by later vzctl set --save calls", async () => {
  const node = await makeSimNode({ init: SIMFS });
  try {
    assert.equal((await deployed(node)).code, 0);
    const path = `${node.root}/etc/vz/conf/1045.conf`;
    const END = "# onevz: end of vzfirewall rules\n";
    const block = (text: string) =>
      text.slice(text.indexOf("# onevz: vzfirewall rules"), text.indexOf(END) + END.length);
    const before = block(await Deno.readTextFile(path));
    assert.match(before, /^# onevz: vzfirewall rules[^\n]*\nFIREWALL="\n/);
    for (
      const args of [
        ["--cpuunits", "500"],
        ["--hostname", "renamed.example.org"],
        ["--onboot", "no"],
        ["--ipadd", "111.111.111.112"],
        ["--nameserver", "111.111.111.3", "--searchdomain", "example.org"],
        ["--numproc", "400:400"],
      ]
    ) {
      const r = await node.tool("vzctl", ["set", "1045", ...args, "--save"]);
      assert.equal(r.code, 0, r.stderr);
    }
    const text = await Deno.readTextFile(path);
    assert.equal(block(text), before, "the block's lines are untouched");
    assert.match(text, /^IP_ADDRESS="111\.111\.111\.111 111\.111\.111\.112"$/m);
    for (const v of FAMILIES) {
      await installVzfirewall(node, v);
      const t = await node.tool("vzfirewall", ["-t"]);
      assert.equal(t.code, 0, `${v}: ${t.stderr}`);
      for (const ip of ["111.111.111.111", "111.111.111.112"]) {
        assert.ok(
          t.stdout.includes(ALLOW_SSH.replace("111.111.111.111", ip)),
          `${v} ${ip}:\n${t.stdout}`,
        );
      }
    }
  } finally {
    await node.cleanup();
  }
});

Deno.test("deploy warns when vzfirewall would close the container or stop for the whole node", async () => {
  const node = await makeSimNode({ init: SIMFS });
  try {
    const noFw = VPS145.replace(/<FIREWALL>.*?<\/FIREWALL>/s, "");
    const r = await deployed(node, noFw);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stderr,
      "onevz: deploy: warning: VM 45 has no CONTEXT/FIREWALL rules: once vzfirewall runs (the " +
        "vzfirewall hook), container 1045 accepts no inbound connection; add e.g. " +
        'FIREWALL = "[22] *" to open ssh\n',
    );
    assert.equal((await hook(node)).code, 0);
    const rules = await applied(node);
    assert.ok(rules.includes("-A FORWARD -d 111.111.111.111 -j vzfw-deny\n"));
    assert.ok(!/-d 111\.111\.111\.111 .*-j ACCEPT/.test(rules), "nothing opened for it");

    // a veth-only VM: no IP_ADDRESS in its config, which stops vzfirewall for every container
    const veth = VPS145.replaceAll("<![CDATA[45]]></VMID>", "<![CDATA[46]]></VMID>")
      .replace(
        /<NIC>.*?<\/NIC>/s,
        "<NIC><BRIDGE><![CDATA[br0]]></BRIDGE><MODEL><![CDATA[veth]]></MODEL></NIC>",
      );
    const v = await deployed(node, veth, 46);
    assert.equal(v.code, 0, v.stderr);
    assert.match(
      v.stderr,
      /warning: container 1046 has no venet IP .*Cannot find IP_ADDRESS.* for the whole node/,
    );
    const h = await hook(node);
    assert.notEqual(h.code, 0);
    assert.match(h.stdout + h.stderr, /Cannot find IP_ADDRESS in .*1046\.conf/);
  } finally {
    await node.cleanup();
  }
});

Deno.test("deploy does not warn on a node without vzfirewall", async () => {
  const node = await makeSimNode({ init: SIMFS });
  try {
    const bin = `${node.dir}/bin`;
    await Deno.mkdir(bin);
    for (const t of ["vzctl", "vzlist", "vzmigrate", "ovzsim"]) {
      await Deno.symlink(`${SIM_BIN}/${t}`, `${bin}/${t}`);
    }
    node.env.PATH = `${bin}:/usr/bin:/bin`;
    const r = await deployed(node, VPS145.replace(/<FIREWALL>.*?<\/FIREWALL>/s, ""));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
  } finally {
    await node.cleanup();
  }
});

/** Doctor's vzfirewall probes run on a simulated node, evaluated. */
async function doctorOn(node: SimNode) {
  const r = await run("sh", ["-c", probeScript(vzfirewallProbes())], { env: node.env });
  return evaluateVzfirewall({ scope: "node cn1", probes: parseProbeOutput(r.stdout) });
}

Deno.test("doctor: vzfirewall version, its Perl modules, vzfirewall -t on the node's configs", async () => {
  const old = await makeSimNode({ init: ["--vzfirewall", "1.04"] });
  try {
    assert.equal((await deployed(old)).code, 0);
    const rs = await doctorOn(old);
    assert.deepEqual(rs.map((r) => [r.id, r.status]), [
      ["node.vzfirewall.version", "ok"],
      ["node.vzfirewall.test", "ok"],
    ]);
    assert.match(
      rs[0].message,
      /^vzfirewall 1\.04 .*reads FIREWALL="…" only .*strict, File::Basename, POSIX$/,
    );
  } finally {
    await old.cleanup();
  }
  const current = await makeSimNode({ init: ["--vzfirewall", "1.14"] });
  try {
    const rs = await doctorOn(current);
    assert.match(rs[0].message, /^vzfirewall 1\.14 .*Getopt::Long, Pod::Usage, Switch$/);
    assert.equal(rs[1].status, "ok");
    // a veth-only container config: -t fails for the whole node, and doctor says why
    await Deno.writeTextFile(`${current.root}/etc/vz/conf/1099.conf`, 'NETIF="ifname=eth0"\n');
    const bad = await doctorOn(current);
    const t = bad.find((r) => r.id === "node.vzfirewall.test")!;
    assert.equal(t.status, "failure");
    assert.match(t.message, /Cannot find IP_ADDRESS in .*1099\.conf/);
    assert.match(t.detail?.[0] ?? "", /without a venet IP/);
  } finally {
    await current.cleanup();
  }
  const noSwitch = await makeSimNode({ init: ["--vzfirewall", "1.14", "--no-perl-switch"] });
  try {
    const rs = await doctorOn(noSwitch);
    assert.deepEqual(rs.map((r) => [r.id, r.status]), [["node.vzfirewall.perl", "failure"]]);
    assert.match(rs[0].message, /does not start: Perl 5\.\d+ lacks the module Switch/);
    assert.match(rs[0].fix ?? "", /libswitch-perl/);
  } finally {
    await noSwitch.cleanup();
  }
  // no vzfirewall on the node: nothing to report here (node.tool.vzfirewall says so)
  assert.deepEqual(
    evaluateVzfirewall({ scope: "node x", probes: { "vzfw:path": { rc: 127, out: "" } } }),
    [],
  );
});
