/**
 * Template → VmSpec: the one place where a VM template is validated. Everything after this
 * (plan, deploy) works on typed, checked values. Errors are InvalidInputError with one line
 * naming the attribute and the rule, e.g. `CONTEXT/HOSTNAME: "a_b" is not a hostname …`.
 *
 * Mapping rules (also printed by `onevz plan`):
 * - CTID = VMID + CTID_OFFSET (src/one/ctid.ts).
 * - Exactly one OS disk (a DISK that is not TYPE=swap) and at most one swap disk
 *   (TYPE=swap, SIZE in MB). CDROM, DATABLOCK and fs disks are refused. BUS, TARGET, DRIVER,
 *   TYPE (other values), FORMAT, READONLY are ignored. The OS template name is the top-level
 *   OSTEMPLATE, else the IMAGE name, else the SOURCE file name, each without an archive
 *   extension (.tar/.tar.gz/.tgz/.tar.bz2/.tbz/.tar.xz/.txz; for IMAGE and OSTEMPLATE with a
 *   warning). A SOURCE named by a hash (an image-repository file) names no template: refused.
 * - MEMORY is either a vector of beancounters (`KMEMSIZE = "barrier[:limit]"`, …) or a plain
 *   size in MB (mapped by the planner, see src/ovz/plan.ts). A barrier above its limit is
 *   refused (vzctl's own validator, vzcfgvalidate: "barrier should be <= limit").
 * - CPU: raw CPUUNITS, CPULIMIT, CPUS, CPUMASK win. Otherwise, from OpenNebula's values:
 *     CPUS     = VCPU
 *     CPULIMIT = round(CPU × 100)            (percent of one CPU)
 *     CPUUNITS = round(CPU × 1000), clamped to vzctl's 8..500000
 *   A CPULIMIT above 100 × CPUS can never bind (the container runs on CPUS CPUs): warning.
 * - DISKSPACE / DISKINODES: the OS DISK's sub-attributes, else the top-level attributes.
 * - NIC: model veth when NIC MODEL = veth, venet when MODEL = venet, otherwise the driver's
 *   NIC_MODEL. A venet NIC needs an IP.
 * - RAW = [ TYPE = "ovz", DATA = "--opt value …" ]: tokenised without a shell, checked against
 *   the vzctl set option table (src/ovz/options.ts) and the RAW policy (src/ovz/raw_policy.ts:
 *   resources may only tighten what the attributes above gave, options that reach the node
 *   need ONEVZ/RAW_ALLOW). A RAW value for an option the template already produced replaces
 *   it (vzctl keeps only the first of two). Other RAW types are ignored.
 */
import { z } from "zod";
import { InvalidInputError } from "../cli/errors.ts";
import {
  checkCpuLimit,
  checkCpuMask,
  isIpv6Address,
  isStrictIpv4,
  parseRawOptions,
  rawArgv,
  type RawOption,
  tokenize,
} from "../ovz/options.ts";
import { setOptions } from "../ovz/plan.ts";
import {
  baselineFromArgs,
  checkRawPolicy,
  DEFAULT_RAW_POLICY,
  type RawPolicy,
  RawRefusal,
} from "../ovz/raw_policy.ts";
import {
  checkDiskQuota,
  hasControlChar,
  isUbcName,
  parseUbcPair,
  show,
  UBC_UNITS,
  type UbcPair,
} from "../ovz/units.ts";
import { DEFAULT_CONTEXT_DIR, DEFAULT_NIC_MODEL, type NicModel } from "./config.ts";
import { ctidForVmid, DEFAULT_CTID_OFFSET } from "./ctid.ts";
import { suggest } from "./lint.ts";
import { parseFirewall } from "./firewall.ts";
import { type TemplateDoc, values, type Vector, vectors } from "./template.ts";

export interface OsDisk {
  diskId: number;
  /** OSTEMPLATE name given to vzctl create. */
  templateName: string;
  imageId?: number;
  source?: string;
  /** SAVE=yes or SAVE_AS present: shutdown archives the private area to images/disk.<id>. */
  save: boolean;
  saveAs?: string;
}

export interface SwapDisk {
  diskId: number;
  sizeMb: number;
}

export type MemorySpec =
  | { kind: "ubc"; beancounters: Record<string, UbcPair> }
  | { kind: "mb"; mb: number }
  | { kind: "none" };

