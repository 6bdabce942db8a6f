/**
 * Pure parsers for what OpenVZ tools and the OpenVZ kernel print. No I/O here: callers read
 * the text through a Host and hand it over. Formats are documented in
 * /work/shared/reference/openvz-tools.md (§1.4 status, §1.8 config files, §2 vzlist, §3 /proc).
 *
 * Counters that can exceed 2^53 (vestat nanoseconds) are returned as bigint; beancounter values
 * are numbers, with LONG_MAX ("unlimited") mapped to Infinity.
 */

/** 9223372036854775807: what the kernel and vzctl print for "unlimited". */
export const LONG_MAX = 9223372036854775807n;

// ---------------------------------------------------------------------------------------------
// vzctl status

export interface VzctlStatus {
  ctid: string;
  /** Word 3: `exist` (true) or `deleted` (false). */
  exists: boolean;
  /** Word 4: `mounted` / `unmounted`. */
  mounted: boolean;
  /** Word 5: `running` (true); `down`, `paused`, `suspended` (OpenVZ 7) are false. */
  running: boolean;
  /** Optional word 6 `suspended` (default dump file present), or word 5 `suspended`/`paused`. */
  suspended: boolean;
}

/**
 * `CTID 101 exist mounted running [suspended]` (legacy vzctl) or
 * `VEID 101 exist mounted running|paused|suspended|down` (vzctl 7). Returns undefined for any
 * other line. Only the first line that looks like a status line is used.
 */
