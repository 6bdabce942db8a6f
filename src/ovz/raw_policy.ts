/**
 * What RAW = [ TYPE = "ovz", DATA = … ] may do without the operator, and what the operator
 * allows beyond that in the defaults file (ONEVZ/RAW_ALLOW, ONEVZ/RAW_LOOSEN). Pure.
 *
 * - safe options (hostname, nameserver, description, onboot, …) always pass;
 * - resource options (beancounters, --ram/--swap, CPU, disk quota, I/O) pass when they only
 *   tighten what the template's CPU/VCPU/MEMORY/DISK gave (or vzctl's default where the
 *   template set nothing); RAW_LOOSEN lists those that may also loosen;
 * - operator options (--capability, --devices, --devnodes, --ipadd, --netif_add, --iptables,
 *   --netfilter, --features, …) are refused unless RAW_ALLOW names them, optionally with the
 *   values allowed. Without any setting, --features may turn any feature off and nfs on,
 *   --netfilter may be `disabled` and --mac_filter `on` (each only narrows the container).
 *
 * RAW_ALLOW syntax: entries separated by blanks; `option` allows any value vzctl accepts,
 * `option=v1|v2|…` only those values. For list options (features, capability, iptables,
 * devices, devnodes) every item of the value must be one of them; for ipadd/ipdel they are
 * addresses or networks (`192.0.2.0/24`) the address must lie in; for netif_add they are the
 * bridges the interface may join. Example:
 *   RAW_ALLOW = "features=nfs:on|sysfs:on capability=net_admin:on ipadd=192.0.2.0/24 netif_add=br1"
 */
import {
  checkIpAddr,
  FEATURE_NAMES,
  findSetOption,
  isStrictIpv4,
  netifAddFields,
  parseCpuMask,
  type RawOption,
  type VzctlOption,
} from "./options.ts";
import {
  diskQuotaPair,
  formatUbcPair,
  isUbcName,
  PAGE_SIZE_BYTES,
  parseUbcNumber,
  parseUbcPair,
  show,
  type UbcPair,
  UNLIMITED,
} from "./units.ts";

export interface RawPolicy {
  /** Operator options allowed: null = any value vzctl accepts, else the values allowed. */
  allow: ReadonlyMap<string, readonly string[] | null>;
  /** Resource options RAW may set looser than the template's values. */
  loosen: ReadonlySet<string>;
}

export const DEFAULT_RAW_POLICY: RawPolicy = { allow: new Map(), loosen: new Set() };

/** Values allowed without any setting (each only narrows what the container gets). */
const DEFAULT_VALUES: Readonly<Record<string, readonly string[]>> = {
  features: ["nfs:on", ...FEATURE_NAMES.map((n) => `${n}:off`)],
  netfilter: ["disabled"],
  mac_filter: ["on"],
};

const CONF = "vmm_ssh_ovz.conf";
const LIST_SEP = "|";

function optionNamed(entry: string, setting: string): VzctlOption {
  const opt = findSetOption(entry.replace(/^--/, ""));
  if (!opt) {
    throw new RangeError(
      `${show(entry)} is not a vzctl set option onevz passes from RAW (see onevz plan)`,
    );
  }
  if (setting === "RAW_ALLOW" && opt.cls === "resource") {
    throw new RangeError(
      `${opt.name} is a resource option: RAW may already tighten it; list it in RAW_LOOSEN to let RAW loosen it`,
    );
  }
  if (setting === "RAW_LOOSEN" && opt.cls !== "resource") {
    throw new RangeError(`${opt.name} is not a resource option (RAW_LOOSEN takes only those)`);
  }
  return opt;
}

/** Check one allowed value of an option (as the operator wrote it). */
function checkAlternative(opt: VzctlOption, alt: string): void {
  if (opt.name === "ipadd" || opt.name === "ipdel") {
    if (alt !== "all") checkIpAddr(alt);
    return;
  }
  if (opt.name === "netif_add") {
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(alt)) throw new RangeError(`${show(alt)} is not a bridge`);
    return;
  }
  try {
    opt.check?.(alt);
  } catch (e) {
    throw new RangeError(`${opt.name}=${alt}: ${(e as Error).message}`);
  }
}

