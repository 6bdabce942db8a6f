/**
 * VmSpec + node facts → the deploy plan: every vzctl call (argv, in order) and every file
 * deploy writes, each with the reason. Pure: nothing here touches a host.
 *
 * Memory mapping (documented rule):
 * - MEMORY vector: each beancounter is passed as `--<name> barrier:limit` in native units
 *   (pages, bytes or items; suffixes already converted), in vzctl's table order.
 * - Plain MEMORY = <MB> on a UBC (RHEL5) node, with P = MB × 256 pages:
 *     --privvmpages P:round(P × 1.1)   (allocatable memory, 10 % burst)
 *     --physpages   0:unlimited        (accounting only on UBC kernels)
 *     --vmguarpages P:unlimited        (guaranteed allocation)
 *     --oomguarpages P:unlimited       (not killed by the OOM killer below P)
 *   other beancounters stay as the CT's sample config sets them.
 * - Plain MEMORY on a VSwap node: `--ram <MB>M`.
 * - MEMORY vector on a VSwap node (openvz-tools §5: physpages is the RAM, swappages the swap,
 *   the other beancounters optional or derived by vzctl):
 *     RAM = PHYSPAGES' limit when finite; the other beancounters pass as written;
 *     else RAM = PRIVVMPAGES' barrier (a UBC container is shown that much memory: vzctl's
 *       default --meminfo privvmpages:1), and PRIVVMPAGES, VMGUARPAGES, OOMGUARPAGES are left
 *       to vzctl's VSwap derivation; KMEMSIZE, NUMPROC, … pass as written;
 *     else (no RAM anywhere, e.g. PHYSPAGES = 0:unlimited alone): refused with the VSwap form.
 *     Swap = the swap DISK, else SWAPPAGES' limit, else 0.
 * Swap disk (DISK TYPE=swap, SIZE in MB): UBC → `--swappages 0:<SIZE>M` (explicit unit; the
 * original driver's 0:1048576 counted pages and gave 4 GiB for 1024 MB), VSwap →
 * `--swap <SIZE>M`. A VSwap node whose template sets memory but no swap gets `--swap 0`
 * (VSwap configs require SWAPPAGES).
 */
import { InvalidInputError } from "../cli/errors.ts";
import type { Layout } from "../one/config.ts";
import {
  bootScriptPath,
  contextSh,
  firewallBlock,
  interfacesStanza,
  networkBlockMarkers,
  rcLocalLine,
  vethIpConfig,
} from "../one/context.ts";
import type { VmSpec } from "../one/spec.ts";
import { guestLayout } from "./dists.ts";
import {
  formatUbcPair,
  mbArg,
  mbToPages,
  PAGE_SIZE_BYTES,
  UBC_UNITS,
  type UbcPair,
  UNLIMITED,
} from "./units.ts";

export type Flavour = "ubc" | "vswap";

export interface NodeFacts {
  flavour: Flavour;
  /** VM_DIR on the node (R = VM_DIR/<vmid>/images). */
  vmDir: string;
  /** $TEMPLATE/cache from vz.conf. */
  templateCacheDir: string;
  /** Extension matching the OS image's format (".tar.gz" …), from archiveExtFromMagic. */
  templateFileExt: string;
  /** Where tm-context put the context directory; default R/disk.<number of DISKs>. */
  contextDirOnNode?: string;
  /** `--config <name>` for vzctl create (ve-<name>.conf-sample), when wanted. */
  configSample?: string;
  /**
   * The node's dist configs (/etc/vz/dists/*.conf without .conf), to decide the guest's
   * layout as vzctl does; undefined: vzctl's stock set (plan, or a node that was not read).
   */
  distNames?: string[];
  /** `--layout` for vzctl create: always given on vzctl 4.x (its stock default is ploop),
   * undefined on 3.0.x, which has neither the option nor ploop. */
  layout?: Layout;
  /**
   * The name the OS image is placed under in $TEMPLATE/cache (placedTemplateName in
   * src/ovz/caches.ts); default the template's own name (the administrator's cached one).
   */
  templateName?: string;
}

