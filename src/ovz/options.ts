/**
 * The `vzctl set` options onevz lets a template pass through RAW = [ TYPE = "ovz", DATA = … ],
 * with their arity (whether the option takes a value), a check of the value against what
 * vzctl 4.11.1 accepts, and the option's class for the RAW policy (src/ovz/raw_policy.ts):
 * - resource: allowed by default, but may only tighten what the template's CPU/MEMORY/DISK gave;
 * - safe: allowed by default (it touches only the container itself);
 * - operator: refused unless the defaults file's ONEVZ/RAW_ALLOW names it (it can reach the node,
 *   other tenants' addresses or the node's devices).
 *
 * Options that would move the container's storage (`--private`, `--root`), change how vzctl
 * itself behaves (`--save`, `--force`, `--setmode`, `--skiplock`, `--quiet`, `--verbose`) or
 * run code on the node (`--applyconfig` reads host files) are deliberately absent: onevz
 * chooses those, a template may not.
 */
import { z } from "zod";
import { checkDiskQuota, hasControlChar, isUbcName, parseUbcPair, show } from "./units.ts";

export type OptionClass = "resource" | "safe" | "operator";

export interface VzctlOption {
  /** Without the leading dashes, as vzctl spells it. */
  name: string;
  /** true when the option takes one value (the next token, or `--name=value`). */
  takesValue: boolean;
  /** Throws RangeError with a reason when the value is not acceptable. */
  check?: (value: string) => void;
  cls: OptionClass;
  /** For operator options: what it would hand the container (for the refusal message). */
  risk?: string;
  /** For options whose value is a list (features, capability …): its items. */
  items?: (value: string) => string[];
  /** vzctl accumulates repeated uses (ipadd, features …); other options may appear once. */
  repeatable?: boolean;
}

const UBC_OPTIONS = [
  "kmemsize",
  "lockedpages",
  "privvmpages",
  "shmpages",
  "numproc",
  "physpages",
  "vmguarpages",
  "oomguarpages",
  "numtcpsock",
  "numflock",
  "numpty",
  "numsiginfo",
  "tcpsndbuf",
  "tcprcvbuf",
  "othersockbuf",
  "dgramrcvbuf",
  "numothersock",
  "dcachesize",
  "numfile",
  "numiptent",
  "swappages",
];

/**
 * Feature names vzctl 4.x knows (src/lib/vzfeatures.c of vzctl 4.11.1; the reference files list
 * none of them). Any other name: `Warning: Unknown feature: x:on`, exit 21.
 */
export const FEATURE_NAMES = ["sysfs", "nfs", "sit", "ipip", "ppp", "ipgre", "bridge", "nfsd"];

/** Capability names vzctl accepts (src/lib/cap.c), in vzctl's order; matched without case. */
export const CAPABILITY_NAMES = [
  "CHOWN",
  "DAC_OVERRIDE",
  "DAC_READ_SEARCH",
  "FOWNER",
  "FSETID",
  "KILL",
  "SETGID",
  "SETUID",
  "SETPCAP",
  "LINUX_IMMUTABLE",
  "NET_BIND_SERVICE",
  "NET_BROADCAST",
  "NET_ADMIN",
  "NET_RAW",
  "IPC_LOCK",
  "IPC_OWNER",
  "SYS_MODULE",
  "SYS_RAWIO",
  "SYS_CHROOT",
  "SYS_PTRACE",
  "SYS_PACCT",
  "SYS_ADMIN",
  "SYS_BOOT",
  "SYS_NICE",
  "SYS_RESOURCE",
  "SYS_TIME",
  "SYS_TTY_CONFIG",
  "MKNOD",
  "LEASE",
  "SETVEID",
  "VE_ADMIN",
];

