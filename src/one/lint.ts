/**
 * Template mistakes that are still valid templates: a misspelt attribute (`CPUUNIT`,
 * `CONTEXT/FIREWALLl`), a beancounter outside MEMORY, an OS template name inside a DISK that
 * oned rewrites. Each becomes one warning with the fix; deploy prints them on stderr and goes
 * on, plan shows them. Templates carry custom attributes, so a name is only reported when it
 * is one typing slip away from a name OpenNebula 2.2.1 or onevz reads. Pure.
 */
import { UBC_UNITS } from "../ovz/units.ts";
import type { TemplateDoc } from "./template.ts";

/** Top-level attributes OpenNebula 2.2.1 itself reads or adds (VM template, oned, drivers). */
export const OPENNEBULA_ATTRIBUTES: readonly string[] = [
  "NAME",
  "VMID",
  "CPU",
  "VCPU",
  "MEMORY",
  "OS",
  "FEATURES",
  "DISK",
  "NIC",
  "INPUT",
  "GRAPHICS",
  "CONTEXT",
  "REQUIREMENTS",
  "RANK",
  "RAW",
  "EC2",
];

/** Top-level attributes onevz reads (README §7). */
export const ONEVZ_ATTRIBUTES: readonly string[] = [
  "ONBOOT",
  "CPUUNITS",
  "CPULIMIT",
  "CPUS",
  "CPUMASK",
  "DISKSPACE",
  "DISKINODES",
  "OSTEMPLATE",
];

/** Vector keys OpenNebula or onevz reads, per vector attribute. */
export const VECTOR_KEYS: Readonly<Record<string, readonly string[]>> = {
  DISK: [
    "IMAGE",
    "IMAGE_ID",
    "SOURCE",
    "TYPE",
    "SIZE",
    "FORMAT",
    "TARGET",
    "BUS",
    "DRIVER",
    "READONLY",
    "CLONE",
    "SAVE",
    "SAVE_AS",
    "DISK_ID",
    "DISKSPACE",
    "DISKINODES",
  ],
  NIC: ["NETWORK", "NETWORK_ID", "IP", "MAC", "BRIDGE", "TARGET", "SCRIPT", "MODEL"],
  CONTEXT: ["HOSTNAME", "NAMESERVER", "FILES", "FIREWALL", "NETMASK", "GATEWAY", "TARGET"],
  RAW: ["TYPE", "DATA"],
};

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/**
 * The known name `name` is most likely a slip of: one edit away for names of 4+ letters, two
 * for 9+. Undefined when it is known itself or near none (a custom attribute).
 */
export function suggest(name: string, known: readonly string[]): string | undefined {
  const n = name.toUpperCase();
  if (known.includes(n) || n.length < 4) return undefined;
  const allowed = n.length >= 9 ? 2 : 1;
  let best: string | undefined;
  let bestDistance = allowed + 1;
  for (const k of known) {
    const dist = editDistance(n, k);
    if (dist < bestDistance) [best, bestDistance] = [k, dist];
  }
  return best;
}

/**
 * Warnings for a template (or the defaults file: `where` names it, e.g. "vmm_ssh_ovz.conf").
 * Values are not judged here (spec.ts validates them); only names and placement.
 */
export function lintTemplate(doc: TemplateDoc, where = ""): string[] {
  const at = (label: string) => (where ? `${where}: ${label}` : label);
  const out: string[] = [];
  const topKnown = [...OPENNEBULA_ATTRIBUTES, ...ONEVZ_ATTRIBUTES];
  for (const [name, list] of doc.attributes) {
    if (Object.hasOwn(UBC_UNITS, name)) {
      out.push(at(
        `${name} is a beancounter and is ignored outside MEMORY: write it inside ` +
          `MEMORY = [ ${name} = "barrier:limit", … ]`,
      ));
      continue;
    }
    if (!topKnown.includes(name)) {
      const near = suggest(name, topKnown);
      if (near) {
        out.push(
          at(`${name} is not an attribute OpenNebula or onevz reads: did you mean ${near}?`),
        );
      }
      continue;
    }
    const keys = VECTOR_KEYS[name];
    if (!keys) continue;
    list.forEach((value, i) => {
      if (typeof value === "string") return;
      const label = name === "CONTEXT" ? name : `${name} ${i}`;
      for (const key of Object.keys(value)) {
        if (keys.includes(key)) continue;
        if (name === "DISK" && (key === "OSTEMPLATE" || key === "DISTRO")) {
          out.push(at(
            `${label}/${key}: onevz reads the OS template name from the top-level ` +
              `OSTEMPLATE = "…" (oned rewrites a DISK that uses IMAGE or IMAGE_ID and drops ` +
              `its other keys): move it out of the DISK as OSTEMPLATE`,
          ));
          continue;
        }
        const near = suggest(key, keys);
        if (!near) continue;
        const what = name === "CONTEXT"
          ? ` (${key} is passed to context.sh as a plain variable; onevz acts on ${near})`
          : "";
        out.push(at(`${label}/${key}: did you mean ${label}/${near}?${what}`));
      }
    });
  }
  return out;
}