export interface PlanStep {
  argv: string[];
  why: string;
}

export type FileWork =
  | { kind: "place-template"; from: string; to: string; why: string }
  | { kind: "copy-dir"; from: string; to: string; why: string }
  | { kind: "write-file"; path: string; content: string; ifAbsent: boolean; why: string }
  | { kind: "append-line"; path: string; line: string; why: string }
  /** Replace (or add) the block between `begin` and `end` marker lines of a guest file. */
  | { kind: "put-block"; path: string; begin: string; end: string; text: string; why: string }
  | { kind: "append-config"; path: string; text: string; why: string };

export type Step = ({ kind: "run" } & PlanStep) | FileWork;

export interface DeployPlan {
  ctid: number;
  vmid: number;
  flavour: Flavour;
  paths: {
    /** R = VM_DIR/<vmid>/images */
    images: string;
    private: string;
    root: string;
    /** Where the container's files are while deploy writes them: the private area (simfs),
     * or VE_ROOT with the ploop image mounted there. */
    guest: string;
    /** R/disk.<os DISK_ID>: the OS template image placed by the TM. */
    osImage: string;
    /** $TEMPLATE/cache/<name><ext> */
    templateFile: string;
    /** Context directory on the node and its destination under VE_PRIVATE. */
    contextSource?: string;
    contextTarget?: string;
    /** /etc/vz/conf/<CTID>.conf (read it through host.sysPath). */
    ctConfig: string;
  };
  /** Every step in execution order (commands and file work interleaved). */
  steps: Step[];
  /** The vzctl calls only, in order: create, set, start. */
  commands: PlanStep[];
  /** The file work only, in order. */
  files: FileWork[];
  /** The mapping rules that produced derived values. */
  notes: string[];
  /** Template mistakes and assumptions that do not stop a deploy (deploy prints them). */
  warnings: string[];
}

function ubcPairArg(barrier: bigint, limit: bigint): string {
  return formatUbcPair({ barrier, limit });
}

