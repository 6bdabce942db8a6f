/**
 * A simulated OpenVZ node on the local machine (no ssh): a simulator root, a VM_DIR, and a
 * way to run onevz actions on it exactly as one_vmm_ssh would start them (argv, stdin), with
 * the simulator's tools first on PATH and ONEVZ_SYSROOT pointing at the simulator root.
 */
import { join } from "node:path";
import { type Output, run } from "../../fixtures/oned/run.ts";

export const REPO = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
export const DENO = `${REPO}/node_modules/.bin/deno`;
export const SIM_BIN = `${REPO}/fixtures/sim/bin`;

export { type Output, run };

export interface SimNode {
  dir: string;
  root: string;
  /** VM_DIR with oned's trailing slash. */
  vmDir: string;
  env: Record<string, string>;
  /** Run `onevz <action> args…` as the node's driver would (subcommand form). */
  action(action: string, args: string[], stdin?: string | Uint8Array): Promise<Output>;
  /** Run a simulator tool (vzctl, vzlist, ovzsim …) on this node. */
  tool(name: string, args: string[]): Promise<Output>;
  /** The simulator's call log: one entry per tool call. */
  calls(): Promise<{ tool: string; argv: string[]; exit: number }[]>;
  /** Every path under the sim root and VM_DIR (minus /proc and the sim's bookkeeping). */
  snapshot(): Promise<string[]>;
  cleanup(): Promise<void>;
}

export async function makeSimNode(
  opts: {
    flavour?: "ubc" | "vswap";
    vzctl?: string;
    templates?: string[];
    /** More `ovzsim init` options (--ploop, --vzfirewall 1.04, …). */
    init?: string[];
    /** The driver's defaults file (ONEVZ_DEFAULTS), instead of the fixture's. */
    defaults?: string;
  } = {},
): Promise<SimNode> {
  const dir = await Deno.makeTempDir({ prefix: "onevz-node-" });
  const root = join(dir, "sim");
  const vmDir = join(dir, "vm") + "/";
  await Deno.mkdir(vmDir, { recursive: true });
  const env: Record<string, string> = {
    PATH: `${SIM_BIN}:${Deno.env.get("PATH")}`,
    OVZ_SIM_ROOT: root,
    ONEVZ_SYSROOT: root,
    ONEVZ_DEFAULTS: opts.defaults ?? `${REPO}/fixtures/templates/vmm_ssh_ovz.conf`,
    NO_COLOR: "1",
  };
  const tool = (name: string, args: string[]) => run(`${SIM_BIN}/${name}`, args, { env });
  const init = ["init", root, "--flavour", opts.flavour ?? "ubc", "--hostname", "cn1"];
  if (opts.vzctl) init.push("--vzctl", opts.vzctl);
  init.push(...(opts.init ?? []));
  // A cached template unrelated to the fixtures' images, so it never shadows them.
  for (const t of opts.templates ?? ["debian-7.0-x86_64"]) init.push("--template", t);
  const r = await tool("ovzsim", init);
  if (r.code !== 0) throw new Error(`ovzsim init failed: ${r.stderr}`);
  return {
    dir,
    root,
    vmDir,
    env,
    tool,
    action: (action, args, stdin) =>
      run(DENO, ["run", "-A", "--quiet", `${REPO}/main.ts`, action, ...args], { env, stdin }),
    async calls() {
      const out = await tool("ovzsim", ["calls", root]);
      return out.stdout.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
    },
    async snapshot() {
      const out: string[] = [];
      const walk = async (d: string) => {
        for await (const e of Deno.readDir(d)) {
          const p = join(d, e.name);
          if (p === join(root, "proc") || p === join(root, "sim")) continue;
          out.push(p + (e.isDirectory ? "/" : ""));
          if (e.isDirectory) await walk(p);
        }
      };
      await walk(dir);
      return out.sort();
    },
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
}

/**
 * The epilog of a shutdown as one_tm runs it on this node (TM actions on `localhost:`): for a
 * saved disk, `MV node:R/disk.<disk> <fe>/<vid>/disk.<disk>` (the saved image, made from the
 * container's files), then `DELETE node:R`. Returns the saved image's path on the "front-end".
 */
export async function runEpilog(
  node: SimNode,
  vid: number,
  opts: { savedDisk?: number } = {},
): Promise<string | undefined> {
  const r = `${node.vmDir}${vid}/images`;
  const tm = (action: string, args: string[]) =>
    run(DENO, ["run", "-A", "--quiet", `${REPO}/main.ts`, action, ...args], {
      env: { ...node.env, ONEVZ_VM_DIR: node.vmDir, ONEVZ_NODE_SYSROOT: node.root },
    });
  let saved: string | undefined;
  if (opts.savedDisk !== undefined) {
    const fe = join(node.dir, "fe", String(vid));
    await Deno.mkdir(fe, { recursive: true });
    saved = join(fe, `disk.${opts.savedDisk}`);
    const mv = await tm("tm-mv", [`localhost:${r}/disk.${opts.savedDisk}`, saved]);
    if (mv.code !== 0) throw new Error(`epilog MV failed: ${mv.stderr}`);
  }
  const del = await tm("tm-delete", [`localhost:${r}`]);
  if (del.code !== 0) throw new Error(`epilog DELETE failed: ${del.stderr}`);
  return saved;
}

/** A small but real OS template tarball (compressed as asked), as bytes. */
/**
 * A minimal CentOS 5 OS template. Two made within one second are byte-identical (tar keeps
 * whole seconds): `files` (path inside the template → contents) makes one that differs.
 */
export async function makeTemplateTarball(
  compress: "gz" | "bz2" | "xz" | "none" = "bz2",
  files: Record<string, string> = {},
) {
  const d = await Deno.makeTempDir({ prefix: "onevz-tpl-" });
  await Deno.mkdir(`${d}/t/etc/rc.d`, { recursive: true });
  await Deno.mkdir(`${d}/t/sbin`, { recursive: true });
  await Deno.mkdir(`${d}/t/mnt`, { recursive: true });
  await Deno.writeTextFile(`${d}/t/etc/redhat-release`, "CentOS release 5.11 (Final)\n");
  await Deno.writeTextFile(`${d}/t/etc/rc.d/rc.local`, "#!/bin/sh\ntouch /var/lock/subsys/local\n");
  await Deno.writeTextFile(`${d}/t/sbin/init`, "#!/bin/sh\n");
  for (const [path, text] of Object.entries(files)) {
    await Deno.writeTextFile(`${d}/t/${path}`, text);
  }
  const flag = { gz: "-z", bz2: "-j", xz: "-J", none: "" }[compress];
  const args = [
    "--numeric-owner",
    "-c",
    ...(flag ? [flag] : []),
    "-f",
    `${d}/t.tar`,
    "-C",
    `${d}/t`,
    ".",
  ];
  const r = await run("tar", args);
  if (r.code !== 0) throw new Error(r.stderr);
  const bytes = await Deno.readFile(`${d}/t.tar`);
  await Deno.remove(d, { recursive: true });
  return bytes;
}
