/**
 * User beancounter (UBC) values and their units, as vzctl 3.x/4.x reads them.
 *
 * A UBC option takes `barrier[:limit]` (limit = barrier when omitted). Each resource has a
 * native unit: pages (4096 bytes on x86/x86_64, the only page size vzctl templates target),
 * bytes, or items. A numeric value may carry a suffix K/M/G/T/P (powers of 1024, any case;
 * B means bytes) except item counts, which vzctl rejects with a suffix. `unlimited` is
 * LONG_MAX (9223372036854775807). Values are kept as bigint in native units.
 */

export const PAGE_SIZE_BYTES = 4096;
export const UNLIMITED = 9223372036854775807n;
export const LONG_MAX = UNLIMITED;

export type UbcUnit = "pages" | "bytes" | "items";

/** Every UBC parameter vzctl set knows (upper-case config key → native unit). */
export const UBC_UNITS: Readonly<Record<string, UbcUnit>> = {
  KMEMSIZE: "bytes",
  LOCKEDPAGES: "pages",
  PRIVVMPAGES: "pages",
  SHMPAGES: "pages",
  NUMPROC: "items",
  PHYSPAGES: "pages",
  VMGUARPAGES: "pages",
  OOMGUARPAGES: "pages",
  NUMTCPSOCK: "items",
  NUMFLOCK: "items",
  NUMPTY: "items",
  NUMSIGINFO: "items",
  TCPSNDBUF: "bytes",
  TCPRCVBUF: "bytes",
  OTHERSOCKBUF: "bytes",
  DGRAMRCVBUF: "bytes",
  NUMOTHERSOCK: "items",
  DCACHESIZE: "bytes",
  NUMFILE: "items",
  NUMIPTENT: "items",
  SWAPPAGES: "pages",
};

export type UbcName = keyof typeof UBC_UNITS;

export function isUbcName(name: string): boolean {
  return Object.hasOwn(UBC_UNITS, name.toUpperCase());
}

/** A parsed `barrier:limit` pair, in the resource's native unit. */
export interface UbcPair {
  barrier: bigint;
  limit: bigint;
}

const SUFFIX_BYTES: Record<string, bigint> = {
  B: 1n,
  K: 1024n,
  M: 1024n ** 2n,
  G: 1024n ** 3n,
  T: 1024n ** 4n,
  P: 1024n ** 5n,
};

/**
 * Parse one UBC number (`65536`, `512M`, `unlimited`) into native units.
 * Throws RangeError with a short reason; callers add the attribute name.
 */
export function parseUbcNumber(text: string, unit: UbcUnit): bigint {
  if (text.toLowerCase() === "unlimited") return UNLIMITED;
  const m = /^([0-9]{1,20})([A-Za-z]?)$/.exec(text);
  if (!m) {
    throw new RangeError(
      `${show(text)} is not a number, a number with K/M/G/T suffix, or unlimited`,
    );
  }
  const digits = BigInt(m[1]);
  const suffix = m[2].toUpperCase();
  let value: bigint;
  if (suffix === "") {
    value = digits;
  } else {
    const mult = SUFFIX_BYTES[suffix];
    if (mult === undefined) {
      throw new RangeError(`${show(text)} has an unknown suffix ${show(m[2])}`);
    }
    if (unit === "items") throw new RangeError(`${show(text)}: item counts take no suffix`);
    const bytes = digits * mult;
    value = unit === "pages" ? bytes / BigInt(PAGE_SIZE_BYTES) : bytes;
  }
  if (value > UNLIMITED) throw new RangeError(`${show(text)} exceeds ${UNLIMITED}`);
  return value;
}

/** Parse `barrier[:limit]` for the named resource (e.g. "PRIVVMPAGES", "65536:69632"). */
export function parseUbcPair(name: string, text: string): UbcPair {
  const unit = UBC_UNITS[name.toUpperCase()];
  if (!unit) throw new RangeError(`${show(name)} is not a beancounter`);
  const parts = text.split(":");
  if (parts.length > 2 || parts.some((p) => p === "")) {
    throw new RangeError(`${show(text)} is not barrier[:limit]`);
  }
  const barrier = parseUbcNumber(parts[0], unit);
  const limit = parts.length === 2 ? parseUbcNumber(parts[1], unit) : barrier;
  return { barrier, limit };
}