/** iptables modules vzctl's --iptables knows (src/lib/iptables.c). */
export const IPTABLES_MODULES = [
  "ip_tables",
  "iptable_filter",
  "iptable_mangle",
  "ipt_limit",
  "ipt_multiport",
  "ipt_tos",
  "ipt_TOS",
  "ipt_REJECT",
  "ipt_TCPMSS",
  "ipt_tcpmss",
  "ipt_ttl",
  "ipt_LOG",
  "ipt_length",
  "ip_conntrack",
  "ip_conntrack_ftp",
  "ip_conntrack_irc",
  "ipt_conntrack",
  "ipt_state",
  "ipt_helper",
  "iptable_nat",
  "ip_nat_ftp",
  "ip_nat_irc",
  "ipt_REDIRECT",
  "xt_mac",
  "ipt_owner",
];

/** vzctl's CPUMASK_NBITS: a CPU number must be below it (`4096` is exit 21, `4095` is fine). */
export const CPUMASK_BITS = 4096;

function intRange(min: number, max: number) {
  return (v: string) => {
    if (!/^[0-9]{1,10}$/.test(v) || Number(v) < min || Number(v) > max) {
      throw new RangeError(`${show(v)} is not an integer in ${min}..${max}`);
    }
  };
}

function oneOf(...words: string[]) {
  return (v: string) => {
    if (!words.includes(v)) throw new RangeError(`${show(v)} is not one of ${words.join("|")}`);
  };
}

function pattern(re: RegExp, what: string) {
  return (v: string) => {
    if (!re.test(v)) throw new RangeError(`${show(v)} is not ${what}`);
  };
}

const OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
const IPV4_RE = new RegExp(`^${OCTET}(\\.${OCTET}){3}$`);
const ipv6 = z.ipv6();

/** A dotted IPv4 address as vzctl 4.x accepts it: no leading zeros (`010.0.0.1` is exit 21). */
export function isStrictIpv4(s: string): boolean {
  return IPV4_RE.test(s);
}

export function isIpv6Address(s: string): boolean {
  return ipv6.safeParse(s).success;
}

/** `address[/prefix]`, IPv4 (prefix ≤ 32) or IPv6 (prefix ≤ 128). */
export function checkIpAddr(v: string): void {
  const [addr, prefix, ...rest] = v.split("/");
  const v4 = isStrictIpv4(addr);
  const ok = rest.length === 0 && (v4 || isIpv6Address(addr)) &&
    (prefix === undefined || (/^[0-9]{1,3}$/.test(prefix) && Number(prefix) <= (v4 ? 32 : 128)));
  if (!ok) {
    throw new RangeError(
      `${
        show(v)
      } is not an IPv4 or IPv6 address (IPv4 without leading zeros: vzctl refuses 010.0.0.1)`,
    );
  }
}

function checkNameserver(v: string): void {
  if (v === "inherit") return;
  if (!isStrictIpv4(v) && !isIpv6Address(v)) {
    throw new RangeError(`${show(v)} is not an IP address or inherit`);
  }
}

/**
 * A CPU mask as vzctl 4.x parses it: `all`, `auto`, or a comma list of N and A-B with A ≤ B
 * and every CPU below 4096. Returns the CPU set (null for all/auto).
 */
export function parseCpuMask(v: string): Set<number> | null {
  if (v === "all" || v === "auto") return null;
  const cpus = new Set<number>();
  for (const part of v.split(",")) {
    const m = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(part);
    const a = m ? Number(m[1]) : NaN;
    const b = m ? Number(m[2] ?? m[1]) : NaN;
    if (!m || a > b) {
      throw new RangeError(`${show(v)} is not a CPU mask (e.g. 0-2,7, all, auto)`);
    }
    if (b >= CPUMASK_BITS) {
      throw new RangeError(
        `${show(v)} names CPU ${b}: vzctl 4.x accepts CPUs 0..${CPUMASK_BITS - 1} (exit 21 above)`,
      );
    }
    for (let c = a; c <= b; c++) cpus.add(c);
  }
  return cpus;
}

export function checkCpuMask(v: string): void {
  parseCpuMask(v);
}

/** vzctl splits these list values on blanks and commas. */
const listItems = (v: string) => v.split(/[\s,]+/).filter((s) => s !== "");
/** --devices and --devnodes are split on blanks only. */
const blankItems = (v: string) => v.split(/\s+/).filter((s) => s !== "");

