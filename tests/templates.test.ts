// deploy and the operator's templates on the simulator: the guest's boot hook and veth
// network configuration where each distribution reads them (checked by running what the
// guest's init runs), template mistakes warned on stderr, and beancounters on a VSwap node.
import assert from "node:assert/strict";
import { makeSimNode, makeTemplateTarball, REPO, run, type SimNode } from "./helpers/simnode.ts";

const fixture = (name: string) => Deno.readTextFileSync(`${REPO}/fixtures/templates/${name}`);

/** Debian's stock /etc/rc.local (initscripts): it ends in `exit 0`. */
const DEBIAN_RC_LOCAL = `#!/bin/sh -e
#
# rc.local
#
# This script is executed at the end of each multiuser runlevel.
# Make sure that the script will "exit 0" on success or any other
# value on error.
#
# By default this script does nothing.

exit 0
`;

/** A small OS template of one family: the files its boot reads, nothing that touches a host. */
async function guestTarball(family: "debian" | "ubuntu" | "centos"): Promise<Uint8Array> {
  const d = await Deno.makeTempDir({ prefix: "onevz-guest-" });
  const t = `${d}/t`;
  const files: Record<string, string> = family === "centos"
    ? {
      "etc/redhat-release": "CentOS release 6.10 (Final)\n",
      "etc/rc.d/rc.local": "#!/bin/sh\n# stock rc.local of the template\n",
      "etc/sysconfig/network-scripts/ifcfg-lo": "DEVICE=lo\nIPADDR=127.0.0.1\n",
    }
    : {
      [family === "debian" ? "etc/debian_version" : "etc/lsb-release"]: family === "debian"
        ? "6.0.10\n"
        : "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=12.04\n",
      "etc/rc.local": DEBIAN_RC_LOCAL,
      "etc/network/interfaces":
        "# The loopback network interface\nauto lo\niface lo inet loopback\n",
    };
  files["sbin/init"] = "#!/bin/sh\n";
  for (const [path, text] of Object.entries(files)) {
    await Deno.mkdir(`${t}/${path.replace(/\/[^/]+$/, "")}`, { recursive: true });
    await Deno.writeTextFile(`${t}/${path}`, text, { mode: path.includes("rc.") ? 0o755 : 0o644 });
  }
  await Deno.mkdir(`${t}/mnt`);
  const r = await run("tar", ["--numeric-owner", "-czf", `${d}/t.tgz`, "-C", t, "."]);
  assert.equal(r.code, 0, r.stderr);
  const bytes = await Deno.readFile(`${d}/t.tgz`);
  await Deno.remove(d, { recursive: true });
  return bytes;
}

/**
 * deploy's stderr without the vzfirewall warnings: every simulated node has vzfirewall on its
 * PATH, so deploy also warns about containers vzfirewall would close (tests/vzfirewall.test.ts).
 */
function templateWarnings(stderr: string): string {
  return stderr.split("\n").filter((l) => l !== "" && !l.includes("vzfirewall"))
    .map((l) => `${l}\n`).join("");
}

/** The TM's prolog: the OS image at R/disk.0 and the context directory at R/disk.1. */
async function prolog(node: SimNode, vmid: number, image: Uint8Array) {
  const images = `${node.vmDir}${vmid}/images`;
  await Deno.mkdir(`${images}/disk.1`, { recursive: true });
  await Deno.writeFile(`${images}/disk.0`, image);
  await Deno.writeTextFile(`${images}/disk.1/context.sh`, '# Context variables\nHOSTNAME="g"\n');
  // The operator's init.sh: it leaves a mark in the context directory.
  await Deno.writeTextFile(`${images}/disk.1/init.sh`, 'echo "init.sh ran" > /mnt/init-ran\n');
  return images;
}

/**
 * Run the container's boot script as its init would: only when executable (Debian's
 * /etc/init.d/rc.local and systemd's rc-local.service check that; Red Hat's rc runs
 * S99local → rc.local), with the container's /mnt at /mnt. A private user and mount
 * namespace (unshare -r -m) gives it that /mnt without privilege and without touching the
 * host's /mnt.
 */
async function bootAsGuest(priv: string, script: string) {
  const info = await Deno.stat(`${priv}${script}`);
  assert.ok((info.mode! & 0o111) !== 0, `${script} is executable (init skips it otherwise)`);
  return await run("unshare", [
    "-r",
    "-m",
    "sh",
    "-c",
    'mount --bind "$1/mnt" /mnt && exec "$1$2"',
    "sh",
    priv,
    script,
  ]);
}

interface Stanza {
  name: string;
  family: string;
  method: string;
  options: Record<string, string>;
}

/**
 * /etc/network/interfaces as ifupdown reads it: `#` comment lines, `auto` lines, `iface
 * <name> <family> <method>` stanzas whose option lines follow until the next stanza. ifupdown
 * refuses a second stanza for the same interface and family ("duplicate interface").
 */