export function parseVzctlStatus(text: string): VzctlStatus | undefined {
  for (const line of text.split("\n")) {
    const w = line.trim().split(/\s+/);
    if (w.length < 5 || (w[0] !== "CTID" && w[0] !== "VEID")) continue;
    if (w[2] !== "exist" && w[2] !== "deleted") continue;
    return {
      ctid: w[1],
      exists: w[2] === "exist",
      mounted: w[3] === "mounted",
      running: w[4] === "running",
      suspended: w[4] === "suspended" || w[4] === "paused" || w[5] === "suspended",
    };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// vzlist -H -o f1,f2,…

/**
 * Rows of `vzlist -H -o <fields>`: one record per non-empty line, values split on blanks,
 * `-` → null. The last field takes the rest of the line (so `ip` may come last with several
 * addresses). A header line (when -H was forgotten) is skipped when its first word is the
 * upper-case name of the first field.
 */
export function parseVzlistRows(
  text: string,
  fields: readonly string[],
): Record<string, string | null>[] {
  const rows: Record<string, string | null>[] = [];
  for (const line of text.split("\n")) {
    const trimmed = line.trim();
    if (!trimmed) continue;
    const words = trimmed.split(/\s+/);
    const header = fields[0] === "ctid" || fields[0] === "veid" || fields[0] === "vpsid"
      ? "CTID"
      : fields[0]?.toUpperCase();
    if (rows.length === 0 && words[0] === header) continue;
    const row: Record<string, string | null> = {};
    fields.forEach((f, i) => {
      const value = i === fields.length - 1 ? words.slice(i).join(" ") : words[i];
      row[f] = value === undefined || value === "" || value === "-" ? null : value;
    });
    rows.push(row);
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// /proc/user_beancounters and /proc/bc/resources

export interface Beancounter {
  held: number;
  maxheld: number;
  barrier: number;
  limit: number;
  failcnt: number;
}

/** Per container id: resource name → values. `dummy` rows are dropped. */
export type BeancounterTable = Map<number, Record<string, Beancounter>>;

function ubcNumber(text: string): number {
  const n = BigInt(text);
  return n >= LONG_MAX ? Infinity : Number(n);
}

/**
 * Parse /proc/user_beancounters (Version line, header, 24 rows per CT with `dummy` rows),
 * /proc/bc/resources (no dummies, adds swappages) or, given its owner, the per-container
 * /proc/bc/<id>/resources (the same rows without the id column). Works for RHEL5/6 (`   101:  kmemsize`) and
 * OpenVZ 7 (`   101: kmemsize`) layouts: rows are matched with a regex, not by column.
 */
export function parseBeancounters(text: string, ownerId?: number): BeancounterTable {
  const table: BeancounterTable = new Map();
  // /proc/bc/<id>/resources has no id column: its rows belong to ownerId.
  let current: Record<string, Beancounter> | undefined;
  if (ownerId !== undefined) table.set(ownerId, current = {});
  const row = /^\s*(?:(\d+):)?\s*([a-z_]+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$/;
  for (const line of text.split("\n")) {
    const m = row.exec(line);
    if (!m) continue;
    if (m[1] !== undefined) {
      const id = Number(m[1]);
      current = table.get(id) ?? {};
      table.set(id, current);
    }
    if (!current || m[2] === "dummy") continue;
    current[m[2]] = {
      held: ubcNumber(m[3]),
      maxheld: ubcNumber(m[4]),
      barrier: ubcNumber(m[5]),
      limit: ubcNumber(m[6]),
      failcnt: ubcNumber(m[7]),
    };
  }
  return table;
}

// ---------------------------------------------------------------------------------------------
// One container's part of a /proc table

/**
 * The part of a /proc table that belongs to one container, for the full parsers above and
 * below: its line (`/proc/vz/vestat`, `/proc/vz/venetstat`, `/proc/vz/veinfo`), or with
 * `block` its `<id>:` row and the rows that follow up to the next `<id>:` (beancounters).
 * Poll reads one container out of tables that list every container on the node, megabytes
 * at 1000 containers: a regex search finds its place without splitting the rest into lines.
 */
export function veidSection(text: string, veid: number, opts: { block?: boolean } = {}): string {
  if (!Number.isSafeInteger(veid) || veid < 0) return "";
  // A plain substring search (a multi-line regex is ten times slower on megabytes), keeping
  // the hit that starts a line: only blanks before it, then `:` (block) or a blank (row).
  const id = String(veid);
  const needle = opts.block ? `${id}:` : id;
  let from = -1;
  for (let i = text.indexOf(needle); i >= 0 && from < 0; i = text.indexOf(needle, i + 1)) {
    let j = i - 1;
    while (j >= 0 && (text[j] === " " || text[j] === "\t")) j--;
    const next = text[i + needle.length];
    if ((j < 0 || text[j] === "\n") && (opts.block || next === " " || next === "\t")) from = j + 1;
  }
  if (from < 0) return "";
  const eol = text.indexOf("\n", from);
  let to = eol < 0 ? text.length : eol + 1;
  if (opts.block) {
    const nextBlock = /^[ \t]*\d+:/gm;
    nextBlock.lastIndex = to;
    to = nextBlock.exec(text)?.index ?? text.length;
  }
  return text.slice(from, to);
}

// ---------------------------------------------------------------------------------------------
// /proc/vz/vestat

export interface VestatRow {
  veid: number;
  /** Columns 2-4: cputime in kernel jiffies. */
  user: bigint;
  nice: bigint;
  system: bigint;
  /** Column 5: uptime in jiffies. */
  uptimeJiffies: bigint;
  /** Column 6: idle (ns on RHEL6, cycles on 2.6.18). */
  idle: bigint;
  /** Column 8: uptime (ns or cycles, same unit as `used`). */
  uptime: bigint;
  /** Column 9: CPU time used, summed over CPUs. */
  used: bigint;
}

/** Rows of /proc/vz/vestat by VEID (running CTs only; CT0 is not listed). */
export function parseVestat(text: string): Map<number, VestatRow> {
  const rows = new Map<number, VestatRow>();
  for (const line of text.split("\n")) {
    const w = line.trim().split(/\s+/);
    if (w.length < 9 || !w.slice(0, 9).every((x) => /^\d+$/.test(x))) continue;
    const n = w.map((x) => (/^\d+$/.test(x) ? BigInt(x) : 0n));
    rows.set(Number(w[0]), {
      veid: Number(w[0]),
      user: n[1],
      nice: n[2],
      system: n[3],
      uptimeJiffies: n[4],
      idle: n[5],
      uptime: n[7],
      used: n[8],
    });
  }
  return rows;
}

/**
 * CPU use in % of one CPU from two vestat samples: 100 × Δused / Δuptime (columns 9 and 8).
 * Without a usable previous sample (none, CT restarted, migrated, counters went backwards) the
 * average since the CT started is returned: 100 × used / uptime.
 */
export function cpuPercent(
  now: { uptime: bigint; used: bigint },
  prev?: { uptime: bigint; used: bigint },
): number {
  if (prev && now.uptime > prev.uptime && now.used >= prev.used) {
    return Number((now.used - prev.used) * 10000n / (now.uptime - prev.uptime)) / 100;
  }
  if (now.uptime <= 0n) return 0;
  return Number(now.used * 10000n / now.uptime) / 100;
}

// ---------------------------------------------------------------------------------------------
// /proc/vz/veinfo

export interface VeinfoRow {
  veid: number;
  classId: number;
  numProcs: number;
  /** venet addresses in configuration order (the kernel lists them in reverse). */
  ips: string[];
}

export function parseVeinfo(text: string): Map<number, VeinfoRow> {
  const rows = new Map<number, VeinfoRow>();
  for (const line of text.split("\n")) {
    const w = line.trim().split(/\s+/);
    if (w.length < 3 || !w.slice(0, 3).every((x) => /^\d+$/.test(x))) continue;
    rows.set(Number(w[0]), {
      veid: Number(w[0]),
      classId: Number(w[1]),
      numProcs: Number(w[2]),
      ips: w.slice(3).reverse(),
    });
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// /proc/net/dev and /proc/vz/venetstat

export interface IfaceCounters {
  rxBytes: bigint;
  txBytes: bigint;
}

/** /proc/net/dev: interface → rx bytes (field 1) and tx bytes (field 9). */
export function parseNetDev(text: string): Map<string, IfaceCounters> {
  const out = new Map<string, IfaceCounters>();
  for (const line of text.split("\n")) {
    const m = /^\s*([^:\s]+):\s*(.*)$/.exec(line);
    if (!m) continue;
    const f = m[2].trim().split(/\s+/);
    if (f.length < 9 || !/^\d+$/.test(f[0]) || !/^\d+$/.test(f[8])) continue;
    out.set(m[1], { rxBytes: BigInt(f[0]), txBytes: BigInt(f[8]) });
  }
  return out;
}

/**
 * Host-side venet counters, /proc/vz/venetstat (the kernel's vznetstat module): one line per
 * container, `<veid>` followed by one `<incoming>/<outgoing>` byte pair per traffic class
 * (16 classes), no header. Incoming is traffic into the container, i.e. its RX. The classes
 * are summed.
 */
export function parseVenetstat(text: string): Map<number, IfaceCounters> {
  const out = new Map<number, IfaceCounters>();
  for (const line of text.split("\n")) {
    const m = /^\s*(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const pairs = [...m[2].matchAll(/(\d+)\s*\/\s*(\d+)/g)];
    if (pairs.length === 0) continue;
    let rxBytes = 0n;
    let txBytes = 0n;
    for (const [, rx, tx] of pairs) {
      rxBytes += BigInt(rx);
      txBytes += BigInt(tx);
    }
    out.set(Number(m[1]), { rxBytes, txBytes });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// CTID.conf and vz.conf

/**
 * Parse a vzctl configuration file (CTID.conf, vz.conf, ve-*.conf-sample) the way vzctl
 * 4.x's `parse_line` reads it: backslash escapes are removed first (`\x` → `x`); blank lines
 * and lines starting with `#` are skipped; surrounding blanks dropped; the key is everything
 * before the first `=` (a line without one is skipped, as the lines of a multi-line
 * FIREWALL value are); a quoted value ends at the line's last `"` (no closing quote: the
 * line is skipped). The **first** occurrence of a key wins, as in vzctl (which warns
 * `duplicate for KEY, ignored` about the others).
 */
export function parseVzConf(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    let line = "";
    for (let i = 0; i < raw.length; i++) {
      if (raw[i] === "\\" && i + 1 < raw.length) line += raw[++i];
      else if (raw[i] !== "\\") line += raw[i];
    }
    line = line.replace(/^\s+/, "").replace(/\s+$/, "");
    if (!line || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const key = line.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) continue;
    let value = line.slice(eq + 1);
    if (value.startsWith('"')) {
      const close = value.lastIndexOf('"');
      if (close === 0) continue; // unmatched quote
      value = value.slice(1, close);
    }
    if (!Object.hasOwn(out, key)) out[key] = value;
  }
  return out;
}

/** Replace `$VEID` / `${VEID}` (and the older `$VPSID`) in a config value, as vzctl does. */
export function expandVeid(value: string, ctid: number | string): string {
  return value.replace(/\$\{?(VEID|VPSID)\}?/g, String(ctid));
}

/** Host-side interface names of a NETIF value (`ifname=eth0,…,host_ifname=veth101.0;…`). */
export function netifHostNames(netif: string | undefined): string[] {
  if (!netif) return [];
  const names: string[] = [];
  for (const dev of netif.split(";")) {
    const pairs = Object.fromEntries(
      dev.split(",").map((kv) => {
        const i = kv.indexOf("=");
        return i < 0 ? [kv.trim(), ""] : [kv.slice(0, i).trim(), kv.slice(i + 1).trim()];
      }),
    );
    if (pairs.host_ifname) names.push(pairs.host_ifname);
  }
  return names;
}
