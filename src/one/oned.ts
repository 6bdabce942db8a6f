/**
 * What oned does to an operator's template between `onevm create` and the deployment file
 * (OpenNebula 2.2.1, VirtualMachine::insert; reference §3), for `onevz plan` on a template
 * written in OpenNebula syntax. Pure. In order:
 *  1. VMID is added (the new VM's id) and NAME defaults to `one-<vmid>`;
 *  2. a NIC using NETWORK/NETWORK_ID becomes {NETWORK, NETWORK_ID, BRIDGE, IP, MAC[, MODEL]}:
 *     IP is the lease (the NIC's own IP when it names one: oned reserves that address), MAC
 *     is MAC_PREFIX (02:00) followed by the IPv4 bytes, BRIDGE the network's;
 *  3. a DISK using IMAGE/IMAGE_ID becomes the image's attributes {IMAGE, IMAGE_ID, SOURCE,
 *     CLONE, SAVE, TYPE, READONLY, TARGET[, BUS][, DRIVER]}: every other key is dropped;
 *     every DISK gets DISK_ID = its index;
 *  4. CONTEXT values are substituted — `$VAR`, `$VAR[ATTR]`, `$VAR[ATTR, KEY="value"]`,
 *     `$NETWORK[ATTR, NAME="net"]` (or NETWORK_ID=…) — an unknown reference becoming the
 *     empty string, and CONTEXT gets TARGET = hdb.
 * What only oned knows (the VM id, leases, the networks' attributes, an image's NAME from its
 * id) is taken from the options or assumed; every assumption is reported in one line saying
 * which option supplies the real value. Nothing is refused here: a template oned accepts
 * goes on to the same validation a deployment file gets.
 */
import type { NicModel } from "./config.ts";
import { cloneDoc, type TemplateDoc, type Vector } from "./template.ts";

export interface OnedOptions {
  /** The VM id (`onevz plan --vmid`); assumed 0 when absent. */
  vmid?: number;
  /** Virtual network attributes by network NAME or id (`--network Public:DNS=1.2.3.4`). */
  networks?: Record<string, Record<string, string>>;
  /** The driver's NIC_MODEL: a bridge matters only to veth NICs. */
  nicModel?: NicModel;
  /** oned.conf MAC_PREFIX (default 02:00). */
  macPrefix?: string;
}

export interface OnedResult {
  doc: TemplateDoc;
  /** What plan assumed in place of what only oned knows, each with the way to supply it. */
  assumptions: string[];
  /** Template parts oned drops or empties (they never reach deploy), each with the fix. */
  warnings: string[];
}

/** DISK keys Image::disk_attribute keeps from what the user wrote. */
const IMAGE_DISK_KEEPS = ["IMAGE", "IMAGE_ID", "BUS", "TARGET", "DRIVER"];

/** Documentation addresses (RFC 5737) standing in for values only oned knows. */
const NETWORK_PLACEHOLDERS: Record<string, string> = {
  DNS: "192.0.2.53",
  GATEWAY: "192.0.2.1",
  NETMASK: "255.255.255.0",
  NETWORK_ADDRESS: "192.0.2.0",
  BROADCAST: "192.0.2.255",
  BRIDGE: "br0",
};

/** Parse `--network NAME:KEY=VALUE[,KEY=VALUE…]` values into a networks table. */
export function parseNetworkOptions(
  values: readonly string[],
): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const v of values) {
    const m = /^([^:]+):(.+)$/.exec(v);
    if (!m) {
      throw new RangeError(`--network ${JSON.stringify(v)} is not NAME:KEY=VALUE[,KEY=VALUE…]`);
    }
    const net = (out[m[1]] ??= {});
    for (const pair of m[2].split(/,(?=\s*[A-Za-z_][A-Za-z0-9_]*=)/)) {
      const kv = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(pair);
      if (!kv) {
        throw new RangeError(
          `--network ${JSON.stringify(v)}: ${JSON.stringify(pair)} is not KEY=VALUE`,
        );
      }
      net[kv[1].toUpperCase()] = kv[2].trim();
    }
  }
  return out;
}

function macFor(prefix: string, ip: string): string | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
  if (!m) return undefined;
  const hex = m.slice(1).map((b) => Number(b).toString(16).padStart(2, "0"));
  return `${prefix}:${hex.join(":")}`;
}