function parseInterfaces(text: string): { auto: string[]; ifaces: Stanza[] } {
  const auto: string[] = [];
  const ifaces: Stanza[] = [];
  let current: Stanza | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const [word, ...rest] = line.split(/\s+/);
    if (word === "auto" || word.startsWith("allow-")) {
      auto.push(...rest);
      current = undefined;
    } else if (word === "iface") {
      const [name, family, method] = rest;
      assert.ok(
        !ifaces.some((s) => s.name === name && s.family === family),
        `duplicate interface ${name} ${family}`,
      );
      current = { name, family, method, options: {} };
      ifaces.push(current);
    } else if (["mapping", "source", "source-directory"].includes(word)) {
      current = undefined;
    } else {
      assert.ok(current, `option outside a stanza: ${line}`);
      current.options[word] = rest.join(" ");
    }
  }
  return { auto, ifaces };
}

for (const family of ["debian", "ubuntu"] as const) {
  Deno.test(`guests: ${family}: init.sh runs from /etc/rc.local, eth0 is configured in /etc/network/interfaces`, async () => {
    const node = await makeSimNode({ flavour: "vswap" });
    try {
      const doc = fixture(`guest-${family}.xml`);
      const vmid = family === "debian" ? 61 : 62;
      const images = await prolog(node, vmid, await guestTarball(family));
      const r = await node.action("deploy", [`${images}/deployment.0`], doc);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(templateWarnings(r.stderr), "", "a known distribution: no warning");
      const priv = `${images}/private`;
      // Nothing for Red Hat's paths in a Debian guest.
      for (const p of ["/etc/rc.d/rc.local", "/etc/sysconfig/network-scripts/ifcfg-eth0"]) {
        assert.equal(await Deno.stat(`${priv}${p}`).catch(() => null), null, p);
      }
      const rc = await Deno.readTextFile(`${priv}/etc/rc.local`);
      assert.ok(rc.startsWith(DEBIAN_RC_LOCAL.split("\nexit 0")[0]), "the stock script is kept");
      assert.ok(rc.endsWith("# onevz: OpenNebula context\nexit 0\n"), rc);
      const boot = await bootAsGuest(priv, "/etc/rc.local");
      assert.equal(boot.code, 0, boot.stderr);
      assert.equal(await Deno.readTextFile(`${priv}/mnt/init-ran`), "init.sh ran\n");

      const { auto, ifaces } = parseInterfaces(
        await Deno.readTextFile(`${priv}/etc/network/interfaces`),
      );
      assert.deepEqual(auto, ["lo", "eth0"]);
      assert.deepEqual(ifaces.map((s) => `${s.name} ${s.family} ${s.method}`), [
        "lo inet loopback",
        "eth0 inet static",
      ]);
      assert.deepEqual(ifaces[1].options, {
        address: `10.1.0.${vmid}`,
        netmask: "255.255.0.0",
        gateway: "10.1.0.1",
      });
    } finally {
      await node.cleanup();
    }
  });
}

Deno.test("guests: centos: init.sh runs from /etc/rc.d/rc.local, eth0 from its ifcfg file", async () => {
  const node = await makeSimNode({ flavour: "ubc" });
  try {
    const images = await prolog(node, 63, await guestTarball("centos"));
    const r = await node.action("deploy", [`${images}/deployment.0`], fixture("guest-centos.xml"));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(templateWarnings(r.stderr), "");
    const priv = `${images}/private`;
    const boot = await bootAsGuest(priv, "/etc/rc.d/rc.local");
    assert.equal(boot.code, 0, boot.stderr);
    assert.equal(await Deno.readTextFile(`${priv}/mnt/init-ran`), "init.sh ran\n");
    // network-scripts source ifcfg-eth0 with sh: what they would see.
    const seen = await run("sh", [
      "-c",
      '. "$1" && printf "%s %s %s %s %s" "$DEVICE" "$ONBOOT" "$IPADDR" "$NETMASK" "$GATEWAY"',
      "sh",
      `${priv}/etc/sysconfig/network-scripts/ifcfg-eth0`,
    ]);
    assert.equal(seen.stdout, "eth0 yes 10.1.0.63 255.255.0.0 10.1.0.1");
    assert.equal(await Deno.stat(`${priv}/etc/network/interfaces`).catch(() => null), null);
  } finally {
    await node.cleanup();
  }
});