/** The `vzctl set` options (without CTID and --save), with the notes on derived values. */
export function setOptions(spec: VmSpec, flavour: Flavour): { args: string[]; notes: string[] } {
  const args: string[] = [];
  const notes: string[] = [];
  const mem = spec.memory;
  const swapFromDisk = spec.swap !== undefined;
  let vswapSwap: string | undefined;
  if (mem.kind === "ubc" && flavour === "vswap") {
    vswapSwap = vswapFromBeancounters(spec, mem.beancounters, args, notes);
  } else if (mem.kind === "ubc") {
    for (const name of Object.keys(UBC_UNITS)) {
      const pair = mem.beancounters[name];
      if (!pair) continue;
      if (name === "SWAPPAGES" && swapFromDisk) {
        notes.push(`MEMORY/SWAPPAGES ignored: the swap DISK ${spec.swap!.diskId} sets swap`);
        continue;
      }
      args.push(`--${name.toLowerCase()}`, formatUbcPair(pair));
    }
  } else if (mem.kind === "mb") {
    if (flavour === "vswap") {
      args.push("--ram", mbArg(mem.mb));
      notes.push(`MEMORY = ${mem.mb} MB → --ram ${mbArg(mem.mb)} (VSwap)`);
    } else {
      const p = mbToPages(mem.mb);
      const burst = (p * 11n + 5n) / 10n;
      args.push(
        "--privvmpages",
        ubcPairArg(p, burst),
        "--physpages",
        ubcPairArg(0n, UNLIMITED),
        "--vmguarpages",
        ubcPairArg(p, UNLIMITED),
        "--oomguarpages",
        ubcPairArg(p, UNLIMITED),
      );
      notes.push(
        `MEMORY = ${mem.mb} MB = ${p} pages → PRIVVMPAGES ${p}:${burst} (×1.1), PHYSPAGES 0:unlimited, ` +
          `VMGUARPAGES ${p}:unlimited, OOMGUARPAGES ${p}:unlimited (UBC)`,
      );
    }
  }
  if (spec.swap) {
    if (flavour === "vswap") {
      args.push("--swap", mbArg(spec.swap.sizeMb));
      notes.push(
        `swap DISK ${spec.swap.diskId} SIZE ${spec.swap.sizeMb} MB → --swap ${
          mbArg(spec.swap.sizeMb)
        }`,
      );
    } else {
      args.push("--swappages", `0:${mbArg(spec.swap.sizeMb)}`);
      notes.push(
        `swap DISK ${spec.swap.diskId} SIZE ${spec.swap.sizeMb} MB → --swappages 0:${
          mbArg(spec.swap.sizeMb)
        }`,
      );
    }
  } else if (vswapSwap !== undefined) {
    args.push("--swap", vswapSwap);
  } else if (flavour === "vswap" && mem.kind !== "none") {
    args.push("--swap", "0");
    notes.push("no swap disk on a VSwap node → --swap 0");
  }
  const cpu = spec.cpu;
  if (cpu.cpuunits !== undefined) args.push("--cpuunits", String(cpu.cpuunits));
  if (cpu.cpulimit !== undefined) args.push("--cpulimit", cpu.cpulimit);
  if (cpu.cpus !== undefined) args.push("--cpus", String(cpu.cpus));
  if (cpu.cpumask !== undefined) args.push("--cpumask", cpu.cpumask);
  if (spec.diskspace !== undefined) args.push("--diskspace", spec.diskspace);
  if (spec.diskinodes !== undefined) args.push("--diskinodes", spec.diskinodes);
  for (const nic of spec.nics) {
    if (nic.model === "venet") {
      args.push("--ipadd", nic.ip!);
    } else {
      args.push("--netif_add", `${nic.ifname},${nic.mac ?? ""},,,${nic.bridge ?? ""}`);
    }
  }
  if (spec.context?.hostname) args.push("--hostname", spec.context.hostname);
  for (const ns of spec.context?.nameservers ?? []) args.push("--nameserver", ns);
  if (spec.onboot !== undefined) args.push("--onboot", spec.onboot ? "yes" : "no");
  args.push(...spec.raw);
  return { args, notes };
}

/** Pages as a vzctl size with an explicit unit: M when whole megabytes, else K. */
function pagesArg(pages: bigint): string {
  const kb = pages * BigInt(PAGE_SIZE_BYTES / 1024);
  return kb % 1024n === 0n ? `${kb / 1024n}M` : `${kb}K`;
}

const finite = (p: UbcPair | undefined, part: "barrier" | "limit") =>
  p !== undefined && p[part] < UNLIMITED && p[part] > 0n ? p[part] : undefined;

/**
 * A beancounter vector on a VSwap node (see the mapping rules above): pushes --ram and the
 * remaining beancounters; returns the --swap value when SWAPPAGES gives it (and no swap DISK).
 */
