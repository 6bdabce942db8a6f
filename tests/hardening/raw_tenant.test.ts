// A hostile tenant's RAW (issue 11 §1): options that hand the container the node, and resource
// options that loosen what CPU/VCPU/MEMORY/DISK gave, in a VM scheduled as 0.1 CPU / 64 MB.
// Each is a real deploy on a simulated node: refused before anything runs, the node unchanged,
// one stderr line naming the attribute, the option and the exact ONEVZ setting that would allow
// it. The same option given straight to the simulator's vzctl succeeds (so the refusal is
// onevz's), and with that setting in the defaults file the deploy applies it.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { run } from "../../fixtures/oned/run.ts";
import { DENO, makeSimNode, makeTemplateTarball, REPO, type SimNode } from "../helpers/simnode.ts";
import { type Attr, figure, total, xmlOf } from "./figures.ts";

interface Attack {
  /** RAW DATA the tenant writes. */
  data: string;
  /** The setting the refusal must name, and what it must say to add there. */
  setting: "RAW_ALLOW" | "RAW_LOOSEN";
  entry: string;
  /** What the container's config holds once the operator allows it. */
  stored: RegExp;
}

const ATTACKS: Attack[] = [
  ...["sys_module", "sys_rawio", "sys_admin", "net_admin"].map((cap) => ({
    data: `--capability ${cap}:on`,
    setting: "RAW_ALLOW" as const,
    entry: `capability=${cap}:on`,
    stored: new RegExp(`^CAPABILITY="${cap.toUpperCase()}:on"$`, "m"),
  })),
  // a host disk (sda is b:8:0), /dev/mem (c:1:1) by number and by name
  {
    data: "--devices b:8:0:rw",
    setting: "RAW_ALLOW",
    entry: "devices=b:8:0:rw",
    stored: /^DEVICES="b:8:0:rw "$/m,
  },
  {
    data: "--devices c:1:1:rw",
    setting: "RAW_ALLOW",
    entry: "devices=c:1:1:rw",
    stored: /^DEVICES="c:1:1:rw "$/m,
  },
  {
    data: "--devnodes mem:rw",
    setting: "RAW_ALLOW",
    entry: "devnodes=mem:rw",
    stored: /^DEVNODES="mem:rw "$/m,
  },
  // another tenant's address, the operator's bridge
  {
    data: "--ipadd 10.0.0.99",
    setting: "RAW_ALLOW",
    entry: "ipadd=10.0.0.99",
    stored: /^IP_ADDRESS="10\.0\.1\.\d+ 10\.0\.0\.99"$/m,
  },
  {
    data: "--netif_add eth1,,,,br-admin",
    setting: "RAW_ALLOW",
    entry: "netif_add=br-admin",
    stored: /^NETIF="ifname=eth1,bridge=br-admin,/m,
  },
  {
    data: "--netfilter full",
    setting: "RAW_ALLOW",
    entry: "netfilter=full",
    stored: /^NETFILTER="full"$/m,
  },
  {
    data: "--iptables iptable_nat",
    setting: "RAW_ALLOW",
    entry: "iptables=iptable_nat",
    stored: /^IPTABLES="ip_tables ip_conntrack iptable_nat "$/m,
  },
  ...["sysfs", "nfsd", "bridge", "ipgre"].map((f) => ({
    data: `--features ${f}:on`,
    setting: "RAW_ALLOW" as const,
    entry: `features=${f}:on`,
    stored: new RegExp(`^FEATURES="${f}:on"$`, "m"),
  })),
  {
    data: "--netdev_add eth0",
    setting: "RAW_ALLOW",
    entry: "netdev_add=eth0",
    stored: /^NETDEV="eth0"$/m,
  },
  // resources: unlimited beancounters, huge CPU shares, all the node's CPUs
  {
    data: "--privvmpages unlimited",
    setting: "RAW_LOOSEN",
    entry: "privvmpages",
    stored: /^PRIVVMPAGES="unlimited"$/m,
  },
  {
    data: "--kmemsize unlimited",
    setting: "RAW_LOOSEN",
    entry: "kmemsize",
    stored: /^KMEMSIZE="unlimited"$/m,
  },
  {
    data: "--numproc unlimited",
    setting: "RAW_LOOSEN",
    entry: "numproc",
    stored: /^NUMPROC="unlimited"$/m,
  },
  {
    data: "--oomguarpages 999999999:unlimited",
    setting: "RAW_LOOSEN",
    entry: "oomguarpages",
    stored: /^OOMGUARPAGES="999999999:unlimited"$/m,
  },
  {
    data: "--cpuunits 500000",
    setting: "RAW_LOOSEN",
    entry: "cpuunits",
    stored: /^CPUUNITS="500000"$/m,
  },
  { data: "--cpus 4096", setting: "RAW_LOOSEN", entry: "cpus", stored: /^CPUS="4096"$/m },
  { data: "--cpulimit 0", setting: "RAW_LOOSEN", entry: "cpulimit", stored: /^CPULIMIT="0"$/m },
  {
    data: "--cpulimit 100%",
    setting: "RAW_LOOSEN",
    entry: "cpulimit",
    stored: /^CPULIMIT="400"$/m,
  },
  { data: "--cpumask 0-3", setting: "RAW_LOOSEN", entry: "cpumask", stored: /^CPUMASK="0-3"$/m },
  {
    data: "--diskspace 100G:100G",
    setting: "RAW_LOOSEN",
    entry: "diskspace",
    stored: /^DISKSPACE="104857600:104857600"$/m,
  },
  {
    data: "--diskinodes 90000000",
    setting: "RAW_LOOSEN",
    entry: "diskinodes",
    stored: /^DISKINODES="90000000:90000000"$/m,
  },
];

