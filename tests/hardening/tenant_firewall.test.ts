// Hostile tenants and the node-wide firewall (issue 11 §3). Two tenants on one simulated node:
// B deploys an ordinary FIREWALL; A tries each attack through its own template. Each attack
// is a real deploy followed by a real run of the vzfirewall hook: onevz refuses A's template
// (one line naming CONTEXT/FIREWALL and what the operator can allow) and B's rules apply.
// The controls show the attacks are real: the simulated vzfirewall copies [CUSTOM] lines
// verbatim and dies on a name that does not resolve, as the real one does.
import assert from "node:assert/strict";
import { makeSimNode, makeTemplateTarball, REPO, run, type SimNode } from "../helpers/simnode.ts";
import { figure } from "./figures.ts";

const VPS145 = await Deno.readTextFile(`${REPO}/fixtures/templates/vps145.xml`);
const DEFAULTS = await Deno.readTextFile(`${REPO}/fixtures/templates/vmm_ssh_ovz.conf`);
const TARBALL = await makeTemplateTarball("bz2");
const HOOK = `${REPO}/remotes/hooks/vzfirewall.sh`;
const A_IP = "10.0.0.1", B_IP = "10.0.0.2";
const B_RULE = `-A FORWARD -d ${B_IP} -m multiport -p tcp --dports 80 -j ACCEPT`;

/** A tenant's VM: vps145 with its own VMID, IP and FIREWALL. */
function tenant(vmid: number, ip: string, firewall: string): string {
  return VPS145.replaceAll("<![CDATA[45]]></VMID>", `<![CDATA[${vmid}]]></VMID>`)
    .replace("<![CDATA[111.111.111.111]]>", `<![CDATA[${ip}]]>`)
    .replace(/<FIREWALL>.*?<\/FIREWALL>/s, `<FIREWALL><![CDATA[${firewall}]]></FIREWALL>`);
}

async function deploy(node: SimNode, vmid: number, xml: string) {
  const images = `${node.vmDir}${vmid}/images`;
  await Deno.mkdir(`${images}/disk.2`, { recursive: true });
  await Deno.writeFile(`${images}/disk.0`, TARBALL);
  await Deno.writeTextFile(`${images}/disk.2/init.sh`, "true\n");
  await Deno.writeTextFile(`${images}/disk.2/id_rsa.pub`, "ssh-rsa AAAA\n");
  return await node.action("deploy", [`${images}/deployment.0`], xml);
}

const hook = (node: SimNode) => run(HOOK, ["-"], { env: node.env });
const applied = (node: SimNode) =>
  Deno.readTextFile(`${node.root}/sim/iptables.applied`).catch(() => "");

/** A node with tenant B (VM 2) deployed and its rules applied once. */
async function nodeWithB(defaults?: string): Promise<SimNode> {
  const node = await makeSimNode({ init: ["--ve-layout", "simfs"], defaults });
  const b = await deploy(node, 2, tenant(2, B_IP, "[80]\n*"));
  assert.equal(b.code, 0, b.stderr);
  return node;
}

const ATTACKS: { name: string; firewall: string; refused: RegExp; reaches?: string }[] = [
  {
    name: "[CUSTOM] opens the node itself",
    firewall: "[22]\n*\n[CUSTOM]\n-I INPUT 1 -j ACCEPT",
    refused:
      /^onevz: CONTEXT\/FIREWALL: line 3 \[CUSTOM\]: custom iptables lines .*FIREWALL_CUSTOM = "yes"/,
    reaches: "-I INPUT 1 -j ACCEPT",
  },
  {
    name: "[CUSTOM] COMMIT, *nat and a DNAT of the other tenant's IP",
    firewall: "[CUSTOM]\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n" +
      `-A PREROUTING -d ${B_IP} -p tcp --dport 80 -j DNAT --to-destination ${A_IP}`,
    refused: /CONTEXT\/FIREWALL: line 1 \[CUSTOM\]: .*other tenants' addresses/,
    reaches: `-A PREROUTING -d ${B_IP} -p tcp --dport 80 -j DNAT --to-destination ${A_IP}`,
  },
  {
    name: "[custom] in lower case",
    firewall: "[ custom ]\n-A FORWARD -j ACCEPT",
    refused: /CONTEXT\/FIREWALL: line 1 \[CUSTOM\]: custom iptables lines/,
  },
  {
    name: "a host name that does not resolve (vzfirewall dies for the node)",
    firewall: "[22]\nno-such-host.invalid",
    refused:
      /CONTEXT\/FIREWALL: line 2: "no-such-host\.invalid" is a host name: .*write the IPv4 address/,
  },
  {
    name: "an IPv6 line (looked up as a name)",
    firewall: "[22]\n2001:db8::1",
    refused: /CONTEXT\/FIREWALL: line 2: "2001:db8::1" is IPv6/,
  },
  {
    name: "iptables options smuggled into a port section",
    firewall: "[80 -j ACCEPT -i eth0]\n*",
    refused: /CONTEXT\/FIREWALL: line 1 \[80 -j ACCEPT -i eth0\]: "80-jACCEPT-ieth0" is not a port/,
  },
  {
    name: "a protocol iptables' multiport does not take",
    firewall: "[icmp:0]\n*",
    refused: /protocol "icmp" is not one of tcp, udp/,
  },
  {
    name: "a config key line for vzctl (IP_ADDRESS of the other tenant)",
    firewall: `[22]\nIP_ADDRESS=${B_IP}`,
    refused: /line 2: "IP_ADDRESS=10\.0\.0\.2" is not a source vzfirewall understands/,
  },
  {
    name: "shell code for scripts that source the config",
    firewall: "[22]\n$(touch /tmp/onevz-tenant-canary)",
    refused: /line 2: .* is not a source vzfirewall understands/,
  },
];

