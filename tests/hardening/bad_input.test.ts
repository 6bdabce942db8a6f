// Bad input at deploy's boundary: every family of malformed, oversized, mistyped, out-of-range
// or hostile template is refused with one stderr line naming the attribute, exit 3, and the
// simulated node is left exactly as it was (files and contents) with no vzctl/vzlist/vzmigrate
// call in the simulator's log. A bounded batch runs real `deploy` processes; the pure boundary
// (specFromXml) is then driven through thousands of variants of the same families.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { specFromXml } from "../../src/actions/vmm/deploy.ts";
import { parseDriverConfig } from "../../src/one/config.ts";
import { makeSimNode, makeTemplateTarball, REPO, type SimNode } from "../helpers/simnode.ts";
import {
  type Attr,
  BASE,
  CANARY,
  dangerous,
  figure,
  HOSTILE,
  planViolations,
  total,
  verdict,
  withAttr,
  xmlOf,
} from "./figures.ts";

const CONFIG = parseDriverConfig(
  await Deno.readTextFile(`${REPO}/fixtures/templates/vmm_ssh_ovz.conf`),
  "vmm_ssh_ovz.conf",
);
const GOOD = xmlOf(BASE);
const noCtx = (a: readonly Attr[]) => a.filter(([n]) => n !== "CONTEXT");

interface Case {
  family: string;
  doc: string | Uint8Array;
  /** Text the one stderr line must contain (the attribute and, where useful, the rule). */
  names: string;
  /** 3 (refused at the boundary) unless said otherwise. */
  code?: number;
  vmid?: number;
}

const set = (path: string, v: string | undefined, base: readonly Attr[] = BASE) =>
  xmlOf(withAttr(base, path, v));

/** Hostile attributes: the path, the label in the message, and whether it must be refused. */
const HOSTILE_ATTRS: { path: string; label: string; mode: "reject" | "inert" }[] = [
  { path: "CONTEXT/HOSTNAME", label: "CONTEXT/HOSTNAME", mode: "reject" },
  { path: "CONTEXT/NAMESERVER", label: "CONTEXT/NAMESERVER", mode: "reject" },
  { path: "NIC/IP", label: "NIC 0/IP", mode: "reject" },
  { path: "NIC/MAC", label: "NIC 0/MAC", mode: "reject" },
  { path: "NIC/BRIDGE", label: "NIC 0/BRIDGE", mode: "reject" },
  { path: "CONTEXT/FILES", label: "CONTEXT/FILES", mode: "inert" },
  { path: "CONTEXT/FIREWALL", label: "CONTEXT/FIREWALL", mode: "inert" },
  { path: "RAW/DATA", label: "RAW 0/DATA", mode: "reject" },
  { path: "DISK/IMAGE", label: "DISK 0/IMAGE", mode: "reject" },
  { path: "DISK/SOURCE", label: "DISK 0/SOURCE", mode: "inert" },
  { path: "CONTEXT/NETMASK", label: "CONTEXT/NETMASK", mode: "reject" },
  { path: "CONTEXT/GATEWAY", label: "CONTEXT/GATEWAY", mode: "reject" },
  { path: "CPUMASK", label: "CPUMASK", mode: "reject" },
  { path: "CPULIMIT", label: "CPULIMIT", mode: "reject" },
  { path: "DISKSPACE", label: "DISKSPACE", mode: "reject" },
  { path: "MEMORY/KMEMSIZE", label: "MEMORY/KMEMSIZE", mode: "reject" },
  { path: "VMID", label: "VMID", mode: "reject" },
  { path: "ONBOOT", label: "ONBOOT", mode: "reject" },
  { path: "DISK/DISK_ID", label: "DISK 0/DISK_ID", mode: "reject" },
  { path: "NAME", label: "NAME", mode: "inert" },
  { path: "NIC/NETWORK", label: "NIC 0/NETWORK", mode: "inert" },
  { path: "CONTEXT/USERDATA", label: "CONTEXT/USERDATA", mode: "inert" },
  { path: "DISK/SAVE_AS", label: "DISK 0/SAVE_AS", mode: "inert" },
];