/** Parse ONEVZ/RAW_ALLOW. Throws RangeError with the reason. */
export function parseRawAllow(text: string): Map<string, string[] | null> {
  const allow = new Map<string, string[] | null>();
  for (const entry of text.split(/\s+/).filter((s) => s !== "")) {
    const eq = entry.indexOf("=");
    const opt = optionNamed(eq < 0 ? entry : entry.slice(0, eq), "RAW_ALLOW");
    if (!opt.takesValue && eq >= 0) throw new RangeError(`${opt.name} takes no value`);
    if (eq < 0) {
      allow.set(opt.name, null);
      continue;
    }
    const alts = entry.slice(eq + 1).split(LIST_SEP);
    if (alts.some((a) => a === "")) {
      throw new RangeError(`${show(entry)}: empty value (write option=v1|v2, no blanks)`);
    }
    alts.forEach((a) => checkAlternative(opt, a));
    const prev = allow.get(opt.name);
    if (prev === null) continue;
    const norm = opt.name === "capability" ? alts.map((a) => a.toLowerCase()) : alts;
    allow.set(opt.name, [...(prev ?? []), ...norm]);
  }
  return allow;
}

/** Parse ONEVZ/RAW_LOOSEN (resource option names). Throws RangeError with the reason. */
export function parseRawLoosen(text: string): Set<string> {
  return new Set(
    text.split(/[\s,]+/).filter((s) => s !== "").map((e) => optionNamed(e, "RAW_LOOSEN").name),
  );
}

// ---------- allowed values ----------

function ipBits(addr: string): { v4: boolean; n: bigint } {
  if (isStrictIpv4(addr)) {
    return { v4: true, n: addr.split(".").reduce((a, o) => a * 256n + BigInt(o), 0n) };
  }
  const [head, tail] = addr.includes("::") ? addr.split("::") : [addr, undefined];
  const h = head === "" ? [] : head.split(":");
  const t = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  return { v4: false, n: groups.reduce((a, g) => a * 65536n + BigInt(`0x${g || "0"}`), 0n) };
}

function inNetwork(addr: string, net: string): boolean {
  const mixed = (s: string) => s.includes(":") && s.includes(".");
  if (mixed(addr) || mixed(net)) return false; // IPv4-in-IPv6 forms: never covered
  const [base, prefix] = net.split("/");
  const a = ipBits(addr);
  const b = ipBits(base);
  if (a.v4 !== b.v4) return false;
  const width = a.v4 ? 32n : 128n;
  const shift = width - BigInt(prefix ?? width);
  return (a.n >> shift) === (b.n >> shift);
}

/**
 * The part of a value the allowed values do not cover, as the RAW_ALLOW entry that would
 * allow it; null when covered.
 */
function uncovered(opt: VzctlOption, value: string, alts: readonly string[]): string | null {
  if (opt.items) {
    for (const item of opt.items(value)) {
      const it = opt.name === "capability" ? item.toLowerCase() : item;
      if (!alts.includes(it)) return `${opt.name}=${it}`;
    }
    return null;
  }
  if (opt.name === "ipadd" || opt.name === "ipdel") {
    if (value === "all") return alts.includes("all") ? null : `${opt.name}=all`;
    const addr = value.split("/")[0];
    return alts.some((n) => n !== "all" && inNetwork(addr, n)) ? null : `${opt.name}=${addr}`;
  }
  if (opt.name === "netif_add") {
    const bridge = netifAddFields(value).bridge;
    if (bridge !== "" && alts.includes(bridge)) return null;
    return bridge === "" ? "netif_add=<bridge>" : `netif_add=${bridge}`;
  }
  return alts.includes(value) ? null : `${opt.name}=${value}`;
}

// ---------- tightening ----------

/** The options the template produced (`--name value` argv of plan's setOptions), last wins. */
export function baselineFromArgs(args: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i + 1 < args.length; i += 2) m.set(args[i].replace(/^--/, ""), args[i + 1]);
  return m;
}

/** A baseline of one node flavour: what the template produced there. */
export interface Baseline {
  /** Where it applies, for the message ("UBC nodes"). */
  where: string;
  values: ReadonlyMap<string, string>;
}

function pagesOf(size: string): bigint {
  const bytes = parseUbcNumber(size, "bytes");
  const page = BigInt(PAGE_SIZE_BYTES);
  return bytes >= UNLIMITED ? UNLIMITED : (bytes + page - 1n) / page;
}

/** The beancounter an option sets, with the pair it sets. */
function ubcOf(name: string, value: string): [string, UbcPair] | null {
  if (name === "ram") return ["physpages", { barrier: 0n, limit: pagesOf(value) }];
  if (name === "swap") return ["swappages", { barrier: 0n, limit: pagesOf(value) }];
  if (isUbcName(name)) return [name, parseUbcPair(name, value)];
  return null;
}

function ubcBaseline(base: ReadonlyMap<string, string>, ubc: string): UbcPair | undefined {
  if (ubc === "physpages" && base.has("ram")) return ubcOf("ram", base.get("ram")!)![1];
  if (ubc === "swappages" && base.has("swap")) return ubcOf("swap", base.get("swap")!)![1];
  const v = base.get(ubc);
  return v === undefined ? undefined : parseUbcPair(ubc, v);
}

