/**
 * CONTEXT/FIREWALL: the rules a tenant may give vzfirewall for its own container.
 *
 * vzfirewall (dimikot/vzfirewall, every version) turns each container's FIREWALL value into
 * node-wide iptables-restore input: section lines `[ports]`, `[proto:ports]`, `[*]` and host
 * lines (IPv4, `*`, or a name resolved with `host NAME.` on every run) become
 * `-A FORWARD [-s SRC] -d <this CT's IP> … -j ACCEPT`; `[CUSTOM]` lines are copied verbatim.
 * So only section and address lines stay about the tenant's own container:
 *  - `[CUSTOM]` can add any rule, `COMMIT` and a new table (`*nat` + a DNAT of another
 *    tenant's IP): refused unless the operator allows it (ONEVZ FIREWALL_CUSTOM = "yes");
 *  - a host name that does not resolve makes `vzfirewall -a` die for the whole node, and
 *    one that resolves differently later changes the rules: refused, write the address;
 *  - an IPv6 line is not an address to vzfirewall (it writes IPv4 rules only): it is
 *    looked up as a name and fails the same way: refused;
 *  - ports and protocols are checked as iptables' multiport takes them, since
 *    `iptables-restore -t` failing on one container's rule applies nothing on the node.
 * The value also sits in a config that vzctl parses line by line and shell scripts source
 * (vznetaddbr `. $CONFIGFILE`): no `"`, `=`, `$`, backtick or backslash ever reaches it.
 */
import { isStrictIpv4 } from "../ovz/options.ts";

export interface FirewallOptions {
  /** The operator allows `[CUSTOM]` iptables lines (ONEVZ FIREWALL_CUSTOM = "yes"). */
  allowCustom?: boolean;
}

/** The normalized rules (one per line, comments dropped), or an error naming the line. */
export type FirewallResult = { ok: true; rules: string } | { ok: false; message: string };

/** Protocols iptables' multiport match accepts. */
const PROTOCOLS = ["tcp", "udp", "udplite", "sctp", "dccp"];
/** multiport: at most 15 ports, a range counting as two. */
const MAX_PORTS = 15;
const CUSTOM_HINT =
  "custom iptables lines go into the whole node's firewall (any chain, any table, other tenants' addresses); the operator can allow them with ONEVZ = [ FIREWALL_CUSTOM = \"yes\" ] in vmm_ssh_ovz.conf";

function show(s: string): string {
  return JSON.stringify(s.length > 60 ? s.slice(0, 57) + "…" : s);
}

/** `[…]` content (blanks already removed): an error message, or null when vzfirewall's rule is sound. */
function checkSection(spec: string): string | null {
  if (spec === "*") return null;
  const m = /^([A-Za-z]+):(.*)$/.exec(spec);
  const proto = m ? m[1].toLowerCase() : "tcp";
  const ports = m ? m[2] : spec;
  if (m && !PROTOCOLS.includes(proto)) {
    return `protocol ${show(m[1])} is not one of ${PROTOCOLS.join(", ")}`;
  }
  if (ports === "*") {
    return `${show(spec)} would open every port of every protocol: write [*] for that`;
  }
  let count = 0;
  for (const p of ports.split(",")) {
    const r = /^([0-9]{1,5})(?::([0-9]{1,5}))?$/.exec(p);
    if (!r) {
      return `${show(p)} is not a port or a range (N or N:M; a list is N,M,…)`;
    }
    const lo = Number(r[1]), hi = r[2] === undefined ? lo : Number(r[2]);
    if (lo > 65535 || hi > 65535) return `port ${show(p)} is above 65535`;
    if (hi < lo) return `range ${show(p)} ends below its start`;
    count += r[2] === undefined ? 1 : 2;
  }
  if (count > MAX_PORTS) {
    return `${count} ports (a range counts 2): iptables' multiport takes at most ${MAX_PORTS} per section`;
  }
  return null;
}

/** A source line: `*`, an IPv4 address or network. */
function checkSource(line: string): string | null {
  if (line === "*") return null;
  const [addr, mask, ...more] = line.split("/");
  if (isStrictIpv4(addr) && more.length === 0) {
    if (mask === undefined) return null;
    if (/^([0-9]|[12][0-9]|3[0-2])$/.test(mask)) return null;
    return `${show(line)}: the network prefix must be /0 to /32`;
  }
  if (addr.includes(":")) {
    return `${
      show(line)
    } is IPv6: vzfirewall writes IPv4 rules only and looks this line up as a host name, which stops it for the whole node`;
  }
  if (/^[A-Za-z0-9.-]+$/.test(addr) && /[A-Za-z]/.test(addr) && more.length === 0) {
    return `${
      show(line)
    } is a host name: vzfirewall resolves names on every run and one that does not resolve stops it for the whole node; write the IPv4 address or network instead`;
  }
  return `${
    show(line)
  } is not a source vzfirewall understands (*, an IPv4 address, or address/prefix)`;
}

/** A `[CUSTOM]` line the operator allowed: still nothing vzctl or a shell would interpret. */
function checkCustom(line: string): string | null {
  const withoutThis = line.replaceAll("$THIS", "");
  if (/[=`\\$]/.test(withoutThis)) {
    return `${
      show(line)
    }: custom lines may not contain '=', '$' (other than $THIS), '\\\\' or a backtick (the container config is read by vzctl and sourced by shell scripts)`;
  }
  return null;
}

/**
 * Validate a template's FIREWALL text and return it normalized: one rule or section per
 * line, trimmed, comments (`#`, `;`) dropped, as vzfirewall reads it.
 */
export function parseFirewall(text: string, opts: FirewallOptions = {}): FirewallResult {
  const out: string[] = [];
  let custom = false;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const where = `line ${i + 1}`;
    const raw = lines[i];
    if (raw.includes('"')) {
      return {
        ok: false,
        message:
          `${where}: must not contain '"' (vzfirewall's FIREWALL="…" ends at the first quote)`,
      };
    }
    // vzfirewall: strip leading blanks, then anything from # or ;, then trailing blanks
    const line = raw.replace(/^\s+/, "").replace(/[#;].*$/s, "").replace(/\s+$/, "");
    if (line === "") continue;
    const section = /^\s*\[(.*)\]\s*$/s.exec(line);
    if (section) {
      const spec = section[1].replace(/\s+/g, "");
      if (spec.toLowerCase() === "custom") {
        if (!opts.allowCustom) return { ok: false, message: `${where} [CUSTOM]: ${CUSTOM_HINT}` };
        custom = true;
        out.push("[CUSTOM]");
        continue;
      }
      custom = false;
      const problem = checkSection(spec);
      if (problem) return { ok: false, message: `${where} [${section[1]}]: ${problem}` };
      out.push(`[${spec}]`);
      continue;
    }
    const problem = custom ? checkCustom(line) : checkSource(line);
    if (problem) return { ok: false, message: `${where}: ${problem}` };
    out.push(line);
  }
  return { ok: true, rules: out.join("\n") };
}

/** Whether normalized rules let anything in (a section alone opens nothing). */
export function firewallOpensSomething(rules: string): boolean {
  return rules.split("\n").some((l) => l !== "" && !l.startsWith("["));
}