/** A hostile value as the attribute would really carry it (IMAGE replaces SOURCE). */
function hostileDoc(path: string, value: string): string {
  const base = path === "DISK/IMAGE" ? withAttr(BASE, "DISK/SOURCE", undefined) : BASE;
  return xmlOf(withAttr(base, path, value));
}

// --- the subprocess batch -----------------------------------------------------------------

const big = `<TEMPLATE><VMID>45</VMID><NAME>${"x".repeat(4 * 1024 * 1024)}</NAME></TEMPLATE>`;
const CASES: Case[] = [
  // malformed / truncated XML
  ...[
    "<TEMPLATE><VMID>45",
    "<TEMPLATE>",
    "not xml at all",
    "<TEMPLATE></VM>",
    "<TEMPLATE/><TEMPLATE/>",
    '<!DOCTYPE t [<!ENTITY a "aaaa">]><TEMPLATE><NAME>&a;</NAME></TEMPLATE>',
    "<FOO><VMID>45</VMID></FOO>",
    "<TEMPLATE><NAME>a & b</NAME></TEMPLATE>",
  ].map((doc) => ({ family: "malformed-xml", doc, names: "template XML" })),
  ...[0.25, 0.5, 0.75, 0.999].map((f) => ({
    family: "truncated-xml",
    doc: GOOD.slice(0, Math.floor(GOOD.length * f)),
    names: "template XML",
  })),
  { family: "empty-stdin", doc: "", names: "empty deployment document" },
  { family: "empty-stdin", doc: "  \n\t", names: "template XML: empty input" },
  { family: "empty-stdin", doc: "\uFEFF", names: "template XML: empty input" },
  { family: "oversized", doc: big, names: "limit" },
  { family: "not-utf8", doc: new Uint8Array([0x3c, 0xff, 0xfe, 0x3e]), names: "UTF-8" },
  // wrong types
  { family: "wrong-types", doc: set("VMID", "forty-five"), names: "VMID" },
  { family: "wrong-types", doc: set("MEMORY", "lots"), names: "MEMORY" },
  { family: "wrong-types", doc: set("CPU", "fast"), names: "CPU" },
  { family: "wrong-types", doc: set("CPUS", "2.5"), names: "CPUS" },
  { family: "wrong-types", doc: set("ONBOOT", "maybe"), names: "ONBOOT" },
  { family: "wrong-types", doc: xmlOf([...BASE, ["NIC", "eth0"]]), names: "NIC" },
  { family: "wrong-types", doc: set("CONTEXT", "text", noCtx(BASE)), names: "CONTEXT" },
  { family: "wrong-types", doc: xmlOf([["CPUUNITS", { A: "1" }], ...BASE]), names: "CPUUNITS" },
  // negative / overflowing numbers
  { family: "bad-numbers", doc: set("VMID", "-1"), names: "VMID" },
  { family: "bad-numbers", doc: set("VMID", "99999999999999999999"), names: "VMID" },
  { family: "bad-numbers", doc: set("VMID", "2147483647"), names: "VMID" },
  { family: "bad-numbers", doc: set("CPUUNITS", "0"), names: "CPUUNITS" },
  { family: "bad-numbers", doc: set("CPUUNITS", "500001"), names: "CPUUNITS" },
  { family: "bad-numbers", doc: set("CPULIMIT", "101%"), names: "CPULIMIT" },
  { family: "bad-numbers", doc: set("MEMORY/KMEMSIZE", "-1:-1"), names: "MEMORY/KMEMSIZE" },
  {
    family: "bad-numbers",
    doc: set("MEMORY/KMEMSIZE", "99999999999999999999999:1"),
    names: "MEMORY/KMEMSIZE",
  },
  { family: "bad-numbers", doc: set("DISKSPACE", "-5"), names: "DISKSPACE" },
  {
    family: "bad-numbers",
    doc: xmlOf(
      withAttr(BASE, "DISK", undefined).concat([
        ["DISK", { DISK_ID: "0", IMAGE: "centos-5-x86" }],
        ["DISK", { DISK_ID: "1", TYPE: "swap", SIZE: "-1024" }],
      ]),
    ),
    names: "DISK 1/SIZE",
  },
  // unknown units
  { family: "unknown-units", doc: set("MEMORY", "512X", noCtx(BASE)), names: "MEMORY" },
  { family: "unknown-units", doc: set("MEMORY/KMEMSIZE", "14Q:15Q"), names: "MEMORY/KMEMSIZE" },
  { family: "unknown-units", doc: set("DISKSPACE", "10P"), names: "DISKSPACE" },
  { family: "unknown-units", doc: set("RAW/DATA", "--ram 512Z"), names: "RAW 0/DATA" },
  { family: "unknown-units", doc: set("DISKINODES", "200k"), names: "DISKINODES" },
  // disks
  { family: "no-os-disk", doc: xmlOf(withAttr(BASE, "DISK", undefined)), names: "DISK" },
  {
    family: "no-os-disk",
    doc: xmlOf([
      ...withAttr(BASE, "DISK", undefined),
      ["DISK", { TYPE: "swap", SIZE: "10" }],
    ]),
    names: "DISK",
  },
  {
    family: "no-os-disk",
    doc: xmlOf([...withAttr(BASE, "DISK", undefined), ["DISK", { TARGET: "hda" }]]),
    names: "DISK 0",
  },
  {
    family: "two-os-disks",
    doc: xmlOf([...BASE, ["DISK", { DISK_ID: "2", IMAGE: "centos-5-x86" }]]),
    names: "DISK",
  },
  {
    family: "two-os-disks",
    doc: xmlOf([...BASE, ["DISK", { DISK_ID: "2", TYPE: "cdrom", IMAGE: "x" }]]),
    names: "DISK 2",
  },
  // unknown RAW options
  ...[
    "--private /tmp/elsewhere",
    "--root /",
    "--save",
    "--applyconfig basic",
    "--bogus 1",
    "reboot",
    "--numproc",
    "--description 'unterminated",
    "--hostname -x",
  ].map((data) => ({ family: "raw-options", doc: set("RAW/DATA", data), names: "RAW 0/DATA" })),
  // hostile strings, three per attribute that must refuse them
  ...HOSTILE_ATTRS.filter((a) => a.mode === "reject").flatMap((a) =>
    [HOSTILE[0], HOSTILE[8], HOSTILE[11]].map((h) => ({
      family: `hostile:${a.path}`,
      doc: hostileDoc(a.path, h),
      names: a.label,
    }))
  ),
  // accepted as inert data; VM 46 has no OS image, so deploy stops after looking at the node
  ...[HOSTILE[1], HOSTILE[2], HOSTILE[4]].map((h) => ({
    family: "hostile:NAME(inert,exit 1)",
    doc: xmlOf(withAttr(withAttr(BASE, "VMID", "46"), "NAME", h)),
    names: "OS image for DISK 0 not found",
    code: 1,
    vmid: 46,
  })),
];

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
      else {
        const h = createHash("sha256").update(await Deno.readFile(p)).digest("hex");
        state.set(p, h);
      }
    }
  };
  await walk(node.dir);
  return state;
}

