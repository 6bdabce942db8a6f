/**
 * The command table: every name onevz answers to, by argv[0] (remotes entries) or as
 * `onevz <command>`. Implementations are loaded on demand so that a poll does not pay for
 * the installer. Each implementation module default-exports `(ctx) => Promise<exitCode>`.
 */
import type { CommandContext } from "./context.ts";

export interface CommandEntry {
  name: string;
  summary: string;
  usage: string;
  help: string;
  minArgs: number;
  maxArgs: number;
  options?: Record<string, "boolean" | "string">;
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

const VMM_NOTE = "Runs on the cluster node under one_vmm_ssh (or on the front-end with the " +
  "host as first argument under one_vmm_sh, agentless mode).";

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
      "moving the VM's images directory. Runs on the source node. " + VMM_NOTE,
    minArgs: 2,
    maxArgs: 2,
    driverAction: "vmm",
    load: lazy("../actions/vmm/migrate.ts"),
  },
  {
    name: "poll",
    summary: "print the container's state and usage for oned",
    usage: "<deploy_id>",
    help: "Prints one line: STATE=a|p|e|d USEDMEMORY=<KB> USEDCPU=<%> NETRX=<bytes> " +
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
    usage: "<template.xml>",
    help: "Parses and validates the template, applies the defaults file, and prints the " +
      "commands deploy would run, without touching anything. Options: --vswap or --ubc " +
      "choose the node's kernel flavour (default ubc); --vmdir sets VM_DIR.",
    minArgs: 1,
    maxArgs: 1,
    options: { vswap: "boolean", ubc: "boolean", vmdir: "string", defaults: "string" },
    load: lazy("../admin/plan.ts"),
  },
  {
    name: "install",
    summary: "install the remotes, configuration and oned.conf snippets",
    usage: "",
    help: "Lays out the remotes tree, vmm_ssh_ovz.conf and tm_ssh.conf under $ONE_LOCATION " +
      "(or system-wide). Options: --one-location DIR, --system, --oned-conf, --sudoers.",
    minArgs: 0,
    maxArgs: 0,
    options: {
      "one-location": "string",
      system: "boolean",
      "oned-conf": "boolean",
      sudoers: "boolean",
      binary: "string",
      "scripts-remote-dir": "string",
    },
    load: lazy("../admin/install.ts"),
  },
  {
    name: "uninstall",
    summary: "remove what install laid out and restore its backups",
    usage: "",
    help: "Options: --one-location DIR, --system.",
    minArgs: 0,
    maxArgs: 0,
    options: { "one-location": "string", system: "boolean" },
    load: lazy("../admin/uninstall.ts"),
  },
  {
    name: "doctor",
    summary: "check a front-end and its nodes and say what to fix",
    usage: "[host…]",
    help: "Checks the front-end (environment, oned.conf, installed remotes, tm_ssh.conf, " +
      "defaults file, image repository, ssh to localhost) and each HOST (ssh both ways, sudo " +
      "without a tty, secure_path, OpenVZ tools and kernel, template cache, VM_DIR, name " +
      "resolution, root ssh between nodes, glibc for the binary) and prints ok / warning / " +
      "failure per check with the command that fixes it. --json for scripts. Exits 1 when a " +
      "check fails.",
    minArgs: 0,
    maxArgs: 1000,
    options: {
      json: "boolean",
      frontend: "string",
      "vm-dir": "string",
      "remote-dir": "string",
    },
    load: lazy("../admin/doctor.ts"),
  },
];

export function findCommand(name: string): CommandEntry | undefined {
  return COMMANDS.find((c) => c.name === name);
}