Deno.test("hostile tenant: each FIREWALL attack is refused at deploy; the other tenant's rules apply", async () => {
  const node = await nodeWithB();
  try {
    for (const a of ATTACKS) {
      const before = await node.snapshot();
      const r = await deploy(node, 1, tenant(1, A_IP, a.firewall));
      assert.equal(r.code, 3, `${a.name}: ${r.stderr}`);
      assert.match(r.stderr, a.refused, a.name);
      assert.equal(r.stderr.split("\n").filter((l) => l).length, 1, `${a.name}: one line`);
      assert.deepEqual(
        (await node.snapshot()).filter((p) => !p.includes("/vm/1/")),
        before.filter((p) => !p.includes("/vm/1/")),
        `${a.name}: nothing changed on the node`,
      );
      const h = await hook(node);
      assert.ok(
        h.code === 0,
        `${a.name}: the hook still works for the node: ${h.stdout}${h.stderr}`,
      );
      const rules = await applied(node);
      assert.ok(rules.includes(B_RULE + "\n"), `${a.name}: B's rule applied`);
      if (a.reaches) assert.ok(!rules.includes(a.reaches), `${a.name}: never applied`);
      assert.equal(await Deno.stat("/tmp/onevz-tenant-canary").catch(() => null), null);
    }
    figure("tenant-firewall", "attacks refused", ATTACKS.length);
  } finally {
    await node.cleanup();
  }
});

Deno.test("control: with FIREWALL_CUSTOM allowed, [CUSTOM] lines reach iptables verbatim", async () => {
  const holder = await makeSimNode();
  const defaults = `${holder.dir}/vmm_ssh_ovz.conf`;
  await Deno.writeTextFile(
    defaults,
    DEFAULTS.replace('NIC_MODEL   = "venet"', 'NIC_MODEL = "venet", FIREWALL_CUSTOM = "yes"'),
  );
  const node = await nodeWithB(defaults);
  try {
    for (const a of ATTACKS.filter((x) => x.reaches)) {
      const r = await deploy(node, 1, tenant(1, A_IP, a.firewall));
      assert.equal(r.code, 0, `${a.name}: ${r.stderr}`);
      assert.equal((await hook(node)).code, 0);
      assert.ok((await applied(node)).includes(a.reaches + "\n"), `${a.name}: applied verbatim`);
      assert.equal((await node.action("cancel", ["1001"])).code, 0);
    }
    // still refused with custom lines allowed: what vzctl or a shell would read
    const r = await deploy(
      node,
      1,
      tenant(1, A_IP, "[CUSTOM]\n-A INPUT -m comment --comment $(id) -j ACCEPT"),
    );
    assert.equal(r.code, 3);
    assert.match(r.stderr, /custom lines may not contain '=', '\$' \(other than \$THIS\)/);
  } finally {
    await node.cleanup();
    await holder.cleanup();
  }
});

Deno.test("control: an unresolvable name in any config stops vzfirewall for the whole node", async () => {
  const node = await nodeWithB();
  try {
    // what onevz refuses, written straight into a config: no container's rules apply
    await Deno.writeTextFile(
      `${node.root}/etc/vz/conf/1002.conf`,
      'FIREWALL="\n[22]\nno-such-host.invalid\n"\n',
      { append: true },
    );
    const h = await hook(node);
    assert.notEqual(h.code, 0);
    assert.match(h.stdout + h.stderr, /Cannot resolve no-such-host\.invalid/);
  } finally {
    await node.cleanup();
  }
});