function vswapFromBeancounters(
  spec: VmSpec,
  bc: Record<string, UbcPair>,
  args: string[],
  notes: string[],
): string | undefined {
  const phys = finite(bc.PHYSPAGES, "limit");
  const priv = finite(bc.PRIVVMPAGES, "barrier");
  const skip = new Set(["PHYSPAGES", "SWAPPAGES"]);
  let ram: string;
  if (phys !== undefined) {
    ram = pagesArg(phys);
    notes.push(`MEMORY/PHYSPAGES limit ${phys} pages → --ram ${ram} (VSwap: physpages is the RAM)`);
  } else if (priv !== undefined) {
    ram = pagesArg(priv);
    for (const k of ["PRIVVMPAGES", "VMGUARPAGES", "OOMGUARPAGES"]) skip.add(k);
    notes.push(
      `MEMORY/PRIVVMPAGES barrier ${priv} pages → --ram ${ram} (VSwap node, UBC values: the RAM ` +
        `a UBC container is shown); PRIVVMPAGES, VMGUARPAGES, OOMGUARPAGES left to vzctl's ` +
        `VSwap defaults`,
    );
  } else {
    throw new InvalidInputError(
      `MEMORY: on a VSwap node the RAM is PHYSPAGES' limit, and these beancounters set none ` +
        `(PHYSPAGES ${bc.PHYSPAGES ? formatUbcPair(bc.PHYSPAGES) : "absent"}, no PRIVVMPAGES): ` +
        `write MEMORY = <MB>, or MEMORY = [ PHYSPAGES = "0:512M", SWAPPAGES = "0:1G", … ]`,
    );
  }
  args.push("--ram", ram);
  for (const name of Object.keys(UBC_UNITS)) {
    const pair = bc[name];
    if (pair && !skip.has(name)) args.push(`--${name.toLowerCase()}`, formatUbcPair(pair));
  }
  if (spec.swap) {
    if (bc.SWAPPAGES) {
      notes.push(`MEMORY/SWAPPAGES ignored: the swap DISK ${spec.swap.diskId} sets swap`);
    }
    return undefined;
  }
  if (!bc.SWAPPAGES) return undefined;
  const swap = bc.SWAPPAGES.limit >= UNLIMITED ? "unlimited" : pagesArg(bc.SWAPPAGES.limit);
  notes.push(`MEMORY/SWAPPAGES limit → --swap ${swap} (VSwap)`);
  return swap;
}

function basename(p: string): string {
  return p.split("/").filter((s) => s !== "").pop() ?? "";
}