function checkItems(items: (v: string) => string[], one: (item: string) => void) {
  return (v: string) => {
    const list = items(v);
    if (list.length === 0) throw new RangeError(`${show(v)} is empty`);
    list.forEach(one);
  };
}

function checkFeature(item: string): void {
  const m = /^([a-z]+):(on|off)$/.exec(item);
  if (!m || !FEATURE_NAMES.includes(m[1])) {
    throw new RangeError(
      `${show(item)} is not name:on|off with a feature vzctl knows (${FEATURE_NAMES.join(", ")})`,
    );
  }
}

function checkCapability(item: string): void {
  const m = /^([A-Za-z_]+):(on|off)$/.exec(item);
  if (!m || !CAPABILITY_NAMES.includes(m[1].toUpperCase())) {
    throw new RangeError(`${show(item)} is not capname:on|off with a capability vzctl knows`);
  }
}

function checkIptablesModule(item: string): void {
  if (!IPTABLES_MODULES.includes(item)) {
    throw new RangeError(`${show(item)} is not an iptables module vzctl knows`);
  }
}

const PERMS = /^(none|r|w|q|rw|rq|wq|rwq)$/;

function checkDevice(item: string): void {
  const m = /^([bc]):([0-9]{1,4}):([0-9]{1,7}|all):([a-z]{1,5})$/.exec(item);
  if (!m || !PERMS.test(m[4])) {
    throw new RangeError(`${show(item)} is not b|c:major:minor|all:r|w|q|rw…|none`);
  }
  if (m[2] === "7") throw new RangeError(`${show(item)}: vzctl refuses loop devices (major 7)`);
}

function checkDevnode(item: string): void {
  const i = item.lastIndexOf(":");
  const name = item.slice(0, i);
  const perms = item.slice(i + 1);
  const plain = /^[A-Za-z0-9_+-][A-Za-z0-9_.+-]*(\/[A-Za-z0-9_+-][A-Za-z0-9_.+-]*)*$/;
  if (i <= 0 || !plain.test(name) || name.split("/").some((s) => s === "." || s === "..")) {
    throw new RangeError(`${show(item)} is not device:perms with a name under /dev (no ., ..)`);
  }
  if (!PERMS.test(perms)) throw new RangeError(`${show(item)}: perms are r, w, q, rw… or none`);
}

const IFNAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;
const MAC_RE = /^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/;
const IFNAME = pattern(IFNAME_RE, "an interface name");
const MAC = pattern(MAC_RE, "a MAC address");

/** The fields of `--netif_add ifname[,mac[,host_ifname[,host_mac[,bridge]]]]`. */
export function netifAddFields(v: string): {
  ifname: string;
  mac: string;
  hostIfname: string;
  hostMac: string;
  bridge: string;
} {
  const f = v.split(",");
  const [ifname, mac = "", hostIfname = "", hostMac = "", bridge = ""] = f;
  const ok = f.length <= 5 && IFNAME_RE.test(ifname) && (mac === "" || MAC_RE.test(mac)) &&
    (hostIfname === "" || IFNAME_RE.test(hostIfname)) && (hostMac === "" || MAC_RE.test(hostMac)) &&
    (bridge === "" || IFNAME_RE.test(bridge));
  if (!ok) throw new RangeError(`${show(v)} is not ifname[,mac,host_ifname,host_mac,bridge]`);
  return { ifname, mac, hostIfname, hostMac, bridge };
}

function checkNetdev(v: string): void {
  IFNAME(v);
  if (/^(venet|tun|tap|lo)/.test(v)) {
    throw new RangeError(`${show(v)}: vzctl refuses venet, tun, tap and lo devices`);
  }
}

const TEXT = (v: string) => {
  if (hasControlChar(v)) throw new RangeError(`${show(v)} contains control characters`);
};
const YESNO = oneOf("yes", "no");
/** vzctl size with unit: `512M`, `1G`, bytes without suffix. */
const SIZE = pattern(/^[0-9]{1,19}[KMGTkmgt]?$/, "a size (number with optional K/M/G/T)");