export interface CpuSpec {
  cpuunits?: number;
  /** "25" (percent of one CPU) or "50%" (of all CPUs). */
  cpulimit?: string;
  cpus?: number;
  cpumask?: string;
}

export interface NicSpec {
  /** Position among all NICs (0-based), as in the template. */
  index: number;
  /** For veth NICs: the container interface, eth<n> with n counting veth NICs only. */
  ifname?: string;
  ip?: string;
  mac?: string;
  bridge?: string;
  network?: string;
  model: NicModel;
}

export interface ContextSpec {
  hostname?: string;
  nameservers: string[];
  files: string[];
  firewall?: string;
  /** CONTEXT NETMASK / GATEWAY (validated IPs), used for veth NIC configuration. */
  netmask?: string;
  gateway?: string;
  /** Every CONTEXT variable (upper-case name → value), for context.sh. */
  vars: Record<string, string>;
}

export interface VmSpec {
  vmid: number;
  name: string;
  ctid: number;
  osDisk: OsDisk;
  swap?: SwapDisk;
  /** Number of DISK attributes: tm-context places the context directory at disk.<diskCount>. */
  diskCount: number;
  memory: MemorySpec;
  cpu: CpuSpec;
  diskspace?: string;
  diskinodes?: string;
  nics: NicSpec[];
  context?: ContextSpec;
  onboot?: boolean;
  /** Directory inside the container receiving the context files (driver CONTEXT_DIR). */
  contextDir: string;
  /** Validated extra `vzctl set` arguments from RAW TYPE=ovz, in template order. */
  raw: string[];
  /** How derived values were computed (for the plan output). */
  notes: string[];
  /** Template mistakes that do not stop a deploy, each with its fix (deploy: stderr). */
  warnings: string[];
}

export interface SpecOptions {
  ctidOffset?: number;
  nicModel?: NicModel;
  contextDir?: string;
  /** What RAW may do beyond the safe defaults (the defaults file's ONEVZ/RAW_ALLOW …). */
  rawPolicy?: RawPolicy;
  /** The operator allows `[CUSTOM]` lines in CONTEXT/FIREWALL (ONEVZ FIREWALL_CUSTOM). */
  firewallCustom?: boolean;
}

// ---------- atoms ----------

const LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;
export const hostnameSchema = z.string().refine(
  (s) => s.length <= 253 && s.split(".").every((l) => LABEL.test(l)),
  {
    error: (i) =>
      `${
        show(String(i.input))
      } is not a hostname (RFC 1123 labels: letters, digits, inner '-', at most 63 each)`,
  },
);

export const ipSchema = z.string().refine((s) => isStrictIpv4(s) || isIpv6Address(s), {
  error: (i) => `${show(String(i.input))} is not an IPv4 or IPv6 address`,
});
export const macSchema = z.string().regex(/^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/, {
  error: (i) => `${show(String(i.input))} is not a MAC address (xx:xx:xx:xx:xx:xx)`,
});
export const bridgeSchema = z.string().regex(/^(?!-)[A-Za-z0-9_.-]{1,15}$/, {
  error: (i) =>
    `${
      show(String(i.input))
    } is not a bridge name ([A-Za-z0-9_.-], 1 to 15, not starting with '-')`,
});
export const templateNameSchema = z.string().regex(/^(?![.-])[A-Za-z0-9._-]{1,200}$/, {
  error: (i) =>
    `${
      show(String(i.input))
    } is not an OS template name ([A-Za-z0-9._-], not starting with '.' or '-')`,
});
export const contextFileSchema = z.string()
  .refine((p) => p.startsWith("/") && !hasControlChar(p), {
    error: (i) => `${show(String(i.input))} is not an absolute path`,
  })
  .refine((p) => !p.split("/").includes(".."), {
    error: (i) => `${show(String(i.input))} has a '..' segment`,
  });

function intSchema(min: number, max: number, what = "an integer") {
  return z.string().regex(/^[0-9]{1,19}$/, {
    error: (i) => `${show(String(i.input))} is not ${what} (${min}..${max})`,
  }).transform(Number).refine((n) => n >= min && n <= max, {
    error: (i) => `${String(i.input)} is out of range ${min}..${max}`,
  });
}