async function pool<T, R>(items: T[], width: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]);
      }
    }),
  );
  return out;
}

const TOOLS = new Set(["vzctl", "vzlist", "vzmigrate", "vzfirewall"]);

Deno.test("bad input: real deploy runs refuse every family, one line, nothing run or written", async () => {
  assert.ok(CASES.length <= 110, `bounded batch (${CASES.length})`);
  const node = await makeSimNode({ flavour: "ubc" });
  try {
    const images = `${node.vmDir}45/images`;
    await Deno.mkdir(images, { recursive: true });
    await Deno.writeFile(`${images}/disk.0`, await makeTemplateTarball("bz2"));
    const before = await nodeState(node);
    const callsBefore = (await node.calls()).length;
    const results = await pool(
      CASES,
      8,
      (c) => node.action("deploy", [`${node.vmDir}${c.vmid ?? 45}/images/deployment.0`], c.doc),
    );
    const problems: string[] = [];
    CASES.forEach((c, i) => {
      const r = results[i];
      const lines = r.stderr.split("\n").filter((l) => l !== "");
      const what = `${c.family} ${JSON.stringify(String(c.doc).slice(0, 60))}`;
      if (r.code !== (c.code ?? 3)) problems.push(`${what}: exit ${r.code} ${r.stderr}`);
      if (lines.length !== 1) problems.push(`${what}: ${lines.length} stderr lines`);
      if (!r.stderr.includes(c.names)) problems.push(`${what}: '${c.names}' not in ${r.stderr}`);
      if (r.stdout !== "") problems.push(`${what}: stdout ${r.stdout}`);
    });
    assert.deepEqual(problems, []);
    // Nothing ran: the only OpenVZ call is the inert-NAME VMs' look at the node (deploy's step
    // 2 asks vzctl its version, for create's --layout, before it finds no OS image).
    const seen = (await node.calls()).slice(callsBefore).filter((c) => TOOLS.has(c.tool));
    const looks = seen.filter((c) => c.tool === "vzctl" && c.argv.join(" ") === "--version");
    assert.ok(looks.length <= CASES.filter((c) => c.code === 1).length, JSON.stringify(looks));
    const calls = seen.filter((c) => !looks.includes(c));
    assert.deepEqual(calls, [], "no OpenVZ tool ran");
    assert.deepEqual(await nodeState(node), before, "the node is unchanged, file by file");
    assert.equal(await Deno.stat(CANARY).then(() => true, () => false), false);
    const families = new Map<string, number>();
    for (const c of CASES) {
      const f = c.family.startsWith("hostile:") && c.code === undefined
        ? "hostile-strings"
        : c.family;
      families.set(f, (families.get(f) ?? 0) + 1);
    }
    for (const [f, n] of families) figure("bad-input(deploy runs)", f, n, calls.length);
    total("bad-input(deploy runs)");
  } finally {
    await node.cleanup();
  }
});