export function prepareLikeOned(input: TemplateDoc, opts: OnedOptions = {}): OnedResult {
  const doc = cloneDoc(input);
  const assumptions: string[] = [];
  const warnings: string[] = [];
  const networks = opts.networks ?? {};
  const single = (name: string) => {
    const v = doc.attributes.get(name)?.[0];
    return typeof v === "string" ? v : undefined;
  };

  // 1. VMID and NAME.
  let vmid = single("VMID");
  if (vmid === undefined) {
    vmid = String(opts.vmid ?? doc.vmId ?? 0);
    if (opts.vmid === undefined && doc.vmId === undefined) {
      assumptions.push(
        `VMID: oned assigns it at onevm create; plan assumed ${vmid} (give --vmid N)`,
      );
    }
    doc.attributes.set("VMID", [vmid]);
  }
  if (!single("NAME")) doc.attributes.set("NAME", [`one-${vmid}`]);

  // 2. NICs on virtual networks.
  const nics = (doc.attributes.get("NIC") ?? []).map((nic, i): typeof nic => {
    if (typeof nic === "string" || (!nic.NETWORK && !nic.NETWORK_ID)) return nic;
    const netKey = nic.NETWORK || nic.NETWORK_ID;
    const net = networks[netKey];
    const out: Vector = {};
    if (nic.NETWORK) out.NETWORK = nic.NETWORK;
    if (nic.NETWORK_ID) out.NETWORK_ID = nic.NETWORK_ID;
    if (nic.MODEL) out.MODEL = nic.MODEL;
    out.IP = nic.IP || `192.0.2.${10 + i}`;
    if (!nic.IP) {
      assumptions.push(
        `NIC ${i}: oned leases an address of network ${netKey} at onevm create; plan assumed ` +
          `${out.IP} (write IP = "…" in the NIC to reserve one, as oned allows)`,
      );
    }
    const mac = macFor(opts.macPrefix ?? "02:00", out.IP);
    if (mac) out.MAC = mac;
    const veth = (nic.MODEL || opts.nicModel || "venet").toLowerCase() === "veth";
    if (net?.BRIDGE) out.BRIDGE = net.BRIDGE;
    else if (veth) {
      out.BRIDGE = NETWORK_PLACEHOLDERS.BRIDGE;
      assumptions.push(
        `NIC ${i}: the bridge is network ${netKey}'s BRIDGE; plan assumed ${out.BRIDGE} ` +
          `(give --network ${netKey}:BRIDGE=…)`,
      );
    }
    return out;
  });
  if (nics.length) doc.attributes.set("NIC", nics);

  // 3. DISKs: image disks rewritten, DISK_ID everywhere.
  const disks = (doc.attributes.get("DISK") ?? []).map((disk, i): typeof disk => {
    if (typeof disk === "string") return disk;
    let out: Vector = { ...disk };
    if (disk.IMAGE || disk.IMAGE_ID) {
      out = {};
      for (const k of IMAGE_DISK_KEEPS) if (disk[k]) out[k] = disk[k];
      for (const k of Object.keys(disk)) {
        if (IMAGE_DISK_KEEPS.includes(k)) continue;
        warnings.push(
          `DISK ${i}/${k}: oned replaces a DISK that uses IMAGE or IMAGE_ID with the image's ` +
            `attributes, so ${k} never reaches deploy` +
            (k === "DISKSPACE" || k === "DISKINODES" ? `: write ${k} = "…" at top level` : ""),
        );
      }
      if (!out.IMAGE && !single("OSTEMPLATE")) {
        out.IMAGE = `image-${disk.IMAGE_ID}`;
        assumptions.push(
          `DISK ${i}: oned puts the NAME of image ${disk.IMAGE_ID} here; plan assumed ` +
            `${out.IMAGE} (write IMAGE = "<name>" instead of IMAGE_ID, or OSTEMPLATE = "<name>")`,
        );
      }
      Object.assign(out, { CLONE: "YES", SAVE: "NO", TYPE: "DISK", READONLY: "NO" });
    }
    if (!out.DISK_ID) out.DISK_ID = String(i);
    return out;
  });
  if (disks.length) doc.attributes.set("DISK", disks);

  // 4. CONTEXT variables.
  const contexts = doc.attributes.get("CONTEXT") ?? [];
  if (contexts.length && typeof contexts[0] !== "string") {
    const ctx: Vector = {};
    for (const [key, value] of Object.entries(contexts[0])) {
      ctx[key] = substitute(value, `CONTEXT/${key}`, doc, networks, assumptions, warnings);
    }
    if (!ctx.TARGET) ctx.TARGET = "hdb";
    doc.attributes.set("CONTEXT", [ctx, ...contexts.slice(1)]);
  }
  return { doc, assumptions, warnings };
}

/** `$NAME`, `$VAR[ATTR]` or `$VAR[ATTR, KEY = "value"]` (vm_var_parser's forms). */
const VARIABLE =
  /\$([A-Za-z0-9_]+)(?:\[\s*([A-Za-z0-9_]+)\s*(?:,\s*([A-Za-z0-9_]+)\s*=\s*(?:"([^"]*)"|([^\s\]]*))\s*)?\])?/g;

function substitute(
  value: string,
  label: string,
  doc: TemplateDoc,
  networks: Record<string, Record<string, string>>,
  assumptions: string[],
  warnings: string[],
): string {
  return value.replace(
    VARIABLE,
    (
      ref: string,
      rawName: string,
      rawAttr?: string,
      rawKey?: string,
      quoted?: string,
      bare?: string,
    ) => {
      const name = rawName.toUpperCase();
      const attr = rawAttr?.toUpperCase();
      const key = rawKey?.toUpperCase();
      const wanted = quoted ?? bare;
      if (name === "NETWORK" && attr) {
        if (key !== "NAME" && key !== "NETWORK_ID") {
          warnings.push(
            `${label}: ${ref} names no network (NAME="…" or NETWORK_ID=…): oned substitutes ""`,
          );
          return "";
        }
        const net = networks[wanted ?? ""];
        if (net) return net[attr] ?? "";
        const guess = NETWORK_PLACEHOLDERS[attr] ?? "";
        assumptions.push(
          `${label}: ${ref} is network ${wanted}'s ${attr}, which only oned knows; plan assumed ` +
            `${guess === "" ? '""' : guess} (give --network ${wanted}:${attr}=…)`,
        );
        return guess;
      }
      const found = doc.attributes.get(name) ?? [];
      if (!attr) {
        const v = found.find((x) => typeof x === "string");
        if (v === undefined) {
          warnings.push(
            `${label}: ${ref} is not a single attribute of the template: oned substitutes ""`,
          );
        }
        return (v as string | undefined) ?? "";
      }
      const vecs = found.filter((x): x is Vector => typeof x !== "string");
      const vec = key ? vecs.find((x) => x[key] === wanted) : vecs[0];
      if (!vec) {
        warnings.push(`${label}: ${ref} matches no ${name} of the template: oned substitutes ""`);
        return "";
      }
      return vec[attr] ?? "";
    },
  );
}