/** Percent of one CPU (`25`), or of all CPUs (`50%`, at most 100%). */
export function checkCpuLimit(v: string): void {
  const m = /^([0-9]{1,7})(%?)$/.exec(v);
  if (!m || (m[2] === "%" && Number(m[1]) > 100)) {
    throw new RangeError(
      `${show(v)} is not a percentage of one CPU (N) or of all CPUs (N%, N≤100)`,
    );
  }
}

const NET = "can take any address, including another tenant's";
const BRIDGE = "attaches the container to any bridge of the node";

const TABLE: VzctlOption[] = [
  ...UBC_OPTIONS.map((name): VzctlOption => ({
    name,
    takesValue: true,
    check: (v: string) => void parseUbcPair(name.toUpperCase(), v),
    cls: "resource",
  })),
  { name: "ram", takesValue: true, check: SIZE, cls: "resource" },
  { name: "swap", takesValue: true, check: SIZE, cls: "resource" },
  {
    name: "vm_overcommit",
    takesValue: true,
    check: pattern(/^[0-9]{1,4}(\.[0-9]{1,4})?$/, "a ratio"),
    cls: "resource",
  },
  { name: "cpuunits", takesValue: true, check: intRange(8, 500000), cls: "resource" },
  {
    name: "cpuweight",
    takesValue: true,
    check: intRange(1, 500000),
    cls: "operator",
    risk: "sets the CPU share outside what CPU gave",
  },
  { name: "cpulimit", takesValue: true, check: checkCpuLimit, cls: "resource" },
  { name: "cpus", takesValue: true, check: intRange(1, 4096), cls: "resource" },
  { name: "cpumask", takesValue: true, check: checkCpuMask, cls: "resource" },
  { name: "nodemask", takesValue: true, check: checkCpuMask, cls: "resource" },
  {
    name: "diskspace",
    takesValue: true,
    check: (v) => void checkDiskQuota("diskspace", v),
    cls: "resource",
  },
  {
    name: "diskinodes",
    takesValue: true,
    check: (v) => void checkDiskQuota("diskinodes", v),
    cls: "resource",
  },
  {
    name: "quotatime",
    takesValue: true,
    check: intRange(0, 2147483647),
    cls: "operator",
    risk: "lets the container stay above its soft disk quota longer",
  },
  {
    name: "quotaugidlimit",
    takesValue: true,
    check: intRange(0, 2147483647),
    cls: "operator",
    risk: "turns on second-level quotas on the node",
  },
  { name: "ioprio", takesValue: true, check: intRange(0, 7), cls: "resource" },
  { name: "iolimit", takesValue: true, check: SIZE, cls: "resource" },
  { name: "iopslimit", takesValue: true, check: intRange(0, 2147483647), cls: "resource" },
  {
    name: "ipadd",
    takesValue: true,
    check: checkIpAddr,
    cls: "operator",
    risk: NET,
    repeatable: true,
  },
  {
    name: "ipdel",
    takesValue: true,
    check: (v) => v === "all" ? undefined : checkIpAddr(v),
    cls: "operator",
    risk: "removes addresses oned assigned",
    repeatable: true,
  },
  {
    name: "hostname",
    takesValue: true,
    check: pattern(/^[A-Za-z0-9.-]{1,253}$/, "a hostname"),
    cls: "safe",
  },
  { name: "nameserver", takesValue: true, check: checkNameserver, cls: "safe", repeatable: true },
  {
    name: "searchdomain",
    takesValue: true,
    check: pattern(/^[A-Za-z0-9. -]{1,253}$/, "a domain list"),
    cls: "safe",
    repeatable: true,
  },
  {
    name: "netif_add",
    takesValue: true,
    check: (v) => void netifAddFields(v),
    cls: "operator",
    risk: BRIDGE,
    repeatable: true,
  },
  {
    name: "netif_del",
    takesValue: true,
    check: pattern(/^(all|[A-Za-z0-9_.-]{1,15})$/, "an interface name or all"),
    cls: "operator",
    risk: "removes interfaces oned configured",
    repeatable: true,
  },
  { name: "ifname", takesValue: true, check: IFNAME, cls: "operator", risk: BRIDGE },
  { name: "mac", takesValue: true, check: MAC, cls: "operator", risk: "sets any MAC address" },
  { name: "host_ifname", takesValue: true, check: IFNAME, cls: "operator", risk: BRIDGE },
  { name: "host_mac", takesValue: true, check: MAC, cls: "operator", risk: "sets any MAC address" },
  { name: "bridge", takesValue: true, check: IFNAME, cls: "operator", risk: BRIDGE },
  {
    name: "mac_filter",
    takesValue: true,
    check: oneOf("on", "off"),
    cls: "operator",
    risk: "switches off the node's MAC filter, so the container can send as other tenants",
  },
  {
    name: "netdev_add",
    takesValue: true,
    check: checkNetdev,
    cls: "operator",
    risk: "moves a network device of the node into the container",
    repeatable: true,
  },
  {
    name: "netdev_del",
    takesValue: true,
    check: checkNetdev,
    cls: "operator",
    risk: "moves network devices between the container and the node",
    repeatable: true,
  },
  { name: "onboot", takesValue: true, check: YESNO, cls: "safe" },
  { name: "bootorder", takesValue: true, check: intRange(0, 2147483647), cls: "safe" },
  {
    name: "disabled",
    takesValue: true,
    check: YESNO,
    cls: "operator",
    risk: "keeps the container from starting",
  },
  { name: "noatime", takesValue: true, check: YESNO, cls: "safe" },
  {
    name: "meminfo",
    takesValue: true,
    check: pattern(
      /^(none|pages:[0-9]{1,19}|privvmpages:[0-9]{1,6})$/,
      "none|pages:N|privvmpages:N",
    ),
    cls: "safe",
  },
  {
    name: "iptables",
    takesValue: true,
    check: checkItems(listItems, checkIptablesModule),
    cls: "operator",
    risk: "loads netfilter modules of the node for the container",
    items: listItems,
    repeatable: true,
  },
  {
    name: "netfilter",
    takesValue: true,
    check: oneOf("disabled", "stateless", "stateful", "full"),
    cls: "operator",
    risk: "gives the container connection tracking or NAT in the node's kernel",
  },
  {
    name: "features",
    takesValue: true,
    check: checkItems(listItems, checkFeature),
    cls: "operator",
    risk: "turns on kernel features (sysfs, tunnels, bridges, NFS server) for the container",
    items: listItems,
    repeatable: true,
  },
  {
    name: "capability",
    takesValue: true,
    check: checkItems(listItems, checkCapability),
    cls: "operator",
    risk: "gives the container kernel capabilities over the node",
    items: listItems,
    repeatable: true,
  },
  {
    name: "devnodes",
    takesValue: true,
    check: checkItems(blankItems, checkDevnode),
    cls: "operator",
    risk: "gives the container access to the node's devices",
    items: blankItems,
    repeatable: true,
  },
  {
    name: "devices",
    takesValue: true,
    check: checkItems(blankItems, checkDevice),
    cls: "operator",
    risk: "gives the container access to the node's devices",
    items: blankItems,
    repeatable: true,
  },
  {
    name: "pci_add",
    takesValue: true,
    check: pattern(/^([0-9a-f]{4}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/, "a PCI address"),
    cls: "operator",
    risk: "hands a PCI device of the node to the container",
    repeatable: true,
  },
  {
    name: "pci_del",
    takesValue: true,
    check: pattern(/^([0-9a-f]{4}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/, "a PCI address"),
    cls: "operator",
    risk: "moves PCI devices between the container and the node",
    repeatable: true,
  },
  { name: "description", takesValue: true, check: TEXT, cls: "safe" },
  {
    name: "name",
    takesValue: true,
    check: pattern(/^[A-Za-z0-9_.-]{1,64}$/, "a container name"),
    cls: "operator",
    risk: "takes a node-wide name (/etc/vz/names)",
  },
  {
    name: "stop-timeout",
    takesValue: true,
    check: intRange(0, 86400),
    cls: "operator",
    risk: "makes stopping the container hold the node's actions longer",
  },
  {
    name: "userpasswd",
    takesValue: true,
    check: pattern(/^[^:\s]{1,32}:[^\s]{1,128}$/, "user:password"),
    cls: "operator",
    risk: "runs the container's password tools as root from the node",
    repeatable: true,
  },
  { name: "reset_ub", takesValue: false, cls: "safe" },
];

export const VZCTL_SET_OPTIONS: ReadonlyMap<string, VzctlOption> = new Map(
  TABLE.map((o) => [o.name, o]),
);

export function findSetOption(name: string): VzctlOption | undefined {
  return VZCTL_SET_OPTIONS.get(name);
}

/** True for the beancounter options (`--kmemsize` …). */
export function isUbcOption(name: string): boolean {
  return isUbcName(name);
}

/**
 * Split RAW DATA into argv tokens like a shell would for plain words and '…' / "…" quoting,
 * with \ escaping the next character outside single quotes. No expansion of any kind.
 * Throws RangeError on an unterminated quote or a trailing backslash.
 */
export function tokenize(text: string): string[] {
  const out: string[] = [];
  let cur = "";
  let inToken = false;
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote === "'") {
      if (c === "'") quote = null;
      else cur += c;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === "\\" && i + 1 < text.length && `"\\$\``.includes(text[i + 1])) {
        cur += text[++i];
      } else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inToken = true;
    } else if (c === "\\") {
      if (i + 1 >= text.length) throw new RangeError("ends with a lone backslash");
      cur += text[++i];
      inToken = true;
    } else if (/\s/.test(c)) {
      if (inToken) out.push(cur);
      cur = "";
      inToken = false;
    } else {
      cur += c;
      inToken = true;
    }
  }
  if (quote) throw new RangeError(`has an unterminated ${quote} quote`);
  if (inToken) out.push(cur);
  return out;
}

