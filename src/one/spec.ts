/**
 * Template → VmSpec: the one place where a VM template is validated. Everything after this
 * (plan, deploy) works on typed, checked values. Errors are InvalidInputError with one line
 * naming the attribute and the rule, e.g. `CONTEXT/HOSTNAME: "a_b" is not a hostname …`.
 *
 * Mapping rules (also printed by `onevz plan`):
 * - CTID = VMID + CTID_OFFSET (src/one/ctid.ts).
 * - Exactly one OS disk (a DISK that is not TYPE=swap) and at most one swap disk
 *   (TYPE=swap, SIZE in MB). CDROM, DATABLOCK and fs disks are refused. BUS, TARGET, DRIVER,
 *   TYPE (other values), FORMAT, READONLY are ignored. The OS template name is the IMAGE name,
 *   or the SOURCE file name without .tar/.tar.gz/.tgz/.tar.bz2/.tbz/.tar.xz/.txz.
 * - MEMORY is either a vector of beancounters (`KMEMSIZE = "barrier[:limit]"`, …) or a plain
 *   size in MB (mapped by the planner, see src/ovz/plan.ts).
 * - CPU: raw CPUUNITS, CPULIMIT, CPUS, CPUMASK win. Otherwise, from OpenNebula's values:
 *     CPUS     = VCPU
 *     CPULIMIT = round(CPU × 100)            (percent of one CPU)
 *     CPUUNITS = round(CPU × 1000), clamped to vzctl's 8..500000
 * - DISKSPACE / DISKINODES: the OS DISK's sub-attributes, else the top-level attributes.
 * - NIC: model veth when NIC MODEL = veth, venet when MODEL = venet, otherwise the driver's
 *   NIC_MODEL. A venet NIC needs an IP.
 * - RAW = [ TYPE = "ovz", DATA = "--opt value …" ]: tokenised without a shell and checked
 *   against the vzctl set option table (src/ovz/options.ts). Other RAW types are ignored.
 */
import { z } from "zod";
import { InvalidInputError } from "../cli/errors.ts";
import { checkCpuLimit, checkRawArgs, tokenize } from "../ovz/options.ts";
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
}

export interface SpecOptions {
  ctidOffset?: number;
  nicModel?: NicModel;
  contextDir?: string;
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

const IPV4 =
  /^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}$/;
export function isIpv4(s: string): boolean {
  return IPV4.test(s);
}
const ipv6Schema = z.ipv6();
export function isIpv6(s: string): boolean {
  return ipv6Schema.safeParse(s).success;
}
export const ipSchema = z.string().refine((s) => isIpv4(s) || isIpv6(s), {
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

const cpumaskSchema = z.string().regex(
  /^(all|auto|[0-9]{1,4}(-[0-9]{1,4})?(,[0-9]{1,4}(-[0-9]{1,4})?)*)$/,
  { error: (i) => `${show(String(i.input))} is not a CPU mask (e.g. 0-2,7, all, auto)` },
);

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

function parseDisks(doc: TemplateDoc) {
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
  let templateName: string;
  if (present(d.IMAGE)) {
    templateName = check(`${label}/IMAGE`, templateNameSchema, d.IMAGE);
  } else if (present(d.SOURCE)) {
    noControl(`${label}/SOURCE`, d.SOURCE);
    if (d.SOURCE.split("/").includes("..")) fail(`${label}/SOURCE`, "has a '..' segment");
    const base = d.SOURCE.replace(/\/+$/, "").split("/").pop() ?? "";
    templateName = check(`${label}/SOURCE`, templateNameSchema, base.replace(ARCHIVE_SUFFIX, ""));
  } else {
    fail(label, "an OS disk needs IMAGE or SOURCE naming the OpenVZ OS template");
  }
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
      fail(`MEMORY/${k}`, `not a beancounter (one of ${Object.keys(UBC_UNITS).join(", ")})`);
    }
    noControl(`MEMORY/${k}`, v);
    beancounters[k] = rangeCheck(`MEMORY/${k}`, () => parseUbcPair(k, v));
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
  if (present(mask)) cpu.cpumask = check("CPUMASK", cpumaskSchema, mask);
  return cpu;
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

function parseRaw(doc: TemplateDoc): string[] {
  const argv: string[] = [];
  vectors(doc, "RAW").forEach((r, i) => {
    if ((r.TYPE ?? "").toLowerCase() !== "ovz") return;
    const label = `RAW ${i}/DATA`;
    const data = r.DATA ?? "";
    if (data.includes("\0")) fail(label, "contains NUL");
    const tokens = rangeCheck(label, () => tokenize(data));
    argv.push(...rangeCheck(label, () => checkRawArgs(tokens)));
  });
  return argv;
}

/** Validate a (defaults-merged) template and build the VM's typed spec. */
export function toSpec(doc: TemplateDoc, opts: SpecOptions = {}): VmSpec {
  const notes: string[] = [];
  const vmidText = scalar(doc, "VMID") ?? (doc.vmId !== undefined ? String(doc.vmId) : undefined);
  if (!present(vmidText)) fail("VMID", "missing (oned adds it to every deployment file)");
  const vmid = check("VMID", intSchema(0, 2147483647, "a VM id"), vmidText);
  const ctid = rangeCheck("VMID", () => ctidForVmid(vmid, opts.ctidOffset ?? DEFAULT_CTID_OFFSET));
  const name = noControl("NAME", scalar(doc, "NAME") || `one-${vmid}`);
  const { osDisk, swapDisk, osVector, diskCount } = parseDisks(doc);
  const memory = parseMemory(doc);
  const cpu = parseCpu(doc, notes);
  const space = present(osVector.DISKSPACE) ? osVector.DISKSPACE : scalar(doc, "DISKSPACE");
  const spaceLabel = present(osVector.DISKSPACE) ? `DISK ${osDisk.diskId}/DISKSPACE` : "DISKSPACE";
  const inodes = present(osVector.DISKINODES) ? osVector.DISKINODES : scalar(doc, "DISKINODES");
  const inodesLabel = present(osVector.DISKINODES)
    ? `DISK ${osDisk.diskId}/DISKINODES`
    : "DISKINODES";
  const spec: VmSpec = {
    vmid,
    name,
    ctid,
    osDisk,
    diskCount,
    memory,
    cpu,
    nics: parseNics(doc, opts.nicModel ?? DEFAULT_NIC_MODEL),
    context: parseContext(doc, opts),
    raw: parseRaw(doc),
    contextDir: opts.contextDir ?? DEFAULT_CONTEXT_DIR,
    notes,
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
  return spec;
}