const cpuFloatSchema = z.string().regex(/^[0-9]{1,6}(\.[0-9]{1,6})?$/, {
  error: (i) => `${show(String(i.input))} is not a positive number`,
}).transform(Number).refine((n) => n > 0 && n <= 4096, {
  error: (i) => `${String(i.input)} is out of range (0, 4096]`,
});

function fail(label: string, message: string): never {
  throw new InvalidInputError(`${label}: ${message}`);
}

/** Validate one value with a zod schema; the first issue becomes `label: message`. */
function check<T>(label: string, schema: z.ZodType<T, string>, value: string): T {
  const r = schema.safeParse(value);
  if (!r.success) fail(label, r.error.issues[0].message);
  return r.data;
}

function rangeCheck<T>(label: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof RangeError) fail(label, e.message);
    throw e;
  }
}

function noControl(label: string, value: string): string {
  if (hasControlChar(value)) {
    fail(label, `${show(value)} contains a control character (NUL, newline…)`);
  }
  return value;
}

function yesNo(label: string, value: string): boolean {
  const v = value.toLowerCase();
  if (["yes", "true", "1", "on"].includes(v)) return true;
  if (["no", "false", "0", "off"].includes(v)) return false;
  return fail(label, `${show(value)} is not yes or no`);
}

/** A single-valued attribute; a vector where a value is expected is an error. */
function scalar(doc: TemplateDoc, name: string): string | undefined {
  const vs = values(doc, name);
  if (vs.length === 0) return undefined;
  if (typeof vs[0] !== "string") fail(name, "expected a value, found a vector [ … ]");
  return vs[0] as string;
}

function present(v: string | undefined): v is string {
  return v !== undefined && v !== "";
}

const ARCHIVE_SUFFIX = /\.(tar\.gz|tgz|tar\.bz2|tbz2?|tar\.xz|txz|tar)$/i;
/** OpenNebula names repository images sha1("<uid>:<name>") in hex (Image::insert). */
const REPOSITORY_HASH = /^[0-9a-f]{40}$/;

/**
 * The OS template name vzctl gets (`--ostemplate`, and the cache file's name) for an OS DISK
 * and the template's top-level OSTEMPLATE: OSTEMPLATE, else IMAGE, else the SOURCE file name,
 * without an archive extension. Throws InvalidInputError naming the attribute to fix.
 */
export function osTemplateName(
  disk: Vector,
  label: string,
  ostemplate?: string,
): { name: string; warnings: string[] } {
  const warnings: string[] = [];
  const named = (attr: string, value: string) => {
    const bare = value.replace(ARCHIVE_SUFFIX, "");
    if (bare !== value && bare !== "") {
      const ext = value.slice(bare.length);
      warnings.push(
        `${attr}: ${show(value)} ends in ${ext}: the OS template is ${bare} (deploy gives the ` +
          `cached file the extension of the image's bytes); name it ${show(bare)} to silence this`,
      );
    }
    return check(attr, templateNameSchema, bare === "" ? value : bare);
  };
  if (present(ostemplate)) return { name: named("OSTEMPLATE", ostemplate), warnings };
  if (present(disk.IMAGE)) return { name: named(`${label}/IMAGE`, disk.IMAGE), warnings };
  if (present(disk.SOURCE)) {
    const base = disk.SOURCE.replace(/\/+$/, "").split("/").pop() ?? "";
    const name = base.replace(ARCHIVE_SUFFIX, "");
    if (REPOSITORY_HASH.test(name)) {
      fail(
        `${label}/SOURCE`,
        `${show(disk.SOURCE)} is an image of OpenNebula's repository, named by a hash, not an OS ` +
          `template name: use DISK = [ IMAGE = "<the image's NAME, e.g. centos-5-x86>" ] (oned ` +
          `fills in IMAGE for IMAGE and IMAGE_ID disks) or set OSTEMPLATE = "centos-5-x86"`,
      );
    }
    return { name: check(`${label}/SOURCE`, templateNameSchema, name), warnings };
  }
  if (present(disk.IMAGE_ID)) {
    fail(
      label,
      `IMAGE_ID ${show(disk.IMAGE_ID)} without IMAGE or SOURCE: onevz needs the OS template ` +
        `name; give IMAGE = "<the image's NAME>" or OSTEMPLATE = "<dist>-<version>-<arch>"`,
    );
  }
  return fail(label, "an OS disk needs IMAGE or SOURCE naming the OpenVZ OS template");
}

// ---------- disks ----------