/** Escapes no setting allows: device names that leave /dev. */
const NEVER = ["--devnodes ../dev/mem:rw", "--devnodes /dev/mem:rw", "--devnodes net/../mem:rw"];

const FIRST_VMID = 300;

/** A VM scheduled as 0.1 CPU / 1 VCPU / 64 MB with a 1 GB quota, plus the tenant's RAW. */
function tenantVm(vmid: number, data: string): string {
  const attrs: Attr[] = [
    ["VMID", String(vmid)],
    ["NAME", `tenant-${vmid}`],
    ["DISK", { DISK_ID: "0", SOURCE: "/srv/cloud/one/centos-5-x86.tar.bz2" }],
    ["CPU", "0.1"],
    ["VCPU", "1"],
    ["MEMORY", "64"],
    ["CPUMASK", "0"],
    ["DISKSPACE", "1G:1.1G"],
    ["DISKINODES", "100000:110000"],
    ["NIC", { IP: `10.0.1.${vmid - FIRST_VMID + 1}`, NETWORK: "Tenants" }],
    ["RAW", { TYPE: "ovz", DATA: data }],
  ];
  return xmlOf(attrs);
}

async function nodeState(node: SimNode): Promise<Map<string, string>> {
  const state = new Map<string, string>();
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (p === join(node.root, "proc") || p === join(node.root, "sim")) continue;
      if (e.isDirectory) {
        state.set(p + "/", "dir");
        await walk(p);
      } else if (e.isSymlink) state.set(p, `-> ${await Deno.readLink(p)}`);
      else state.set(p, createHash("sha256").update(await Deno.readFile(p)).digest("hex"));
    }
  };
  await walk(node.dir);
  return state;
}

async function pool<T, R>(items: T[], width: number, fn: (t: T, i: number) => Promise<R>) {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }));
  return out;
}

const TOOLS = new Set(["vzctl", "vzlist", "vzmigrate", "vzfirewall"]);

function deploy(node: SimNode, vmid: number, data: string, defaults: string) {
  return run(
    DENO,
    [
      "run",
      "-A",
      "--quiet",
      `${REPO}/main.ts`,
      "deploy",
      `${node.vmDir}${vmid}/images/deployment.0`,
    ],
    { env: { ...node.env, ONEVZ_DEFAULTS: defaults }, stdin: tenantVm(vmid, data) },
  );
}

