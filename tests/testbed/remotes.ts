/**
 * DEV LAYOUT of the remotes tree, for the test bed only: bin/onevz is a bash launcher that
 * runs this checkout's main.ts with its Deno. `onevz install` (src/admin/install.ts) lays out
 * the real tree; this stays a stand-in until then. Layout as docs/ARCHITECTURE.md describes
 * the remotes tree: bin/onevz, vmm/ovz/<action> shims, im/ovz.d/probe shim; agentless
 * vmm/ovz_fe/, im/ovz_fe.d/; plus OpenNebula's own im/run_probes (our copy,
 * tests/testbed/run_probes.sh).
 */
import { join } from "node:path";
import { type Bed, DENO, REPO_ROOT } from "./bed.ts";

export const VMM_ACTIONS = [
  "deploy",
  "shutdown",
  "cancel",
  "save",
  "restore",
  "migrate",
  "poll",
  "reboot",
] as const;

export const RUN_PROBES = join(REPO_ROOT, "tests/testbed/run_probes.sh");

/** The entry of docs/ARCHITECTURE.md: runs bin/onevz under the action's name. */
export function shim(action: string, opts: { agentless?: boolean } = {}): string {
  return [
    "#!/bin/bash",
    "# onevz action entry: runs the onevz executable under this action's name.",
    `remotes=$(cd "$(dirname "$0")/../.." && pwd)`,
    `export ONEVZ_REMOTES="$remotes" ONEVZ_ACTION=${action}` +
    (opts.agentless ? " ONEVZ_MODE=agentless" : ""),
    `exec -a ${action} "$remotes/bin/onevz" "$@"`,
    "",
  ].join("\n");
}

/** The dev launcher: this checkout's Deno running this checkout's main.ts. */
export function devLauncher(): string {
  return [
    "#!/bin/bash",
    "# onevz DEV LAYOUT launcher written by tests/testbed/remotes.ts (source checkout, no",
    "# compiled binary). `onevz install` replaces it.",
    `exec -a "\${ONEVZ_ACTION:-onevz}" ${DENO} run -A --quiet --no-lock ${
      join(REPO_ROOT, "main.ts")
    } "$@"`,
    "",
  ].join("\n");
}

async function writeExec(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(path, text, { mode: 0o755 });
  await Deno.chmod(path, 0o755);
}

/** Write the dev remotes tree into `dir` (a directory on the test machine). */
export async function writeDevRemotes(dir: string): Promise<void> {
  for (const d of ["bin", "vmm/ovz", "vmm/ovz_fe", "im/ovz.d", "im/ovz_fe.d", "hooks"]) {
    await Deno.mkdir(join(dir, d), { recursive: true });
  }
  await Deno.writeTextFile(
    join(dir, "DEV_LAYOUT"),
    "Written by tests/testbed/remotes.ts: bin/onevz runs the source checkout.\n",
  );
  await writeExec(join(dir, "bin/onevz"), devLauncher());
  for (const a of VMM_ACTIONS) {
    await writeExec(join(dir, "vmm/ovz", a), shim(a));
    await writeExec(join(dir, "vmm/ovz_fe", a), shim(a, { agentless: true }));
  }
  // run_probes runs `./probe <hyp> <host>` in im/<hyp>.d: the shim sits two levels deep too.
  await writeExec(join(dir, "im/ovz.d/probe"), shim("im-probe"));
  await writeExec(join(dir, "im/ovz_fe.d/probe"), shim("im-probe", { agentless: true }));
  await writeExec(join(dir, "im/run_probes"), await Deno.readTextFile(RUN_PROBES));
}

/**
 * Install the dev remotes tree as a node's SCRIPTS_REMOTE_DIR (written straight into the
 * node's private directory), or, for "fn", as the front-end's remotes (bed.frontRemotes,
 * what one_vmm_ssh copies to a node on exit 42). Returns the directory on the test machine.
 */
export async function installDevRemotes(bed: Bed, node: string): Promise<string> {
  const n = bed.nodes[node];
  if (!n && node !== "fn") throw new Error(`no node ${node} in the bed`);
  const dir = node === "fn" ? bed.frontRemotes : join(n.fsDir, "scripts");
  await writeDevRemotes(dir);
  return dir;
}