type DiskKind = "os" | "swap" | "cdrom" | "datablock" | "fs";

function diskKind(d: Vector): DiskKind {
  const t = (d.TYPE ?? "").toLowerCase();
  if (t === "swap") return "swap";
  if (t === "cdrom") return "cdrom";
  if (t === "datablock") return "datablock";
  if (t === "fs") return "fs";
  return "os";
}

function parseDisks(doc: TemplateDoc, warnings: string[]) {
  const raw = values(doc, "DISK");
  if (raw.some((d) => typeof d === "string")) fail("DISK", "expected a vector DISK = [ … ]");
  const disks = (raw as Vector[]).map((d, i) => {
    const id = present(d.DISK_ID) ? check(`DISK ${i}/DISK_ID`, intSchema(0, 1e6), d.DISK_ID) : i;
    return { d, id, kind: diskKind(d) };
  });
  const os = disks.filter((x) => x.kind === "os");
  const swap = disks.filter((x) => x.kind === "swap");
  for (const x of disks) {
    if (x.kind === "cdrom" || x.kind === "datablock" || x.kind === "fs") {
      const what = x.kind === "cdrom"
        ? "a CDROM"
        : x.kind === "fs"
        ? "a new file-system (TYPE=fs)"
        : "a DATABLOCK";
      fail(
        `DISK ${x.id}`,
        `is ${what} disk: OpenVZ containers take one OS disk and an optional swap disk`,
      );
    }
  }
  if (os.length > 1) {
    fail(
      "DISK",
      `OpenVZ containers take one OS disk: DISK ${os[0].id} and DISK ${os[1].id} are both OS disks`,
    );
  }
  if (os.length === 0) {
    fail(
      "DISK",
      "OpenVZ containers need one OS disk (DISK = [ IMAGE = … ] or [ SOURCE = … ]): none found",
    );
  }
  if (swap.length > 1) {
    fail(
      "DISK",
      `OpenVZ containers take at most one swap disk: DISK ${swap[0].id} and DISK ${
        swap[1].id
      } are both swap disks`,
    );
  }
  const { d, id } = os[0];
  const label = `DISK ${id}`;
  if (present(d.SOURCE)) {
    noControl(`${label}/SOURCE`, d.SOURCE);
    if (d.SOURCE.split("/").includes("..")) fail(`${label}/SOURCE`, "has a '..' segment");
  }
  const named = osTemplateName(d, label, scalar(doc, "OSTEMPLATE"));
  warnings.push(...named.warnings);
  const templateName = named.name;
  const osDisk: OsDisk = {
    diskId: id,
    templateName,
    save: present(d.SAVE_AS) || (present(d.SAVE) && yesNo(`${label}/SAVE`, d.SAVE)),
  };
  if (present(d.IMAGE_ID)) {
    osDisk.imageId = check(`${label}/IMAGE_ID`, intSchema(0, 2147483647), d.IMAGE_ID);
  }
  if (present(d.SOURCE)) osDisk.source = noControl(`${label}/SOURCE`, d.SOURCE);
  if (present(d.SAVE_AS)) osDisk.saveAs = noControl(`${label}/SAVE_AS`, d.SAVE_AS);
  let swapDisk: SwapDisk | undefined;
  if (swap.length === 1) {
    const s = swap[0];
    if (!present(s.d.SIZE)) fail(`DISK ${s.id}/SIZE`, "a swap disk needs SIZE in MB");
    swapDisk = {
      diskId: s.id,
      sizeMb: check(`DISK ${s.id}/SIZE`, intSchema(0, 16777216, "a size in MB"), s.d.SIZE),
    };
  }
  return { osDisk, swapDisk, osVector: d, diskCount: disks.length };
}

// ---------- memory, cpu ----------