/** One RAW option: its name (table spelling) and value (null for flags). */
export interface RawOption {
  name: string;
  value: string | null;
}

/**
 * Validate RAW tokens against the option table (`--name value` pairs; `--name=value` is
 * split). Throws RangeError naming the option.
 */
export function parseRawOptions(tokens: readonly string[]): RawOption[] {
  const out: RawOption[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i];
    const m = /^--([A-Za-z0-9_-]+)(?:=([\s\S]*))?$/.exec(tok);
    if (!m) throw new RangeError(`${show(tok)} is not a --option (values follow their option)`);
    const opt = findSetOption(m[1]);
    if (!opt) throw new RangeError(`--${m[1]} is not a vzctl set option onevz accepts`);
    if (!opt.takesValue) {
      if (m[2] !== undefined) throw new RangeError(`--${opt.name} takes no value`);
      out.push({ name: opt.name, value: null });
      continue;
    }
    let value = m[2];
    if (value === undefined) {
      if (i + 1 >= tokens.length) throw new RangeError(`--${opt.name} needs a value`);
      value = tokens[++i];
    }
    if (/[\n\r]/.test(value) || value.includes("\0")) {
      throw new RangeError(`--${opt.name}: value contains NUL or newline`);
    }
    if (value.startsWith("-")) {
      throw new RangeError(
        `--${opt.name}: value ${show(value)} starts with '-' (option injection)`,
      );
    }
    try {
      opt.check?.(value);
    } catch (e) {
      throw new RangeError(`--${opt.name} ${(e as Error).message}`);
    }
    out.push({ name: opt.name, value });
  }
  return out;
}

/** RAW options as argv. */
export function rawArgv(options: readonly RawOption[]): string[] {
  return options.flatMap((o) => o.value === null ? [`--${o.name}`] : [`--${o.name}`, o.value]);
}