/** Build the deploy plan for a validated spec on a node with the given facts. */
export function planDeploy(spec: VmSpec, facts: NodeFacts): DeployPlan {
  const vmDir = facts.vmDir.replace(/\/+$/, "");
  const images = `${vmDir}/${spec.vmid}/images`;
  const priv = `${images}/private`;
  const root = `${images}/root`;
  const osImage = `${images}/disk.${spec.osDisk.diskId}`;
  const templateName = facts.templateName ?? spec.osDisk.templateName;
  const templateFile = `${
    facts.templateCacheDir.replace(/\/+$/, "")
  }/${templateName}${facts.templateFileExt}`;
  const ctConfig = `/etc/vz/conf/${spec.ctid}.conf`;
  const ctid = String(spec.ctid);
  const steps: Step[] = [];
  const warnings = [...spec.warnings];
  const layout = guestLayout(
    spec.osDisk.templateName,
    facts.distNames,
    facts.distNames ? "the node's /etc/vz/dists" : undefined,
  );
  if (layout.assumed) warnings.push(layout.assumed);
  const family = layout.family === "debian" ? "Debian/Ubuntu" : "Red Hat";

  steps.push({
    kind: "place-template",
    from: osImage,
    to: templateFile,
    why: `OS image DISK ${spec.osDisk.diskId} becomes the cached OS template ${templateName} ` +
      `(vzctl create looks in $TEMPLATE/cache)`,
  });

  const create = [
    "vzctl",
    "--quiet",
    "create",
    ctid,
    "--ostemplate",
    templateName,
    "--private",
    priv,
    "--root",
    root,
  ];
  if (facts.configSample) create.push("--config", facts.configSample);
  if (facts.layout) create.push("--layout", facts.layout);
  // ploop: the files live in an image, reachable only while the CT is mounted at VE_ROOT
  const guest = facts.layout === "ploop" ? root : priv;
  steps.push({
    kind: "run",
    argv: create,
    why:
      `create CT ${ctid} for VM ${spec.vmid} (${spec.name}) from ${templateName}, private area under the VM directory`,
  });

  const { args, notes } = setOptions(spec, facts.flavour);
  steps.push({
    kind: "run",
    argv: ["vzctl", "--quiet", "set", ctid, ...args, "--save"],
    why:
      `resources, network, hostname from the template, saved to the CT config (${facts.flavour} node)`,
  });

  let contextSource: string | undefined;
  let contextTarget: string | undefined;
  const ctx = spec.context;
  const guestSteps: Step[] = [];
  if (ctx) {
    contextSource = facts.contextDirOnNode ?? `${images}/disk.${spec.diskCount}`;
    contextTarget = `${guest}${spec.contextDir}`;
    guestSteps.push({
      kind: "copy-dir",
      from: contextSource,
      to: contextTarget,
      why: `context files (context.sh, FILES) into ${spec.contextDir} in the container`,
    });
    guestSteps.push({
      kind: "write-file",
      path: `${contextTarget}/context.sh`,
      content: contextSh(ctx.vars),
      ifAbsent: true,
      why: "context.sh with the CONTEXT variables, when the TM did not provide one",
    });
    if (ctx.files.some((f) => basename(f) === "init.sh")) {
      guestSteps.push({
        kind: "append-line",
        path: `${guest}${bootScriptPath(layout.family)}`,
        line: rcLocalLine(spec.contextDir),
        why: `run the context init.sh at every boot from the ${family} guest's rc.local ` +
          "(before a final exit; skipped when already present)",
      });
    }
  }
  for (const nic of spec.nics) {
    if (nic.model !== "veth" || !nic.ip) continue;
    const addr = { netmask: ctx?.netmask, gateway: nic.index === 0 ? ctx?.gateway : undefined };
    const why = `static IP ${nic.ip} for veth ${nic.ifname} (NIC ${nic.index}), read by the ` +
      `${family} guest's network service at boot`;
    if (layout.family === "debian") {
      guestSteps.push({
        kind: "put-block",
        path: `${guest}/etc/network/interfaces`,
        ...networkBlockMarkers(nic.ifname!),
        text: interfacesStanza(nic.ifname!, nic.ip, addr),
        why,
      });
      continue;
    }
    const cfg = vethIpConfig(nic.ifname!, nic.ip, { ...addr, mac: nic.mac });
    guestSteps.push({
      kind: "write-file",
      path: `${guest}${cfg.path}`,
      content: cfg.content,
      ifAbsent: false,
      why,
    });
  }
  if (guestSteps.length && facts.layout === "ploop") {
    steps.push({
      kind: "run",
      argv: ["vzctl", "--quiet", "mount", ctid],
      why: `mount the ploop image of CT ${ctid} at ${root} to write the files below`,
    });
    steps.push(...guestSteps, {
      kind: "run",
      argv: ["vzctl", "--quiet", "umount", ctid],
      why: `unmount the ploop image of CT ${ctid}`,
    });
  } else steps.push(...guestSteps);
  if (ctx?.firewall !== undefined) {
    steps.push({
      kind: "append-config",
      path: ctConfig,
      text: firewallBlock(ctx.firewall),
      why: "vzfirewall rules (CONTEXT/FIREWALL) in the CT config, applied by the vzfirewall hook",
    });
  }
  steps.push({ kind: "run", argv: ["vzctl", "--quiet", "start", ctid], why: `start CT ${ctid}` });

  const commands = steps.filter((s): s is { kind: "run" } & PlanStep => s.kind === "run")
    .map(({ argv, why }) => ({ argv, why }));
  const files = steps.filter((s): s is FileWork => s.kind !== "run");
  return {
    ctid: spec.ctid,
    vmid: spec.vmid,
    flavour: facts.flavour,
    paths: {
      images,
      private: priv,
      root,
      guest,
      osImage,
      templateFile,
      contextSource,
      contextTarget,
      ctConfig,
    },
    steps,
    commands,
    files,
    notes: [
      ...spec.notes,
      ...notes,
      `guest layout: ${family} (${layout.dist ? `dists/${layout.dist}.conf` : "dists/default"})`,
    ],
    warnings,
  };
}