function parseMemory(doc: TemplateDoc): MemorySpec {
  const vs = values(doc, "MEMORY");
  if (vs.length === 0) return { kind: "none" };
  const m = vs[0];
  if (typeof m === "string") {
    if (m === "") return { kind: "none" };
    return { kind: "mb", mb: check("MEMORY", intSchema(1, 16777216, "a size in MB"), m) };
  }
  const beancounters: Record<string, UbcPair> = {};
  for (const [k, v] of Object.entries(m)) {
    if (!isUbcName(k)) {
      const near = suggest(k, Object.keys(UBC_UNITS));
      fail(
        `MEMORY/${k}`,
        near
          ? `not a beancounter: did you mean ${near}?`
          : `not a beancounter (one of ${Object.keys(UBC_UNITS).join(", ")})`,
      );
    }
    noControl(`MEMORY/${k}`, v);
    const pair = rangeCheck(`MEMORY/${k}`, () => parseUbcPair(k, v));
    if (pair.barrier > pair.limit) {
      const [b, l] = v.split(":");
      fail(
        `MEMORY/${k}`,
        `${show(v)} has its barrier above its limit: vzctl's validator refuses it ("barrier ` +
          `should be <= limit") and the kernel would enforce the limit alone; did you mean ` +
          `${show(`${l}:${b}`)}?`,
      );
    }
    beancounters[k] = pair;
  }
  return { kind: "ubc", beancounters };
}

function parseCpu(doc: TemplateDoc, notes: string[]): CpuSpec {
  const cpu: CpuSpec = {};
  const units = scalar(doc, "CPUUNITS");
  const limit = scalar(doc, "CPULIMIT");
  const cpus = scalar(doc, "CPUS");
  const mask = scalar(doc, "CPUMASK");
  const oneCpu = scalar(doc, "CPU");
  const vcpu = scalar(doc, "VCPU");
  const cpuValue = present(oneCpu) ? check("CPU", cpuFloatSchema, oneCpu) : undefined;
  const vcpuValue = present(vcpu) ? check("VCPU", intSchema(1, 4096), vcpu) : undefined;
  if (present(units)) cpu.cpuunits = check("CPUUNITS", intSchema(8, 500000), units);
  else if (cpuValue !== undefined) {
    cpu.cpuunits = Math.min(500000, Math.max(8, Math.round(cpuValue * 1000)));
    notes.push(`CPUUNITS = round(CPU × 1000) = ${cpu.cpuunits} (CPU = ${oneCpu})`);
  }
  if (present(limit)) cpu.cpulimit = rangeCheck("CPULIMIT", () => (checkCpuLimit(limit), limit));
  else if (cpuValue !== undefined) {
    cpu.cpulimit = String(Math.round(cpuValue * 100));
    notes.push(`CPULIMIT = round(CPU × 100) = ${cpu.cpulimit}% of one CPU (CPU = ${oneCpu})`);
  }
  if (present(cpus)) cpu.cpus = check("CPUS", intSchema(1, 4096), cpus);
  else if (vcpuValue !== undefined) {
    cpu.cpus = vcpuValue;
    notes.push(`CPUS = VCPU = ${vcpuValue}`);
  }
  if (present(mask)) cpu.cpumask = rangeCheck("CPUMASK", () => (checkCpuMask(mask), mask));
  return cpu;
}

/** A CPULIMIT (percent of one CPU) the CPUS count makes unreachable. */
function cpuLimitWarning(cpu: CpuSpec, derived: boolean): string | undefined {
  if (cpu.cpus === undefined || cpu.cpulimit === undefined || cpu.cpulimit.endsWith("%")) {
    return undefined;
  }
  const max = 100 * cpu.cpus;
  if (Number(cpu.cpulimit) <= max) return undefined;
  return `CPULIMIT ${cpu.cpulimit}${derived ? " (= CPU × 100)" : ""} is above 100 × CPUS ` +
    `(${cpu.cpus}) = ${max}: the container runs on at most ${cpu.cpus} CPU(s), so the limit ` +
    `never applies; set CPULIMIT ≤ ${max}, or raise CPUS (vzctl passes it on unchecked)`;
}

// ---------- network, context, raw ----------

function parseNics(doc: TemplateDoc, nicModel: NicModel): NicSpec[] {
  const raw = values(doc, "NIC");
  if (raw.some((n) => typeof n === "string")) fail("NIC", "expected a vector NIC = [ … ]");
  let vethCount = 0;
  return (raw as Vector[]).map((n, index) => {
    const label = `NIC ${index}`;
    const modelText = (n.MODEL ?? "").toLowerCase();
    const model: NicModel = modelText === "veth"
      ? "veth"
      : modelText === "venet"
      ? "venet"
      : nicModel;
    const nic: NicSpec = { index, model };
    if (model === "veth") nic.ifname = `eth${vethCount++}`;
    if (present(n.IP)) nic.ip = check(`${label}/IP`, ipSchema, n.IP);
    if (present(n.MAC)) nic.mac = check(`${label}/MAC`, macSchema, n.MAC);
    if (present(n.BRIDGE)) nic.bridge = check(`${label}/BRIDGE`, bridgeSchema, n.BRIDGE);
    if (present(n.NETWORK)) nic.network = noControl(`${label}/NETWORK`, n.NETWORK);
    if (model === "venet" && !nic.ip) {
      fail(label, "a venet NIC needs IP (use MODEL = veth for a bridged device without one)");
    }
    return nic;
  });
}