Deno.test("guests: an OS template name no dist matches: deploy warns what it assumed and goes on", async () => {
  const node = await makeSimNode({ flavour: "ubc" });
  try {
    const images = await prolog(node, 63, await guestTarball("centos"));
    const doc = fixture("guest-centos.xml").replace("centos-6-x86_64", "mydistro-1-x86_64");
    const r = await node.action("deploy", [`${images}/deployment.0`], doc);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      templateWarnings(r.stderr),
      "onevz: deploy: warning: OS template mydistro-1-x86_64 matches no distribution in the " +
        "node's /etc/vz/dists (vzctl strips -suffixes: mydistro-1-x86_64.conf, mydistro-1.conf, " +
        "mydistro.conf), so vzctl uses dists/default; onevz assumes a Red Hat guest " +
        "(/etc/rc.d/rc.local, ifcfg files): name the template after its distribution (centos, " +
        "redhat, rhel, scientific, fedora, fedora-core, debian, ubuntu, e.g. debian-6.0-x86_64) " +
        'or set OSTEMPLATE = "<dist>-<version>-<arch>"\n',
    );
    // The node's own dists count: a config the operator added is found.
    await Deno.writeTextFile(`${node.root}/etc/vz/dists/mydistro.conf`, "");
    await node.tool("vzctl", ["stop", "1063"]);
    await node.tool("vzctl", ["destroy", "1063"]);
    const known = await node.action("deploy", [`${images}/deployment.1`], doc);
    assert.equal(known.code, 0, known.stderr);
    assert.match(
      known.stderr,
      /uses dists\/mydistro\.conf, a distribution onevz has no guest layout for/,
    );
  } finally {
    await node.cleanup();
  }
});

Deno.test("templates: deploy warns on stderr about misspelt attributes and goes on", async () => {
  const node = await makeSimNode({ flavour: "ubc" });
  try {
    const images = `${node.vmDir}45/images`;
    await Deno.mkdir(images, { recursive: true });
    await Deno.writeFile(`${images}/disk.0`, await makeTemplateTarball("bz2"));
    const doc = fixture("vps145.xml")
      .replace(
        /<CONTEXT>.*<\/CONTEXT>/s,
        "<CONTEXT><FIREWALLl><![CDATA[[22]]]></FIREWALLl></CONTEXT>",
      )
      .replace("<CPUUNITS>", "<CPUUNIT>").replace("</CPUUNITS>", "</CPUUNIT>")
      .replace("<ONBOOT>", "<KMEMSIZE><![CDATA[1:2]]></KMEMSIZE><ONBOOT>");
    const r = await node.action("deploy", [`${images}/deployment.0`], doc);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "1045\n");
    assert.deepEqual(templateWarnings(r.stderr).trim().split("\n"), [
      "onevz: deploy: warning: CONTEXT/FIREWALLL: did you mean CONTEXT/FIREWALL? (FIREWALLL is passed to context.sh as a plain variable; onevz acts on FIREWALL)",
      "onevz: deploy: warning: CPUUNIT is not an attribute OpenNebula or onevz reads: did you mean CPUUNITS?",
      'onevz: deploy: warning: KMEMSIZE is a beancounter and is ignored outside MEMORY: write it inside MEMORY = [ KMEMSIZE = "barrier:limit", … ]',
    ]);
  } finally {
    await node.cleanup();
  }
});

Deno.test("templates: on a VSwap node, UBC values get a RAM; no RAM at all is refused before anything runs", async () => {
  const node = await makeSimNode({ flavour: "vswap" });
  try {
    const images = `${node.vmDir}45/images`;
    await Deno.mkdir(images, { recursive: true });
    await Deno.writeFile(`${images}/disk.0`, await makeTemplateTarball("bz2"));
    const vps145 = fixture("vps145.xml").replace(/<CONTEXT>.*<\/CONTEXT>/s, "");
    const r = await node.action("deploy", [`${images}/deployment.0`], vps145);
    assert.equal(r.code, 0, r.stderr);
    const conf = await Deno.readTextFile(`${node.root}/etc/vz/conf/1045.conf`);
    assert.match(conf, /^PHYSPAGES="0:65536"$/m, "RAM = PRIVVMPAGES barrier (256 MB)");
    assert.match(conf, /^SWAPPAGES="0:262144"$/m);
    assert.match(conf, /^KMEMSIZE="14372700:14790164"$/m);
    await node.tool("vzctl", ["stop", "1045"]);
    await node.tool("vzctl", ["destroy", "1045"]);

    const noRam = vps145.replace(
      /<MEMORY>.*<\/MEMORY>/s,
      "<MEMORY><KMEMSIZE><![CDATA[14372700:14790164]]></KMEMSIZE><PHYSPAGES><![CDATA[0:unlimited]]></PHYSPAGES></MEMORY>",
    );
    const before = await node.snapshot();
    // deploy reads the node first, `vzctl --version` included (create's --layout): only calls
    // that could change the node count.
    const acting = async () => (await node.calls()).filter((c) => !c.argv.includes("--version"));
    const calls = (await acting()).length;
    const refused = await node.action("deploy", [`${images}/deployment.1`], noRam);
    assert.equal(refused.code, 3);
    assert.equal(
      refused.stderr,
      "onevz: MEMORY: on a VSwap node the RAM is PHYSPAGES' limit, and these beancounters set " +
        "none (PHYSPAGES 0:unlimited, no PRIVVMPAGES): write MEMORY = <MB>, or MEMORY = [ " +
        'PHYSPAGES = "0:512M", SWAPPAGES = "0:1G", … ]\n',
    );
    assert.deepEqual(await node.snapshot(), before);
    assert.equal((await acting()).length, calls, "no OpenVZ tool acted on the node");
  } finally {
    await node.cleanup();
  }
});