Deno.test("hostile tenant RAW: refused by default, node untouched; applied once the operator allows it", async () => {
  const node = await makeSimNode({ flavour: "ubc" });
  const cases = [...ATTACKS.map((a) => a.data), ...NEVER];
  try {
    // The node has /dev/mem (a character device) for --devnodes.
    await Deno.mkdir(`${node.root}/dev`, { recursive: true });
    await Deno.symlink("/dev/null", `${node.root}/dev/mem`);
    const tarball = await makeTemplateTarball("bz2");
    for (let i = 0; i < cases.length; i++) {
      const images = `${node.vmDir}${FIRST_VMID + i}/images`;
      await Deno.mkdir(images, { recursive: true });
      await Deno.writeFile(`${images}/disk.0`, tarball);
    }
    const stock = `${REPO}/fixtures/templates/vmm_ssh_ovz.conf`;

    // 1. The stock defaults file: every attack refused before anything runs.
    const before = await nodeState(node);
    const callsBefore = (await node.calls()).length;
    const refused = await pool(cases, 4, (data, i) => deploy(node, FIRST_VMID + i, data, stock));
    const problems: string[] = [];
    refused.forEach((r, i) => {
      const what = JSON.stringify(cases[i]);
      const lines = r.stderr.split("\n").filter((l) => l !== "");
      if (r.code !== 3) problems.push(`${what}: exit ${r.code} ${r.stderr}`);
      if (lines.length !== 1 || r.stdout !== "") problems.push(`${what}: ${r.stdout}${r.stderr}`);
      const option = cases[i].split(" ")[0];
      if (!r.stderr.includes("RAW 0/DATA") || !r.stderr.includes(option)) {
        problems.push(`${what}: attribute or option not named: ${r.stderr}`);
      }
      const a = ATTACKS[i];
      if (a && !r.stderr.includes(`add "${a.entry}" to ONEVZ/${a.setting} in vmm_ssh_ovz.conf`)) {
        problems.push(`${what}: the setting ${a.setting} ${a.entry} is not named: ${r.stderr}`);
      }
    });
    assert.deepEqual(problems, []);
    const calls = (await node.calls()).slice(callsBefore).filter((c) => TOOLS.has(c.tool));
    assert.deepEqual(calls, [], "no OpenVZ tool ran");
    assert.deepEqual(await nodeState(node), before, "the node is unchanged, file by file");
    figure("raw-tenant", "refused(default)", cases.length, calls.length);

    // 2. The simulator itself takes each option (the refusal above was onevz's), on a config
    // like deploy's (simfs: a config without VE_LAYOUT takes vz.conf's ploop, which this
    // simulated kernel lacks, and --diskspace would fail for that).
    for (const [i, a] of ATTACKS.entries()) {
      const ctid = String(9000 + i);
      await Deno.writeTextFile(`${node.root}/etc/vz/conf/${ctid}.conf`, 'VE_LAYOUT="simfs"\n');
      const r = await node.tool("vzctl", ["set", ctid, ...a.data.split(" "), "--save"]);
      assert.equal(r.code, 0, `${a.data}: ${r.stderr}`);
      await Deno.remove(`${node.root}/etc/vz/conf/${ctid}.conf`);
    }

    // 3. With the setting the message named, the same deploy applies the option.
    const dir = await Deno.makeTempDir({ prefix: "onevz-raw-allow-" });
    try {
      const applied = await pool(ATTACKS, 4, async (a, i) => {
        const file = `${dir}/${i}.conf`;
        await Deno.writeTextFile(file, `ONEVZ = [ ${a.setting} = "${a.entry}" ]\n`);
        return deploy(node, FIRST_VMID + i, a.data, file);
      });
      const wrong: string[] = [];
      for (const [i, a] of ATTACKS.entries()) {
        const r = applied[i];
        if (r.code !== 0) {
          wrong.push(`${a.data}: exit ${r.code} ${r.stderr}`);
          continue;
        }
        const conf = await Deno.readTextFile(
          `${node.root}/etc/vz/conf/${1000 + FIRST_VMID + i}.conf`,
        );
        if (!a.stored.test(conf)) wrong.push(`${a.data}: ${a.stored} not in\n${conf}`);
      }
      assert.deepEqual(wrong, []);
      console.log(
        `figures: raw-tenant applied once allowed: ${ATTACKS.length} of ${ATTACKS.length}`,
      );

      // 4. Device names that leave /dev stay refused whatever the operator allows.
      const file = `${dir}/devnodes.conf`;
      await Deno.writeTextFile(file, 'ONEVZ = [ RAW_ALLOW = "devnodes" ]\n');
      for (const [k, data] of NEVER.entries()) {
        const r = await deploy(node, FIRST_VMID + ATTACKS.length + k, data, file);
        assert.equal(r.code, 3, `${data}: ${r.stderr}`);
        assert.match(r.stderr, /^onevz: RAW 0\/DATA: --devnodes .*no \., \.\./);
      }
      figure("raw-tenant", "refused(even when allowed)", NEVER.length);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
    total("raw-tenant");
  } finally {
    await node.cleanup();
  }
});
