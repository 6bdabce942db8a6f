/**
 * The command table: every name onevz answers to, by argv[0] (remotes entries) or as
 * `onevz <command>`. Implementations are loaded on demand so that a poll does not pay for
 * the installer. Each implementation module default-exports `(ctx) => Promise<exitCode>`.
 */
import type { CommandContext } from "./context.ts";
import { basename } from "../host/posix_path.ts";

/** An option: its type, what it does (for --help) and the name of its value. */
export interface OptionSpec {
  /** "strings": a value option that may be repeated (its flag is then a string array). */
  type: "boolean" | "string" | "strings";
  help: string;
  /** Placeholder for a string option's value in --help (default "value"). */
  value?: string;
}

export interface CommandEntry {
  name: string;
  summary: string;
  usage: string;
  help: string;
  minArgs: number;
  maxArgs: number;
  /** Options by name; a bare type (no description) is accepted for brevity. */
  options?: Record<string, OptionSpec | "boolean" | "string" | "strings">;
  /** Run by OpenNebula drivers; takes the host as first argument in agentless mode. */
  driverAction?: "vmm" | "im" | "tm";
  load: () => Promise<{ default: (ctx: CommandContext) => Promise<number> }>;
}

/**
 * An implementation module, imported when its command runs. The specifier is made at run time
 * on purpose: Deno analyses string-literal dynamic imports when it starts, which would pull
 * every command's modules (zod, the XML parser, npm resolution) into each invocation's module
 * graph, ~3 ms of CPU on every poll. build.ts includes them in the executable, and
 * tests/unit/commands_load.test.ts imports each one statically (type checks included).
 */
const lazy = (path: string) => () => import(new URL(path, import.meta.url).href);

/** Where a VMM action runs; `node` names the node it runs on (migrate: the source). */
const vmmNote = (node = "the cluster node") =>
  `Runs on ${node} under one_vmm_ssh (or on the front-end with the host as first argument ` +
  "under one_vmm_sh, agentless mode).";
const VMM_NOTE = vmmNote();

