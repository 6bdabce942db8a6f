/**
 * The `vzctl set` options onevz lets a template pass through RAW = [ TYPE = "ovz", DATA = … ],
 * with their arity (whether the option takes a value) and a check of the value.
 *
 * Options that would move the container's storage (`--private`, `--root`), change how vzctl
 * itself behaves (`--save`, `--force`, `--setmode`, `--skiplock`, `--quiet`, `--verbose`) or
 * run code on the node (`--applyconfig` reads host files) are deliberately absent: onevz
 * chooses those, a template may not.
 */
import { checkDiskQuota, hasControlChar, isUbcName, parseUbcPair, show } from "./units.ts";

export interface VzctlOption {
  /** Without the leading dashes, as vzctl spells it. */
  name: string;
  /** true when the option takes one value (the next token, or `--name=value`). */
  takesValue: boolean;
  /** Throws RangeError with a reason when the value is not acceptable. */
  check?: (value: string) => void;
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

/** vzctl size with unit: `512M`, `1G`, bytes without suffix. */
const SIZE = pattern(/^[0-9]{1,19}[KMGTkmgt]?$/, "a size (number with optional K/M/G/T)");
const IP_ADDR = pattern(/^[0-9A-Fa-f:.]{2,45}(\/[0-9]{1,3})?$/, "an IP address");
const IFNAME = pattern(/^[A-Za-z0-9_.-]{1,15}$/, "an interface name");
const MAC = pattern(/^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/, "a MAC address");
const CPUMASK = pattern(
  /^(all|auto|[0-9]{1,4}(-[0-9]{1,4})?(,[0-9]{1,4}(-[0-9]{1,4})?)*)$/,
  "a CPU mask",
);
const TEXT = (v: string) => {
  if (hasControlChar(v)) throw new RangeError(`${show(v)} contains control characters`);
};
const YESNO = oneOf("yes", "no");

/** Percent of one CPU (`25`), or of all CPUs (`50%`, at most 100%). */
export function checkCpuLimit(v: string): void {
  const m = /^([0-9]{1,7})(%?)$/.exec(v);
  if (!m || (m[2] === "%" && Number(m[1]) > 100)) {
    throw new RangeError(
      `${show(v)} is not a percentage of one CPU (N) or of all CPUs (N%, N≤100)`,
    );
  }
}

const TABLE: VzctlOption[] = [
  ...UBC_OPTIONS.map((name) => ({
    name,
    takesValue: true,
    check: (v: string) => void parseUbcPair(name.toUpperCase(), v),
  })),
  { name: "ram", takesValue: true, check: SIZE },
  { name: "swap", takesValue: true, check: SIZE },
  {
    name: "vm_overcommit",
    takesValue: true,
    check: pattern(/^[0-9]{1,4}(\.[0-9]{1,4})?$/, "a ratio"),
  },
  { name: "cpuunits", takesValue: true, check: intRange(8, 500000) },
  { name: "cpuweight", takesValue: true, check: intRange(1, 500000) },
  { name: "cpulimit", takesValue: true, check: checkCpuLimit },
  { name: "cpus", takesValue: true, check: intRange(1, 4096) },
  { name: "cpumask", takesValue: true, check: CPUMASK },
  { name: "nodemask", takesValue: true, check: CPUMASK },
  { name: "diskspace", takesValue: true, check: (v) => void checkDiskQuota("diskspace", v) },
  { name: "diskinodes", takesValue: true, check: (v) => void checkDiskQuota("diskinodes", v) },
  { name: "quotatime", takesValue: true, check: intRange(0, 2147483647) },
  { name: "quotaugidlimit", takesValue: true, check: intRange(0, 2147483647) },
  { name: "ioprio", takesValue: true, check: intRange(0, 7) },
  { name: "iolimit", takesValue: true, check: SIZE },
  { name: "iopslimit", takesValue: true, check: intRange(0, 2147483647) },
  { name: "ipadd", takesValue: true, check: IP_ADDR },
  { name: "ipdel", takesValue: true, check: (v) => v === "all" ? undefined : IP_ADDR(v) },
  { name: "hostname", takesValue: true, check: pattern(/^[A-Za-z0-9.-]{1,253}$/, "a hostname") },
  { name: "nameserver", takesValue: true, check: (v) => v === "inherit" ? undefined : IP_ADDR(v) },
  {
    name: "searchdomain",
    takesValue: true,
    check: pattern(/^[A-Za-z0-9. -]{1,253}$/, "a domain list"),
  },
  {
    name: "netif_add",
    takesValue: true,
    check: pattern(/^[A-Za-z0-9_.:,-]{1,120}$/, "ifname[,mac,host_ifname,host_mac,bridge]"),
  },
  {
    name: "netif_del",
    takesValue: true,
    check: pattern(/^(all|[A-Za-z0-9_.-]{1,15})$/, "an interface name or all"),
  },
  { name: "ifname", takesValue: true, check: IFNAME },
  { name: "mac", takesValue: true, check: MAC },
  { name: "host_ifname", takesValue: true, check: IFNAME },
  { name: "host_mac", takesValue: true, check: MAC },
  { name: "bridge", takesValue: true, check: IFNAME },
  { name: "mac_filter", takesValue: true, check: oneOf("on", "off") },
  { name: "onboot", takesValue: true, check: YESNO },
  { name: "bootorder", takesValue: true, check: intRange(0, 2147483647) },
  { name: "disabled", takesValue: true, check: YESNO },
  { name: "noatime", takesValue: true, check: YESNO },
  {
    name: "meminfo",
    takesValue: true,
    check: pattern(
      /^(none|pages:[0-9]{1,19}|privvmpages:[0-9]{1,6})$/,
      "none|pages:N|privvmpages:N",
    ),
  },
  {
    name: "iptables",
    takesValue: true,
    check: pattern(/^[A-Za-z0-9_ ]{1,400}$/, "a list of iptables modules"),
  },
  {
    name: "netfilter",
    takesValue: true,
    check: oneOf("disabled", "stateless", "stateful", "full"),
  },
  {
    name: "features",
    takesValue: true,
    check: pattern(/^[A-Za-z0-9_]+:(on|off)(,[A-Za-z0-9_]+:(on|off))*$/, "name:on|off[,…]"),
  },
  {
    name: "capability",
    takesValue: true,
    check: pattern(/^[A-Za-z0-9_]+:(on|off)(,[A-Za-z0-9_]+:(on|off))*$/, "capname:on|off[,…]"),
  },
  {
    name: "devnodes",
    takesValue: true,
    check: pattern(/^[A-Za-z0-9_\/.-]+:(r|w|rw|q|none)+$/, "device:r|w|rw|none"),
  },
  {
    name: "devices",
    takesValue: true,
    check: pattern(
      /^(b|c):[0-9]{1,4}:([0-9]{1,7}|all):(r|w|rw|q|none)+$/,
      "b|c:major:minor|all:r|w|rw|none",
    ),
  },
  { name: "description", takesValue: true, check: TEXT },
  { name: "name", takesValue: true, check: pattern(/^[A-Za-z0-9_.-]{1,64}$/, "a container name") },
  { name: "stop-timeout", takesValue: true, check: intRange(0, 86400) },
  { name: "ha_enable", takesValue: true, check: YESNO },
  { name: "ha_prio", takesValue: true, check: intRange(0, 2147483647) },
  {
    name: "userpasswd",
    takesValue: true,
    check: pattern(/^[^:\s]{1,32}:[^\s]{1,128}$/, "user:password"),
  },
  { name: "reset_ub", takesValue: false },
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

/**
 * Validate RAW tokens against the option table and return them as canonical argv
 * (`--name value` pairs; `--name=value` is split). Throws RangeError naming the option.
 */
export function checkRawArgs(tokens: readonly string[]): string[] {
  const argv: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i];
    const m = /^--([A-Za-z0-9_-]+)(?:=([\s\S]*))?$/.exec(tok);
    if (!m) throw new RangeError(`${show(tok)} is not a --option (values follow their option)`);
    const opt = findSetOption(m[1]);
    if (!opt) throw new RangeError(`--${m[1]} is not a vzctl set option onevz accepts`);
    if (!opt.takesValue) {
      if (m[2] !== undefined) throw new RangeError(`--${opt.name} takes no value`);
      argv.push(`--${opt.name}`);
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
    argv.push(`--${opt.name}`, value);
  }
  return argv;
}
