/**
 * Node checks for vzfirewall (facts: /work/shared/reference/vzfirewall-versions.md): which
 * version the node has, the Perl modules that version needs and whether it starts, and
 * whether `vzfirewall -t` gets through the node's current container configs (one config
 * without IP_ADDRESS, or one host name that does not resolve, stops it for every container).
 * One probe script, one ssh round trip; evaluation is pure.
 */
import type { NodeCheck } from "./registry.ts";
import { type CheckResult, fail, firstLine, ok, type Probes, warn } from "./types.ts";

/** The Perl modules each vzfirewall version loads. */
export function perlModulesFor(version: string): string[] {
  const n = Math.round(parseFloat(version) * 100);
  const m = ["strict", "File::Basename", "POSIX"];
  if (n >= 107) m.push("Getopt::Long");
  if (n >= 109) m.push("Pod::Usage");
  if (n >= 113) m.push("Switch");
  return m;
}

const FIND = 'PATH="$PATH:/usr/sbin:/sbin"; fw=$(command -v vzfirewall) || exit 127';
/** Run vzfirewall as the hook does: directly as root, else through `sudo -n`. */
const AS_HOOK = 'if [ "$(id -u)" = 0 ]; then "$fw" "$@"; else sudo -n "$fw" "$@"; fi';

/** The probe snippets (fixed text, no values from outside). */
export function vzfirewallProbes(): Record<string, string> {
  return {
    "vzfw:path": `${FIND}; echo "$fw"`,
    // 1.07+ answer --version; 1.04–1.06 print a usage with "Version: 1.0N, DATE" (exit 255)
    "vzfw:version": `${FIND}; "$fw" --version 2>&1`,
    "vzfw:declared":
      `${FIND}; sed -n 's/^my \\$VERSION *= *"\\([0-9.]*\\).*/\\1/p' "$fw" | head -n 1`,
    "vzfw:perl": `perl -e 'print "$]\\n"'`,
    // stdout (the rules) is dropped; the end of stderr holds the reason of a failure
    "vzfw:test":
      `${FIND}; run() { ${AS_HOOK}; }; out=$(run -t 2>&1 >/dev/null); rc=$?; printf '%s\\n' "$out" | tail -n 3; exit $rc`,
  };
}

export interface VzfirewallFacts {
  scope: string;
  probes: Probes;
}

/** `vzfirewall 1.14, 2014-01-27` or a usage with `Version: 1.04, 2010-03-04`. */
export function parseVzfirewallVersion(text: string): string | undefined {
  return /^vzfirewall (1\.\d+)/m.exec(text)?.[1] ?? /Version:\s*(1\.\d+)/.exec(text)?.[1];
}

/** Evaluate the vzfirewall facts (pure). No vzfirewall: nothing to say (node.tool reports it). */
export function evaluateVzfirewall(f: VzfirewallFacts): CheckResult[] {
  const p = f.probes;
  const s = f.scope;
  const path = p["vzfw:path"];
  if (!path || path.rc !== 0) return [];
  const out: CheckResult[] = [];
  const vOut = p["vzfw:version"]?.out ?? "";
  const version = parseVzfirewallVersion(vOut) ?? (p["vzfw:declared"]?.out.trim() || undefined);
  const missing = /Can't locate (\S+)\.pm in @INC/.exec(vOut)?.[1]?.replaceAll("/", "::");
  const perl = p["vzfw:perl"];
  const mods = version ? perlModulesFor(version) : undefined;
  const needs = mods ? ` (Perl modules ${mods.join(", ")})` : "";
  if (!perl || perl.rc !== 0) {
    out.push(fail(
      "node.vzfirewall.perl",
      s,
      `vzfirewall ${version ?? ""} is a Perl script and the node has no perl${needs}`.replace(
        "  ",
        " ",
      ),
      "install Perl on the node (yum install perl / apt-get install perl)",
    ));
    return out;
  }
  if (missing) {
    const hint = missing === "Switch"
      ? "Switch left Perl's core in 5.14 (vzfirewall 1.13+ needs it): install perl-Switch (yum) or libswitch-perl (apt), or use vzfirewall 1.12"
      : `install the Perl module ${missing}`;
    out.push(fail(
      "node.vzfirewall.perl",
      s,
      `vzfirewall${
        version ? " " + version : ""
      } does not start: Perl ${perl.out.trim()} lacks the module ${missing}${needs}; no container's FIREWALL rules are applied`,
      hint,
    ));
    return out;
  }
  if (!version) {
    out.push(warn(
      "node.vzfirewall.version",
      s,
      `vzfirewall (${path.out.trim()}) did not tell its version: ${firstLine(vOut) || "no output"}`,
    ));
  } else {
    const forms = Math.round(parseFloat(version) * 100) >= 106
      ? 'reads FIREWALL="…" and #FIREWALL="…"'
      : 'reads FIREWALL="…" only (the form onevz writes)';
    out.push(ok(
      "node.vzfirewall.version",
      s,
      `vzfirewall ${version} (${path.out.trim()}), ${forms}; Perl ${perl.out.trim()} has its modules: ${
        mods!.join(", ")
      }`,
    ));
  }
  const test = p["vzfw:test"];
  if (!test) {
    out.push(warn("node.vzfirewall.test", s, "vzfirewall -t did not run"));
  } else if (test.rc === 0) {
    out.push(ok("node.vzfirewall.test", s, "vzfirewall -t builds the rules of every container"));
  } else {
    const why = test.out.trim().split("\n").pop() ?? "";
    const hint = /Cannot find IP_ADDRESS in (\S+)/.exec(why)
      ? `a container without a venet IP (veth only) stops vzfirewall for the whole node: give it an IP_ADDRESS or move it to a node without vzfirewall`
      : /Cannot resolve (\S+)/.test(why)
      ? "a FIREWALL host name does not resolve on the node: replace it with its address in that container's config"
      : /sudo/.test(why)
      ? "allow vzfirewall through sudo (onevz install --sudoers)"
      : undefined;
    out.push(fail(
      "node.vzfirewall.test",
      s,
      `vzfirewall -t fails on the node's container configs (exit ${test.rc}): ${
        why || "no message"
      }; the vzfirewall hook applies no rule while this lasts`,
      undefined,
      hint ? [hint] : undefined,
    ));
  }
  return out;
}

/** doctor's node check: the probes run in the node's single round trip (checks/registry.ts). */
export const VZFIREWALL_CHECK: NodeCheck = {
  name: "vzfirewall",
  probes: () => vzfirewallProbes(),
  evaluate: (facts) => evaluateVzfirewall({ scope: `node ${facts.name}`, probes: facts.probes }),
};
