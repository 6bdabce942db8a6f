/**
 * The hardening figures: each hardening test appends how many bad inputs of a family it tried
 * and how many of them ran a tool or changed the node (always 0 when the test passes), and the
 * line is printed at once so the suite output carries it:
 *   figures: bad-input <family> <n> tried, 0 executed
 */
import { InvalidInputError } from "../../src/cli/errors.ts";
import type { VmSpec } from "../../src/one/spec.ts";
import { findSetOption } from "../../src/ovz/options.ts";
import { type DeployPlan, planDeploy } from "../../src/ovz/plan.ts";

export interface Figure {
  group: string;
  family: string;
  tried: number;
  executed: number;
}

const all: Figure[] = [];

/** Record and print one figure line. */
export function figure(group: string, family: string, tried: number, executed = 0): Figure {
  const f = { group, family, tried, executed };
  all.push(f);
  console.log(`figures: ${group} ${family} ${tried} tried, ${executed} executed`);
  return f;
}

/** Print a per-group total line (sum of the figures recorded so far in this process). */
export function total(group: string): Figure {
  const mine = all.filter((f) => f.group === group);
  const t = {
    group,
    family: "TOTAL",
    tried: mine.reduce((n, f) => n + f.tried, 0),
    executed: mine.reduce((n, f) => n + f.executed, 0),
  };
  console.log(`figures: ${group} TOTAL ${t.tried} tried, ${t.executed} executed`);
  return t;
}

/** Everything recorded in this process (for the tests' own checks). */
export function figures(): readonly Figure[] {
  return all;
}

// ---------------------------------------------------------------------------------------------
// Shared by the hardening tests: a template builder, the hostile strings, the plan invariants.

/** One template attribute: a single value or a vector. */
export type Attr = [string, string | Record<string, string>];

/** The seed's vps145, as attributes (the template of fixtures/templates/vps145.xml). */
export const BASE: readonly Attr[] = [
  ["VMID", "45"],
  ["NAME", "vps145"],
  ["DISK", { DISK_ID: "0", SOURCE: "/srv/cloud/one/centos-5-x86.tar.bz2", SAVE: "yes" }],
  ["DISK", { DISK_ID: "1", TYPE: "swap", SIZE: "1024", TARGET: "hdd" }],
  ["MEMORY", { KMEMSIZE: "14372700:14790164", PRIVVMPAGES: "65536:69632" }],
  ["CPUUNITS", "2000"],
  ["CPULIMIT", "25"],
  ["CPUS", "2"],
  ["DISKSPACE", "10485760:11530240"],
  ["DISKINODES", "200000:220000"],
  ["NIC", { BRIDGE: "eth0", IP: "111.111.111.111", MAC: "02:00:6f:6f:6f:6f", NETWORK: "Public" }],
  ["CONTEXT", {
    HOSTNAME: "vps145.example.org",
    NAMESERVER: "111.111.111.2",
    FILES: "/srv/cloud/one/vps145/init.sh /srv/cloud/one/vps145/id_rsa.pub",
    FIREWALL: "[*]\n111.111.111.0/24\n\n[22]\n222.222.222.0/16",
  }],
  ["ONBOOT", "yes"],
  ["RAW", { TYPE: "ovz", DATA: "--numproc 400:400" }],
];

function cdata(v: string): string {
  return `<![CDATA[${v.replaceAll("]]>", "]]]]><![CDATA[>")}]]>`;
}

/** The deployment document oned would write for these attributes. */
export function xmlOf(attrs: readonly Attr[]): string {
  const parts = attrs.map(([name, v]) => {
    if (typeof v === "string") return `<${name}>${cdata(v)}</${name}>`;
    const inner = Object.entries(v).map(([k, x]) => `<${k}>${cdata(x)}</${k}>`).join("");
    return `<${name}>${inner}</${name}>`;
  });
  return `<TEMPLATE>${parts.join("")}</TEMPLATE>`;
}

/**
 * A copy of `attrs` with `name` (or `name/KEY` inside the first vector of that name) set to
 * `value`; `undefined` removes it. A missing attribute or vector is added.
 */
export function withAttr(attrs: readonly Attr[], path: string, value: string | undefined): Attr[] {
  const [name, key] = path.split("/");
  const out: Attr[] = attrs.map(([n, v]) => [n, typeof v === "string" ? v : { ...v }]);
  const i = out.findIndex(([n]) => n === name);
  if (key === undefined) {
    if (value === undefined) return out.filter(([n]) => n !== name);
    if (i >= 0) out[i][1] = value;
    else out.push([name, value]);
    return out;
  }
  if (i < 0) {
    if (value !== undefined) out.push([name, { [key]: value }]);
    return out;
  }
  const vec = out[i][1] as Record<string, string>;
  if (value === undefined) delete vec[key];
  else vec[key] = value;
  return out;
}

/** Where a hostile command would leave its trace if anything ever ran it. */
export const CANARY = `/tmp/onevz-hardening-canary-${Deno.pid}`;