/** Format one native value as vzctl writes it (LONG_MAX → "unlimited"). */
export function formatUbcNumber(value: bigint): string {
  return value >= UNLIMITED ? "unlimited" : value.toString();
}

/** Format a pair as `barrier:limit` (always both parts, so the argv is explicit). */
export function formatUbcPair(pair: UbcPair): string {
  return `${formatUbcNumber(pair.barrier)}:${formatUbcNumber(pair.limit)}`;
}

/** Megabytes → 4 KiB pages. */
export function mbToPages(megabytes: number): bigint {
  return (BigInt(megabytes) * 1024n * 1024n) / BigInt(PAGE_SIZE_BYTES);
}

/** Megabytes → bytes. */
export function mbToBytes(megabytes: number): bigint {
  return BigInt(megabytes) * 1024n * 1024n;
}

/** Megabytes as a vzctl size argument with an explicit unit ("1024M"). */
export function mbArg(megabytes: number): string {
  return `${megabytes}M`;
}

const DISK_SUFFIX_KB: Record<string, bigint> = {
  "": 1n,
  K: 1n,
  M: 1024n,
  G: 1024n ** 2n,
  T: 1024n ** 3n,
};

/** One disk quota number in native units (KB for diskspace, inodes), or null when malformed. */
function diskQuotaNumber(kind: "diskspace" | "diskinodes", part: string): bigint | null {
  const m = kind === "diskspace"
    ? /^([0-9]{1,19})(?:\.([0-9]{1,6}))?([KMGTkmgt]?)$/.exec(part)
    : /^([0-9]{1,19})()()$/.exec(part);
  if (!m) return null;
  const mult = DISK_SUFFIX_KB[m[3].toUpperCase()];
  const frac = m[2] ?? "";
  // Integer part times the unit, plus the fraction of the unit (vzctl truncates).
  return BigInt(m[1]) * mult + (BigInt(frac || "0") * mult) / 10n ** BigInt(frac.length);
}

/**
 * Disk quota value (`--diskspace`, KB unless suffixed; `--diskinodes`, items): soft[:hard],
 * each a decimal (diskspace: with an optional fraction and K/M/G/T suffix). Returns the text
 * unchanged when vzctl 4.x accepts it (vzctl normalises it), throws RangeError otherwise.
 * `unlimited` is refused: vzctl 4.11.1 rejects it (exit 21) although 3.0.x accepted it.
 */
export function checkDiskQuota(kind: "diskspace" | "diskinodes", text: string): string {
  diskQuotaPair(kind, text);
  return text;
}

/** The soft and hard values of a valid disk quota text, in KB (diskspace) or inodes. */
export function diskQuotaPair(kind: "diskspace" | "diskinodes", text: string): [bigint, bigint] {
  const parts = text.split(":");
  if (parts.some((p) => p.toLowerCase() === "unlimited")) {
    throw new RangeError(
      `${show(text)}: vzctl 4.x refuses "unlimited" for --${kind} (exit 21, Bad parameter); ` +
        (kind === "diskspace"
          ? "give a size in KB or with K/M/G/T, e.g. 100G:110G, or leave it out to keep the node's default quota"
          : "give an inode count, e.g. 2000000:2200000, or leave it out to keep the node's default quota"),
    );
  }
  const values = parts.length <= 2 ? parts.map((p) => diskQuotaNumber(kind, p)) : [null];
  if (values.some((v) => v === null)) {
    throw new RangeError(
      kind === "diskspace"
        ? `${show(text)} is not soft[:hard] in KB (or with a K/M/G/T suffix)`
        : `${show(text)} is not soft[:hard] as inode counts`,
    );
  }
  for (const v of values) {
    if (v! > UNLIMITED) throw new RangeError(`${show(text)} exceeds ${UNLIMITED}`);
  }
  const soft = values[0]!;
  return [soft, values[1] ?? soft];
}

/** A value for an error message: JSON-quoted (so control characters stay visible), shortened. */
export function show(value: string): string {
  const v = value.length > 64 ? value.slice(0, 61) + "..." : value;
  return JSON.stringify(v);
}

/** True when the text holds a control character (C0 or DEL) other than those in `allow`. */
export function hasControlChar(text: string, allow = ""): boolean {
  for (const ch of text) {
    const c = ch.charCodeAt(0);
    if ((c < 0x20 || c === 0x7f) && !allow.includes(ch)) return true;
  }
  return false;
}