/** vzctl's own defaults where the template set nothing (CPUUNITS: vzctl man page; IOPRIO 4). */
const VZCTL_DEFAULTS: Readonly<Record<string, string>> = { cpuunits: "1000", ioprio: "4" };

/** What a resource option would loosen against one baseline; null when it only tightens. */
function loosens(name: string, value: string, base: ReadonlyMap<string, string>): string | null {
  const ubc = ubcOf(name, value);
  if (ubc) {
    const [key, pair] = ubc;
    const b = ubcBaseline(base, key);
    const KEY = key.toUpperCase();
    if (b) {
      return pair.barrier > b.barrier || pair.limit > b.limit
        ? `the template's ${KEY} ${formatUbcPair(b)}`
        : null;
    }
    return pair.barrier >= UNLIMITED || pair.limit >= UNLIMITED
      ? `the container's config sample (the template sets no ${KEY}; RAW may not make it unlimited)`
      : null;
  }
  const given = base.get(name);
  const ref = given ?? VZCTL_DEFAULTS[name];
  const whose = given !== undefined ? "the template's" : "vzctl's default";
  const KEY = name.toUpperCase();
  switch (name) {
    case "cpuunits":
    case "cpus":
    case "ioprio":
      return ref !== undefined && Number(value) > Number(ref) ? `${whose} ${KEY} ${ref}` : null;
    case "cpulimit": {
      if (given === undefined) return null; // vzctl's default: no limit
      const n = Number(value.replace("%", ""));
      const b = Number(given.replace("%", ""));
      const worse = n === 0 || n > b || (value.endsWith("%") && !given.endsWith("%"));
      return worse ? `the template's CPULIMIT ${given} (percent of one CPU unless N%)` : null;
    }
    case "cpumask": {
      const b = given === undefined ? null : parseCpuMask(given);
      if (b === null) return null;
      const v = parseCpuMask(value);
      return v === null || [...v].some((c) => !b.has(c)) ? `the template's CPUMASK ${given}` : null;
    }
    case "diskspace":
    case "diskinodes": {
      if (given === undefined) return null;
      const [s, h] = diskQuotaPair(name, value);
      const [bs, bh] = diskQuotaPair(name, given);
      return s > bs || h > bh ? `the template's ${KEY} ${given}` : null;
    }
    default:
      // nodemask, vm_overcommit, iolimit, iopslimit: the template never sets them and vzctl's
      // default is no restriction, so any value narrows.
      return null;
  }
}

/** A RAW option the policy refuses: `index` is its position in the list checked. */
export class RawRefusal extends RangeError {
  constructor(readonly index: number, message: string) {
    super(message);
  }
}

function allowHint(entry: string, setting: string): string {
  return `to allow it, add "${entry}" to ONEVZ/${setting} in ${CONF}`;
}

/**
 * Check RAW options against the policy and the template's baselines (one per node flavour).
 * Throws RangeError naming the option, the reason and the setting that would allow it.
 */
export function checkRawPolicy(
  options: readonly RawOption[],
  baselines: readonly Baseline[],
  policy: RawPolicy,
): void {
  const seen = new Set<string>();
  options.forEach(({ name, value }, index) => {
    const refuse = (message: string): never => {
      throw new RawRefusal(index, message);
    };
    const opt = findSetOption(name)!;
    const shown = value === null ? `--${name}` : `--${name} ${value}`;
    if (!opt.repeatable && seen.has(name)) {
      refuse(`--${name} is given twice (vzctl keeps only one of them)`);
    }
    seen.add(name);
    if (opt.cls === "safe" || value === null) return;
    if (opt.cls === "resource") {
      if (policy.loosen.has(name)) return;
      const bad = baselines.map((b) => ({ b, what: loosens(name, value, b.values) }))
        .filter((x) => x.what !== null);
      if (bad.length === 0) return;
      const where = bad.length < baselines.length ? ` on ${bad[0].b.where}` : "";
      refuse(
        `${shown} loosens ${bad[0].what}${where}: RAW may only tighten resources; ` +
          allowHint(name, "RAW_LOOSEN"),
      );
    }
    const allowed = policy.allow.get(name);
    if (allowed === null) return;
    const alts = [...(DEFAULT_VALUES[name] ?? []), ...(allowed ?? [])];
    const missing = uncovered(opt, value, alts);
    if (missing === null) return;
    refuse(`${shown} is refused: it ${opt.risk}; ${allowHint(missing, "RAW_ALLOW")}`);
  });
}