function parseContext(doc: TemplateDoc, opts: SpecOptions): ContextSpec | undefined {
  const vs = values(doc, "CONTEXT");
  if (vs.length === 0) return undefined;
  if (typeof vs[0] === "string") fail("CONTEXT", "expected a vector CONTEXT = [ … ]");
  const c = vs[0] as Vector;
  const ctx: ContextSpec = { nameservers: [], files: [], vars: {} };
  for (const [k, v] of Object.entries(c)) {
    const label = `CONTEXT/${k}`;
    if (!/^[A-Z_][A-Z0-9_]*$/.test(k)) fail(label, "variable names are letters, digits and '_'");
    if (v.includes("\0")) fail(label, "contains NUL");
    ctx.vars[k] = v;
  }
  if (present(c.HOSTNAME)) ctx.hostname = check("CONTEXT/HOSTNAME", hostnameSchema, c.HOSTNAME);
  if (present(c.NAMESERVER)) {
    ctx.nameservers = c.NAMESERVER.split(/[\s,]+/).filter((s) => s !== "")
      .map((s) => check("CONTEXT/NAMESERVER", ipSchema, s));
  }
  if (present(c.FILES)) {
    ctx.files = c.FILES.split(/[ \t]+/).filter((s) => s !== "")
      .map((s) => check("CONTEXT/FILES", contextFileSchema, s));
  }
  if (present(c.NETMASK)) ctx.netmask = check("CONTEXT/NETMASK", ipSchema, c.NETMASK);
  if (present(c.GATEWAY)) ctx.gateway = check("CONTEXT/GATEWAY", ipSchema, c.GATEWAY);
  if (present(c.FIREWALL)) {
    if (c.FIREWALL.includes('"')) {
      fail(
        "CONTEXT/FIREWALL",
        "must not contain '\"' (vzfirewall's FIREWALL=\"…\" ends at the first quote)",
      );
    }
    if (hasControlChar(c.FIREWALL, "\t\n\r")) {
      fail("CONTEXT/FIREWALL", "contains a control character");
    }
    // Only rules about this container's own addresses (src/one/firewall.ts), normalized.
    const fw = parseFirewall(c.FIREWALL, { allowCustom: opts.firewallCustom });
    if (!fw.ok) fail("CONTEXT/FIREWALL", fw.message);
    ctx.firewall = fw.rules;
  }
  return ctx;
}

interface LabelledRaw extends RawOption {
  label: string;
}

function parseRaw(doc: TemplateDoc): LabelledRaw[] {
  const out: LabelledRaw[] = [];
  vectors(doc, "RAW").forEach((r, i) => {
    if ((r.TYPE ?? "").toLowerCase() !== "ovz") return;
    const label = `RAW ${i}/DATA`;
    const data = r.DATA ?? "";
    if (data.includes("\0")) fail(label, "contains NUL");
    const tokens = rangeCheck(label, () => tokenize(data));
    out.push(...rangeCheck(label, () => parseRawOptions(tokens)).map((o) => ({ ...o, label })));
  });
  return out;
}

/** Options vzctl takes once (a second use is ignored): a RAW value replaces the template's. */
const REPLACES: Readonly<Record<string, (spec: VmSpec, value: string) => void>> = {
  cpuunits: (s, v) => void (s.cpu.cpuunits = Number(v)),
  cpulimit: (s, v) => void (s.cpu.cpulimit = v),
  cpus: (s, v) => void (s.cpu.cpus = Number(v)),
  cpumask: (s, v) => void (s.cpu.cpumask = v),
  diskspace: (s, v) => void (s.diskspace = v),
  diskinodes: (s, v) => void (s.diskinodes = v),
  hostname: (s, v) => void (s.context!.hostname = v),
  onboot: (s, v) => void (s.onboot = v === "yes"),
};