/** Shell metacharacters, option injection, path escapes, control characters. */
export const HOSTILE: readonly string[] = [
  `1.2.3.4;touch ${CANARY}`,
  `$(touch ${CANARY})`,
  "`touch " + CANARY + "`",
  `x' ; touch ${CANARY} ; '`,
  `x" ; touch ${CANARY} ; "`,
  `a\ntouch ${CANARY}`,
  "a\0b",
  "a\rb",
  "-oProxyCommand=touch " + CANARY,
  "--help",
  "-1",
  "../../../etc/passwd",
  "/etc/passwd",
  "a|b",
  "a&b",
  "a>b",
  "${IFS}",
  "*",
  "a b",
  "a\tb",
];

/** A value that would be dangerous if it reached a shell, an option position or a path. */
export function dangerous(v: string): boolean {
  return /[;$`'"|&<>*\s\0\\/]/.test(v) || v.startsWith("-") || v.split(/[\/,]/).includes("..");
}

/** The value options a vzctl argv may hold besides the `vzctl set` table. */
const CREATE_VALUE_OPTIONS = new Set(["--ostemplate", "--private", "--root", "--config"]);

function takesValue(opt: string): boolean | undefined {
  if (CREATE_VALUE_OPTIONS.has(opt)) return true;
  if (opt === "--quiet" || opt === "--save") return false;
  const o = findSetOption(opt.replace(/^--/, ""));
  return o?.takesValue;
}

function under(path: string, dir: string): boolean {
  if (path.split("/").some((s) => s === ".." || s === ".")) return false;
  return path.startsWith(dir.replace(/\/+$/, "") + "/");
}

export const PLAN_FACTS = {
  vmDir: "/var/lib/one",
  templateCacheDir: "/vz/template/cache",
  templateFileExt: ".tar.gz",
} as const;

/**
 * The invariants every deploy plan must keep, whatever the template held: no NUL, CR or
 * newline in any argv element; every `-…` element is a known option in an option position and
 * no value starts with `-`; the private area, the root and every file written stay in the VM
 * directory or the template cache. Returns the violations (empty when the plan is sound).
 */
export function planViolations(spec: VmSpec, flavour: "ubc" | "vswap" = "ubc"): string[] {
  const bad: string[] = [];
  const plan: DeployPlan = planDeploy(spec, { ...PLAN_FACTS, flavour });
  const images = `${PLAN_FACTS.vmDir}/${spec.vmid}/images`;
  for (const step of plan.commands) {
    const argv = step.argv;
    if (argv[0] !== "vzctl") bad.push(`not vzctl: ${argv[0]}`);
    for (const a of argv) {
      if (/[\0\n\r]/.test(a)) bad.push(`control character in ${JSON.stringify(a)}`);
    }
    // vzctl [--quiet] <action> <ctid> [options…]
    let i = 1;
    while (i < argv.length && argv[i].startsWith("-")) {
      if (argv[i] !== "--quiet") bad.push(`global option ${argv[i]}`);
      i++;
    }
    if (!["create", "set", "start"].includes(argv[i])) bad.push(`action ${argv[i]}`);
    if (String(Number(argv[i + 1])) !== argv[i + 1]) bad.push(`ctid ${argv[i + 1]}`);
    for (i += 2; i < argv.length; i++) {
      const opt = argv[i];
      const tv = takesValue(opt);
      if (!opt.startsWith("--") || tv === undefined) {
        bad.push(`${JSON.stringify(opt)} in an option position`);
        continue;
      }
      if (!tv) continue;
      const value = argv[++i];
      if (value === undefined) bad.push(`${opt} without a value`);
      else if (value.startsWith("-")) {
        bad.push(`${opt} value ${JSON.stringify(value)} starts with -`);
      }
      if ((opt === "--private" || opt === "--root") && !under(value, images)) {
        bad.push(`${opt} ${value} outside ${images}`);
      }
      if (opt === "--ostemplate" && value.includes("/")) bad.push(`--ostemplate ${value}`);
    }
  }
  for (const f of plan.files) {
    const paths = f.kind === "place-template"
      ? [f.from, f.to]
      : f.kind === "copy-dir"
      ? [f.from, f.to]
      : [f.path];
    for (const p of paths) {
      const ok = f.kind === "append-config"
        ? p === `/etc/vz/conf/${spec.ctid}.conf`
        : under(p, images) || (f.kind === "place-template" && p === f.to &&
          under(p, PLAN_FACTS.templateCacheDir) &&
          !p.slice(PLAN_FACTS.templateCacheDir.length + 1).includes("/"));
      if (!ok) bad.push(`${f.kind} path ${p} escapes`);
    }
    // marker, FIREWALL=", the rules, ", end marker: nothing inside may end the value or be
    // read by vzctl (KEY=) or a shell ($, backtick, backslash)
    if (
      f.kind === "append-config" && /["=$`\\]/.test(f.text.split("\n").slice(2, -3).join("\n"))
    ) {
      bad.push(`'"', '=', '$', backtick or backslash inside the FIREWALL block`);
    }
  }
  return bad;
}

/** Run `fn`; return "ok", or the InvalidInputError message (it must be one line). */
export function verdict(fn: () => unknown): { ok: true } | { ok: false; message: string } {
  try {
    fn();
    return { ok: true };
  } catch (e) {
    if (!(e instanceof InvalidInputError)) {
      throw new Error(`not an InvalidInputError: ${(e as Error)?.stack ?? e}`);
    }
    if (e.message.includes("\n") || e.message.includes("\r")) {
      throw new Error(`multi-line message: ${JSON.stringify(e.message)}`);
    }
    return { ok: false, message: e.message };
  }
}
