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
 * Swap disk (DISK TYPE=swap, SIZE in MB): UBC → `--swappages 0:<SIZE>M` (explicit unit; the
 * original driver's 0:1048576 counted pages and gave 4 GiB for 1024 MB), VSwap →
 * `--swap <SIZE>M`. A VSwap node whose template sets memory but no swap gets `--swap 0`
 * (VSwap configs require SWAPPAGES).
 */
import {
  contextSh,
  FIREWALL_BEGIN,
  firewallBlock,
  rcLocalLine,
  vethIpConfig,
} from "../one/context.ts";
import type { VmSpec } from "../one/spec.ts";
import { formatUbcPair, mbArg, mbToPages, UBC_UNITS, UNLIMITED } from "./units.ts";

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
  if (mem.kind === "ubc") {
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
  } else if (
    flavour === "vswap" && mem.kind !== "none" &&
    !(mem.kind === "ubc" && mem.beancounters.SWAPPAGES)
  ) {
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
  if (ctx) {
    contextSource = facts.contextDirOnNode ?? `${images}/disk.${spec.diskCount}`;
    contextTarget = `${priv}${spec.contextDir}`;
    steps.push({
      kind: "copy-dir",
      from: contextSource,
      to: contextTarget,
      why: `context files (context.sh, FILES) into ${spec.contextDir} in the container`,
    });
    steps.push({
      kind: "write-file",
      path: `${contextTarget}/context.sh`,
      content: contextSh(ctx.vars),
      ifAbsent: true,
      why: "context.sh with the CONTEXT variables, when the TM did not provide one",
    });
    if (ctx.files.some((f) => basename(f) === "init.sh")) {
      steps.push({
        kind: "append-line",
        path: `${priv}/etc/rc.d/rc.local`,
        line: rcLocalLine(spec.contextDir),
        why: "run the context init.sh at every boot (once per line: skip when already present)",
      });
    }
  }
  for (const nic of spec.nics) {
    if (nic.model !== "veth" || !nic.ip) continue;
    const cfg = vethIpConfig(nic.ifname!, nic.ip, {
      netmask: ctx?.netmask,
      gateway: nic.index === 0 ? ctx?.gateway : undefined,
      mac: nic.mac,
    });
    steps.push({
      kind: "write-file",
      path: `${priv}${cfg.path}`,
      content: cfg.content,
      ifAbsent: false,
      why:
        `static IP ${nic.ip} for veth ${nic.ifname} (NIC ${nic.index}), read by the container's network service`,
    });
  }
  if (ctx?.firewall !== undefined) {
    steps.push({
      kind: "append-config",
      path: ctConfig,
      text: `${FIREWALL_BEGIN}\n${firewallBlock(ctx.firewall)}`,
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
      osImage,
      templateFile,
      contextSource,
      contextTarget,
      ctConfig,
    },
    steps,
    commands,
    files,
    notes: [...spec.notes, ...notes],
  };
}