// --- the pure boundary, for breadth ---------------------------------------------------------

function refuses(doc: string, label: string, family: string, problems: string[]) {
  const v = verdict(() => specFromXml(doc, CONFIG));
  if (v.ok) problems.push(`${family}: accepted ${doc.slice(0, 40)} (${label})`);
  else if (!v.message.includes(label)) problems.push(`${family}: '${label}' not in ${v.message}`);
}

Deno.test("bad input: the boundary (specFromXml) over thousands of variants", () => {
  const problems: string[] = [];
  const count = new Map<string, number>();
  const tally = (f: string) => count.set(f, (count.get(f) ?? 0) + 1);

  // Every proper prefix of a valid document is refused.
  for (let n = 0; n < GOOD.length; n++) {
    refuses(GOOD.slice(0, n), n === 0 ? "empty" : "template XML", "truncated-xml", problems);
    tally("truncated-xml");
  }
  // Random byte damage inside the markup: refused as XML or as a value, never a crash.
  let seed = 42;
  const rnd = (k: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % k;
  for (let i = 0; i < 600; i++) {
    const at = rnd(GOOD.length);
    const junk = ["<", ">", "&", "]]>", "</", "\0", "<!--", '"'][rnd(8)];
    const doc = GOOD.slice(0, at) + junk + GOOD.slice(at + rnd(3));
    const v = verdict(() => specFromXml(doc, CONFIG));
    if (v.ok) {
      const bad = planViolations(specFromXml(doc, CONFIG));
      if (bad.length) problems.push(`malformed-xml: accepted with ${bad.join("; ")}`);
    }
    tally("malformed-xml");
  }
  // Numbers: negative, huge, fractional, exponent, hex, empty units.
  const numbers = [
    "-1",
    "-0",
    "1e3",
    "0x10",
    "1.5",
    "99999999999999999999",
    "18446744073709551616",
    "NaN",
    "Infinity",
    "+5",
    "5 5",
    "٣",
  ];
  const numeric: [string, string][] = [
    ["VMID", "VMID"],
    ["CPUUNITS", "CPUUNITS"],
    ["CPUS", "CPUS"],
    ["VCPU", "VCPU"],
    ["CPU", "CPU"],
    ["MEMORY/KMEMSIZE", "MEMORY/KMEMSIZE"],
    ["MEMORY/PRIVVMPAGES", "MEMORY/PRIVVMPAGES"],
    ["DISKSPACE", "DISKSPACE"],
    ["DISKINODES", "DISKINODES"],
    ["DISK/DISK_ID", "DISK 0/DISK_ID"],
    ["CPULIMIT", "CPULIMIT"],
  ];
  for (const [path, label] of numeric) {
    for (const n of numbers) {
      if (n === "1.5" && (path === "CPU" || path === "DISKSPACE")) continue; // valid there
      refuses(set(path, n), label, "bad-numbers", problems);
      tally("bad-numbers");
    }
  }
  refuses(set("MEMORY", "99999999999999999999", noCtx(BASE)), "MEMORY", "bad-numbers", problems);
  tally("bad-numbers");
  // Units.
  for (const u of ["X", "Q", "Z", "E", "KB", "MiB", "kk", "m2"]) {
    refuses(set("MEMORY/KMEMSIZE", `14${u}:15${u}`), "MEMORY/KMEMSIZE", "unknown-units", problems);
    refuses(set("DISKSPACE", `10${u}`), "DISKSPACE", "unknown-units", problems);
    refuses(set("RAW/DATA", `--ram 512${u}`), "RAW 0/DATA", "unknown-units", problems);
    refuses(set("MEMORY", `512${u}`, noCtx(BASE)), "MEMORY", "unknown-units", problems);
    for (let k = 0; k < 4; k++) tally("unknown-units");
  }
  // RAW options that are not in the table, or that onevz keeps for itself.
  for (
    const opt of [
      "private",
      "root",
      "save",
      "force",
      "setmode",
      "skiplock",
      "quiet",
      "verbose",
      "applyconfig",
      "ostemplate",
      "config",
      "userpasswd-x",
      "",
      "-",
      "help",
    ]
  ) {
    refuses(set("RAW/DATA", `--${opt} x`), "RAW 0/DATA", "raw-options", problems);
    tally("raw-options");
  }
  // Hostile strings: whole value, and glued before and after a valid value.
  for (const a of HOSTILE_ATTRS) {
    const valid = (() => {
      const i = BASE.find(([n]) => n === a.path.split("/")[0]);
      const v = i?.[1];
      return typeof v === "string" ? v : v?.[a.path.split("/")[1]] ?? "x";
    })();
    for (const h of HOSTILE) {
      for (const value of [h, `${valid}${h}`, `${h}${valid}`]) {
        const doc = hostileDoc(a.path, value);
        const v = verdict(() => specFromXml(doc, CONFIG));
        tally(`hostile:${a.path}`);
        if (!v.ok) {
          if (!v.message.includes(a.label) && !v.message.includes(`XML: ${a.path} `)) {
            problems.push(`hostile:${a.path}: '${a.label}' not in ${v.message}`);
          }
          continue;
        }
        if (a.mode === "reject" && dangerous(value)) {
          problems.push(`hostile:${a.path}: accepted ${JSON.stringify(value)}`);
        }
        const bad = planViolations(specFromXml(doc, CONFIG));
        if (bad.length) problems.push(`hostile:${a.path} ${JSON.stringify(value)}: ${bad}`);
      }
    }
  }
  assert.deepEqual(problems, []);
  const byFamily = new Map<string, number>();
  for (const [f, n] of count) {
    const k = f.startsWith("hostile:") ? "hostile-strings" : f;
    byFamily.set(k, (byFamily.get(k) ?? 0) + n);
  }
  for (const [f, n] of byFamily) figure("bad-input(boundary)", f, n);
  console.log(`figures: bad-input(boundary) over ${HOSTILE_ATTRS.length} attributes`);
  total("bad-input(boundary)");
});