export const COMMANDS: CommandEntry[] = [
  {
    name: "deploy",
    summary: "create and start a container from the deployment file on stdin",
    usage: "<deployment_file>",
    help: "Reads the <TEMPLATE> (or full <VM>) document on stdin, keeps a copy at " +
      "<deployment_file>, creates the container with vzctl and starts it. Prints the CTID " +
      "(the deploy id) on stdout. On failure everything this deploy did is undone. " + VMM_NOTE,
    minArgs: 1,
    maxArgs: 1,
    driverAction: "vmm",
    load: lazy("../actions/vmm/deploy.ts"),
  },
  {
    name: "shutdown",
    summary: "stop a container, archive its disk if SAVE=yes, destroy it",
    usage: "<deploy_id>",
    help: "Stops the container. When the OS disk has SAVE=yes (or SAVE_AS) the private area " +
      "is archived to images/disk.<DISK_ID>, then the container is destroyed. " + VMM_NOTE,
    minArgs: 1,
    maxArgs: 1,
    driverAction: "vmm",
    load: lazy("../actions/vmm/shutdown.ts"),
  },
  {
    name: "cancel",
    summary: "stop and destroy a container",
    usage: "<deploy_id>",
    help: "Stops and destroys the container without saving anything. " + VMM_NOTE,
    minArgs: 1,
    maxArgs: 1,
    driverAction: "vmm",
    load: lazy("../actions/vmm/cancel.ts"),
  },
  {
    name: "save",
    summary: "checkpoint a running container to a file",
    usage: "<deploy_id> <checkpoint>",
    help: "vzctl chkpnt to <checkpoint>, recording the CTID beside it for restore. " + VMM_NOTE,
    minArgs: 2,
    maxArgs: 2,
    driverAction: "vmm",
    load: lazy("../actions/vmm/save.ts"),
  },
  {
    name: "restore",
    summary: "restore a container from a checkpoint file",
    usage: "<checkpoint> [<deploy_id>]",
    help: "vzctl restore from <checkpoint>. The CTID comes from <deploy_id> when given (the " +
      "patched one_vmm_ssh.rb) or from the record save wrote. The checkpoint file is kept. " +
      VMM_NOTE,
    minArgs: 1,
    maxArgs: 2,
    driverAction: "vmm",
    load: lazy("../actions/vmm/restore.ts"),
  },
  {
    name: "migrate",
    summary: "live-migrate a container to another node",
    usage: "<deploy_id> <dest_host>",
    help: "vzmigrate --online (offline when stopped) to <dest_host>, keeping the CTID and " +
      "moving the VM's images directory. " + vmmNote("the source node"),
    minArgs: 2,
    maxArgs: 2,
    driverAction: "vmm",
    load: lazy("../actions/vmm/migrate.ts"),
  },
  {
    name: "poll",
    summary: "print the container's state and usage for oned",
    usage: "<deploy_id>",
    help: "Prints one line: STATE=a|p|d|- USEDMEMORY=<KB> USEDCPU=<%> NETRX=<bytes> " +
      "NETTX=<bytes>. " + VMM_NOTE,
    minArgs: 1,
    maxArgs: 1,
    driverAction: "vmm",
    load: lazy("../actions/vmm/poll.ts"),
  },
  {
    name: "reboot",
    summary: "restart a container",
    usage: "<deploy_id>",
    help: "vzctl restart (for OpenNebula versions that send REBOOT). " + VMM_NOTE,
    minArgs: 1,
    maxArgs: 1,
    driverAction: "vmm",
    load: lazy("../actions/vmm/reboot.ts"),
  },
  {
    name: "im-probe",
    summary: "print host capacity and monitoring values for oned",
    usage: "[<hypervisor> <host>]",
    help: "Prints KEY=VALUE pairs (HYPERVISOR, HOSTNAME, ARCH, MODELNAME, CPUSPEED, TOTALCPU, " +
      "USEDCPU, FREECPU, TOTALMEMORY, USEDMEMORY, FREEMEMORY, NETRX, NETTX and OpenVZ facts). " +
      "run_probes calls it as `./probe ovz <host>`.",
    minArgs: 0,
    maxArgs: 2,
    driverAction: "im",
    load: lazy("../actions/im/probe.ts"),
  },
  {
    name: "tm-clone",
    summary: "copy an image to a node (TM CLONE)",
    usage: "<src> <host:dst> [size]",
    help: "Copies the image to host:dst over ssh, through the node's content-addressed cache.",
    minArgs: 2,
    maxArgs: 3,
    driverAction: "tm",
    load: lazy("../actions/tm/clone.ts"),
  },
  {
    name: "tm-ln",
    summary: "link an image on a node (TM LN; copies under ssh)",
    usage: "<src> <host:dst> [size]",
    help: "The ssh transfer manager cannot link across hosts: same as tm-clone.",
    minArgs: 2,
    maxArgs: 3,
    driverAction: "tm",
    load: lazy("../actions/tm/ln.ts"),
  },
  {
    name: "tm-mv",
    summary: "move a file or directory between front-end and nodes (TM MV)",
    usage: "<host:src> <host:dst>",
    help: "Front-end to node, node to front-end (SAVE=yes), node to node (cold migration).",
    minArgs: 2,
    maxArgs: 2,
    driverAction: "tm",
    load: lazy("../actions/tm/mv.ts"),
  },
  {
    name: "tm-delete",
    summary: "remove a VM's images directory on a node (TM DELETE)",
    usage: "<host:path>",
    help: "Removes the path on the node; refuses anything outside VM_DIR.",
    minArgs: 1,
    maxArgs: 1,
    driverAction: "tm",
    load: lazy("../actions/tm/delete.ts"),
  },
  {
    name: "tm-mkswap",
    summary: "accept a swap disk (TM MKSWAP): OpenVZ needs no swap file",
    usage: "<size_mb> <host:path>",
    help: "Succeeds without creating a file; deploy reads the swap size from the template.",
    minArgs: 2,
    maxArgs: 2,
    driverAction: "tm",
    load: lazy("../actions/tm/mkswap.ts"),
  },
  {
    name: "tm-mkimage",
    summary: "refuse a new file-system disk (TM MKIMAGE)",
    usage: "<size> <format> <host:path>",
    help: "OpenVZ containers take one disk: always fails with a message saying so.",
    minArgs: 3,
    maxArgs: 3,
    driverAction: "tm",
    load: lazy("../actions/tm/mkimage.ts"),
  },
  {
    name: "tm-context",
    summary: "place context.sh and FILES on the node (TM CONTEXT)",
    usage: "<context.sh> [files…] <host:path>",
    help: "Copies context.sh and the FILES into a directory that deploy copies into the " +
      "container (no ISO image, no mkisofs).",
    minArgs: 2,
    maxArgs: 1000,
    driverAction: "tm",
    load: lazy("../actions/tm/context.ts"),
  },
  {
    name: "plan",
    summary: "print the vzctl calls deploy would make for a template (dry run)",
    usage: "<template>",
    help: "Reads a VM template in OpenNebula syntax (the file given to onevm create) or as " +
      "XML (a deployment file $ONE_LOCATION/var/<vmid>/deployment.<n>, or onevm show -x), " +
      "does oned's part for a template (VMID, leases, image disks, CONTEXT variables) saying " +
      "what it assumed, applies the defaults file deploy would use, and prints the warnings " +
      "and commands deploy would produce, without touching anything.",
    minArgs: 1,
    maxArgs: 1,
    options: {
      vswap: { type: "boolean", help: "plan for a VSwap (RHEL6-style) kernel" },
      ubc: { type: "boolean", help: "plan for a UBC (RHEL5-style) kernel (the default)" },
      vmdir: { type: "string", value: "DIR", help: "VM_DIR on the node (default /vz/one/vm)" },
      defaults: {
        type: "string",
        value: "FILE",
        help: "the defaults file to apply (default: the installed " +
          "$ONE_LOCATION/etc/vmm_ssh/vmm_ssh_ovz.conf or /etc/one/vmm_ssh/vmm_ssh_ovz.conf)",
      },
      vmid: { type: "string", value: "ID", help: "the VM id oned would give (default 0)" },
      network: {
        type: "strings",
        value: "NETWORK",
        help: "a virtual network's attributes for $NETWORK[…] references, as " +
          "NAME:KEY=VALUE[,KEY=VALUE] (DNS, GATEWAY, BRIDGE, …)",
      },
    },
    load: lazy("../admin/plan.ts"),
  },
  {
    name: "install",
    summary: "install the remotes, configuration and oned.conf snippets",
    usage: "",
    help: "Lays out the remotes tree, the tm-* entries, vmm_ssh_ovz.conf and onevz's own " +
      "transfer manager (tm_ovz/tm_ovz.conf) under $ONE_LOCATION (or system-wide), leaving " +
      "OpenNebula's tm_ssh as it is. Every file it replaces or edits is kept under " +
      "lib/onevz/backups and put back by `onevz uninstall`. Prints the oned.conf lines to add.",
    minArgs: 0,
    maxArgs: 0,
    options: {
      "one-location": {
        type: "string",
        value: "DIR",
        help: "self-contained OpenNebula in DIR (default: $ONE_LOCATION)",
      },
      system: {
        type: "boolean",
        help: "system-wide OpenNebula (/var/lib/one/remotes, /usr/lib/one, /etc/one)",
      },
      "oned-conf": {
        type: "boolean",
        help: "merge the lines into oned.conf between # BEGIN onevz / # END onevz",
      },
      "scripts-remote-dir": {
        type: "string",
        value: "DIR",
        help: "SCRIPTS_REMOTE_DIR for the hook's path (default: oned.conf's, else /var/tmp/one)",
      },
      binary: {
        type: "string",
        value: "PATH",
        help: "the compiled onevz to install (default: the running one)",
      },
      "dev-launcher": {
        type: "boolean",
        help: "from a source checkout, install a launcher that runs it (tests; no node can run it)",
      },
      sudoers: {
        type: "boolean",
        help: "only print the sudo rules for the nodes (changes nothing)",
      },
      group: {
        type: "string",
        value: "NAME",
        help: "with --sudoers: the group the rules are for (default cloud)",
      },
    },
    load: lazy("../admin/install.ts"),
  },
  {
    name: "uninstall",
    summary: "remove what install laid out and restore its backups",
    usage: "",
    help: "Removes every file install wrote that is unchanged, puts back the exact bytes of " +
      "the files it replaced or edited, and names the files changed since install.",
    minArgs: 0,
    maxArgs: 0,
    options: {
      "one-location": {
        type: "string",
        value: "DIR",
        help: "the self-contained OpenNebula install was made in (default: $ONE_LOCATION)",
      },
      system: { type: "boolean", help: "the system-wide installation" },
    },
    load: lazy("../admin/uninstall.ts"),
  },
  {
    name: "doctor",
    summary: "check a front-end and its nodes and say what to fix",
    usage: "[host…]",
    help: "Checks the front-end (environment, oned.conf, installed remotes and executable, " +
      "tm_ovz.conf and tm_ssh.conf, defaults file, image repository, ssh to localhost) and " +
      "each HOST (ssh both ways, sudo without a tty, secure_path, OpenVZ tools and kernel, " +
      "template cache, VM_DIR, name resolution, root ssh between nodes, glibc for the " +
      "binary, the onevz copied there) and prints ok / warning / failure per check with the " +
      "command that fixes it (and who runs it where), or what to do when no command can. " +
      "Exits 1 when a check fails.",
    minArgs: 0,
    maxArgs: 1000,
    options: {
      json: { type: "boolean", help: "print the results as JSON (for scripts)" },
      frontend: {
        type: "string",
        value: "NAME",
        help: "the front-end as nodes reach it (default $ONEVZ_FRONTEND, else this host's name)",
      },
      "vm-dir": {
        type: "string",
        value: "DIR",
        help: "VM_DIR on the nodes (default $ONEVZ_VM_DIR, else oned's configuration)",
      },
      "remote-dir": {
        type: "string",
        value: "DIR",
        help: "SCRIPTS_REMOTE_DIR on the nodes (default $ONEVZ_REMOTE_DIR, else oned's)",
      },
    },
    load: lazy("../admin/doctor.ts"),
  },
];

export function findCommand(name: string): CommandEntry | undefined {
  return COMMANDS.find((c) => c.name === name);
}

/**
 * argv[0] as the process was started (a remotes entry named `poll`, or `exec -a poll`): the
 * first NUL-terminated field of /proc/self/cmdline, which is what Node's process.argv0 reports;
 * node:process is only loaded where /proc is not mounted.
 */
export async function invokedName(): Promise<string> {
  try {
    const cmdline = Deno.readFileSync("/proc/self/cmdline");
    const end = cmdline.indexOf(0);
    return new TextDecoder().decode(end < 0 ? cmdline : cmdline.subarray(0, end));
  } catch {
    return (await import("node:process")).default.argv0;
  }
}

/** Resolve the command and its arguments from argv[0] or the first argument. */
export function resolveInvocation(argv0: string, args: string[]): {
  command?: CommandEntry;
  rest: string[];
  invokedAs: "argv0" | "subcommand" | "none";
} {
  const byName = findCommand(basename(argv0));
  if (byName) return { command: byName, rest: args, invokedAs: "argv0" };
  if (args.length === 0) return { rest: [], invokedAs: "none" };
  const [first, ...rest] = args;
  return { command: findCommand(first), rest, invokedAs: "subcommand" };
}