/**
 * Check the RAW options against the policy and what the template produced on either node
 * flavour, fold those that replace a template value into the spec, and set spec.raw.
 */
function applyRaw(spec: VmSpec, raw: LabelledRaw[], policy: RawPolicy): void {
  // A flavour whose memory mapping refuses this template (a UBC vector without RAM on VSwap)
  // cannot deploy it at all, so it sets no baseline; the planner reports that refusal there.
  const mapped = (["ubc", "vswap"] as const).map((flavour) => {
    try {
      return {
        where: `${flavour === "ubc" ? "UBC" : "VSwap"} nodes`,
        values: baselineFromArgs(setOptions(spec, flavour).args),
      };
    } catch (e) {
      if (e instanceof InvalidInputError) return e;
      throw e;
    }
  });
  const produced = mapped.filter((m): m is Exclude<typeof m, InvalidInputError> =>
    !(m instanceof InvalidInputError)
  );
  if (produced.length === 0) throw mapped[0];
  try {
    checkRawPolicy(raw, produced, policy);
  } catch (e) {
    if (e instanceof RawRefusal) fail(raw[e.index].label, e.message);
    throw e;
  }
  const rest: RawOption[] = [];
  for (const o of raw) {
    const before = produced[0].values.get(o.name);
    const replace = REPLACES[o.name];
    if (replace && o.value !== null && before !== undefined) {
      replace(spec, o.value);
      spec.notes.push(`RAW --${o.name} ${o.value} replaces the template's --${o.name} ${before}`);
    } else rest.push(o);
  }
  spec.raw = rawArgv(rest);
}

/** Validate a (defaults-merged) template and build the VM's typed spec. */
export function toSpec(doc: TemplateDoc, opts: SpecOptions = {}): VmSpec {
  const notes: string[] = [];
  const warnings: string[] = [];
  const vmidText = scalar(doc, "VMID") ?? (doc.vmId !== undefined ? String(doc.vmId) : undefined);
  if (!present(vmidText)) fail("VMID", "missing (oned adds it to every deployment file)");
  const vmid = check("VMID", intSchema(0, 2147483647, "a VM id"), vmidText);
  const ctid = rangeCheck("VMID", () => ctidForVmid(vmid, opts.ctidOffset ?? DEFAULT_CTID_OFFSET));
  const name = noControl("NAME", scalar(doc, "NAME") || `one-${vmid}`);
  const { osDisk, swapDisk, osVector, diskCount } = parseDisks(doc, warnings);
  const memory = parseMemory(doc);
  const cpu = parseCpu(doc, notes);
  const cpuWarning = cpuLimitWarning(cpu, !present(scalar(doc, "CPULIMIT")));
  if (cpuWarning) warnings.push(cpuWarning);
  const space = present(osVector.DISKSPACE) ? osVector.DISKSPACE : scalar(doc, "DISKSPACE");
  const spaceLabel = present(osVector.DISKSPACE) ? `DISK ${osDisk.diskId}/DISKSPACE` : "DISKSPACE";
  const inodes = present(osVector.DISKINODES) ? osVector.DISKINODES : scalar(doc, "DISKINODES");
  const inodesLabel = present(osVector.DISKINODES)
    ? `DISK ${osDisk.diskId}/DISKINODES`
    : "DISKINODES";
  const nics = parseNics(doc, opts.nicModel ?? DEFAULT_NIC_MODEL);
  const context = parseContext(doc, opts);
  const raw = parseRaw(doc);
  const spec: VmSpec = {
    vmid,
    name,
    ctid,
    osDisk,
    diskCount,
    memory,
    cpu,
    nics,
    context,
    raw: [],
    contextDir: opts.contextDir ?? DEFAULT_CONTEXT_DIR,
    notes,
    warnings,
  };
  if (swapDisk) spec.swap = swapDisk;
  if (present(space)) {
    spec.diskspace = rangeCheck(spaceLabel, () => checkDiskQuota("diskspace", space));
  }
  if (present(inodes)) {
    spec.diskinodes = rangeCheck(inodesLabel, () => checkDiskQuota("diskinodes", inodes));
  }
  const onboot = scalar(doc, "ONBOOT");
  if (present(onboot)) spec.onboot = yesNo("ONBOOT", onboot);
  applyRaw(spec, raw, opts.rawPolicy ?? DEFAULT_RAW_POLICY);
  return spec;
}
