/**
 * Shared pieces of the end-to-end tests: a two-node ssh test bed with the dev remotes
 * installed, the TM prolog emulated by writing into a node's private directory, and views of
 * a node (containers, simulator call log, files) taken over ssh or through its fs directory.
 */
import { join } from "node:path";
import { oneTm, type TmResult } from "../../fixtures/oned/tm.ts";
import { makeTemplateTarball } from "../helpers/simnode.ts";
import {
  type Bed,
  type DriverReply,
  type Flavour,
  installDevRemotes,
  NODE_ROOT,
  startBed,
  vmmSsh,
} from "../testbed/mod.ts";

export const SAMPLES = new URL("../../fixtures/samples/opennebula-2.2.1", import.meta.url).pathname;
export const REPO = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

/** Bed-wide test options: sshd processes and ssh children outlive single steps. */
export const TEST_OPTS = { sanitizeOps: false, sanitizeResources: false } as const;

export interface SimCall {
  tool: string;
  argv: string[];
  exit: number;
}

/** A bed with cn1 and cn2 of one flavour and the dev remotes on both nodes and the front-end. */
export async function startE2eBed(flavour: Flavour): Promise<Bed> {
  const bed = await startBed({
    // The node's cache must not already hold a centos-5-x86 template: vps145's OS image (the
    // TM's R/disk.0) is that template, and deploy refuses a same-named cached one.
    nodes: ["cn1", "cn2"].map((name) => ({ name, flavour, templates: ["centos-6-x86_64"] })),
  });
  if (!bed.simulator) {
    await bed.stop();
    throw new Error(`the e2e tests need the OpenVZ simulator: ${bed.simulatorSkipped}`);
  }
  for (const n of ["fn", "cn1", "cn2"]) await installDevRemotes(bed, n);
  return bed;
}

/** R = VM_DIR/<vid>/images as oned spells it (VM_DIR ends in `/`, hence `//`). */
export const imagesDir = (bed: Bed, vid: number) => `${bed.vmDir}/${vid}/images`;

/** A node path (under /srv/onevz-node) as seen from the test machine. */
export function local(bed: Bed, node: string, nodePath: string): string {
  const clean = nodePath.replace(/\/+/g, "/");
  if (!clean.startsWith(NODE_ROOT + "/")) throw new Error(`${nodePath} is not a node path`);
  return join(bed.nodes[node].fsDir, clean.slice(NODE_ROOT.length));
}

export function exists(bed: Bed, node: string, nodePath: string): boolean {
  try {
    Deno.statSync(local(bed, node, nodePath));
    return true;
  } catch {
    return false;
  }
}

/** Every path under the node's VM_DIR and simulator root (minus /proc and the call log). */
export function snapshot(bed: Bed, node: string): string[] {
  const base = bed.nodes[node].fsDir;
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of Deno.readDirSync(d)) {
      const p = join(d, e.name);
      const rel = p.slice(base.length);
      if (rel === "/sim/proc" || rel === "/sim/sim" || rel === "/scripts") continue;
      out.push(rel + (e.isDirectory ? "/" : ""));
      if (e.isDirectory) walk(p);
    }
  };
  walk(base);
  return out.sort();
}

export interface PrologOptions {
  /** DISK_ID of the OS disk (R/disk.<id> gets a real .tar.bz2 template); undefined: none. */
  osDiskId?: number;
  /** N of the context directory R/disk.<N>, and its files (name → content). */
  context?: { diskId: number; files: Record<string, string> };
}

/**
 * One OS image for the whole run: the TM always copies the same image file, and deploy
 * rightly refuses a cached template of the same name with different content.
 */
let tarball: Promise<Uint8Array> | undefined;
export const osImage = () => tarball ??= makeTemplateTarball("bz2");

/** What the TM prolog leaves on a node: the OS image and the context directory. */
export async function prolog(bed: Bed, node: string, vid: number, o: PrologOptions) {
  const r = local(bed, node, imagesDir(bed, vid));
  await Deno.mkdir(r, { recursive: true });
  if (o.osDiskId !== undefined) {
    await Deno.writeFile(join(r, `disk.${o.osDiskId}`), await osImage());
  }
  if (o.context) {
    const dir = join(r, `disk.${o.context.diskId}`);
    await Deno.mkdir(dir, { recursive: true });
    for (const [name, text] of Object.entries(o.context.files)) {
      await Deno.writeTextFile(join(dir, name), text);
    }
  }
}

/**
 * The epilog of a shutdown through one_tm, with onevz's tm-mv and tm-delete run for real on
 * this machine (the front-end, `fe`): `MV <node>:R/disk.<i> fe:<feDir>/disk.<i>` for a disk
 * oned saves, then `DELETE <node>:R`. `env` reaches the nodes (ssh config, VM_DIR, sysroot).
 */
export async function epilog(
  env: Record<string, string>,
  node: string,
  vid: number,
  imagesDir: string,
  saved?: { diskId: number; feDir: string },
): Promise<TmResult> {
  const lines = saved
    ? [`MV ${node}:${imagesDir}/disk.${saved.diskId} fe:${saved.feDir}/disk.${saved.diskId}`]
    : [];
  lines.push(`DELETE ${node}:${imagesDir}`);
  if (saved) await Deno.mkdir(saved.feDir, { recursive: true });
  const onevz = `${REPO}/node_modules/.bin/deno run -A --quiet ${REPO}/main.ts`;
  return await oneTm(vid, lines.join("\n") + "\n", {
    MV: `${onevz} tm-mv`,
    DELETE: `${onevz} tm-delete`,
  }, {
    env: {
      ...env,
      ONEVZ_FE_NAMES: "fe",
      ONEVZ_VM_DIR: env.ONEVZ_VM_DIR ?? `${NODE_ROOT}/vm/`,
      // One connection per action, closed at its end: nothing outlives the test.
      ONEVZ_SSH_PERSIST: "0",
    },
  });
}

/** The TM's delete of R (what the epilog does after shutdown/cancel). */
export async function tmDelete(bed: Bed, node: string, vid: number) {
  await Deno.remove(local(bed, node, `${NODE_ROOT}/vm/${vid}`), { recursive: true })
    .catch(() => {});
}

/**
 * After a test, whatever happened: the VM's container gone from every node (stop, destroy)
 * and R removed, so that one failing test does not make the next ones fail.
 */
export async function cleanupVm(bed: Bed, vid: number, ctid: number) {
  const conf = `${bed.simRoot}/etc/vz/conf/${ctid}.conf`;
  await Promise.all(
    Object.values(bed.nodes).filter((n) => !n.frontEnd).map((n) =>
      bed.ssh(
        n.name,
        `if test -e ${conf}; then vzctl --quiet stop ${ctid} --fast; ` +
          `vzctl --quiet destroy ${ctid}; fi >/dev/null 2>&1; rm -rf ${bed.vmDir}${vid}; true`,
      )
    ),
  );
}

/** The simulator's call log on a node (via ssh, as the node sees it). */
export async function calls(bed: Bed, node: string): Promise<SimCall[]> {
  const r = await bed.ssh(node, `ovzsim calls ${bed.simRoot}`);
  if (r.code !== 0) throw new Error(`ovzsim calls on ${node}: ${r.stderr}`);
  return r.stdout.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
}

/** Calls of one tool, its argv without --quiet/--verbose flags. */
export function argvs(list: SimCall[], tool: string): string[][] {
  return list.filter((c) => c.tool === tool).map((c) =>
    c.argv.filter((a) => a !== "--quiet" && a !== "--verbose")
  );
}

/** The calls made since `before` (the log only grows). */
export async function newCalls(bed: Bed, node: string, before: number): Promise<SimCall[]> {
  return (await calls(bed, node)).slice(before);
}

/** `vzctl status CTID` on a node: "exist mounted running", "deleted unmounted down", … */
export async function ctStatus(bed: Bed, node: string, ctid: number): Promise<string> {
  const r = await bed.ssh(node, `vzctl status ${ctid}`);
  return r.stdout.trim().replace(/^CTID \d+ /, "");
}

/** A one-line description of a driver reply for assertion messages. */
export function show(r: DriverReply): string {
  return `${r.reply}\n--- stdout:\n${r.stdout}\n--- stderr:\n${r.stderr}`;
}

/** The poll reply's KEY=VALUE pairs. */
export function pollValues(info: string): Record<string, string> {
  return Object.fromEntries(
    info.trim().split(/\s+/).filter((kv) => kv.includes("=")).map((kv) => {
      const i = kv.indexOf("=");
      return [kv.slice(0, i), kv.slice(i + 1)];
    }),
  );
}

export { type Bed, NODE_ROOT, vmmSsh };

/** The compression of an archive by its magic bytes. */
export async function compressionOf(path: string): Promise<"gz" | "bz2" | "xz" | "none"> {
  const head = new Uint8Array(6);
  const f = await Deno.open(path);
  await f.read(head);
  f.close();
  if (head[0] === 0x1f && head[1] === 0x8b) return "gz";
  if (head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) return "bz2";
  if (head[0] === 0xfd && head[1] === 0x37 && head[2] === 0x7a) return "xz";
  return "none";
}

/** The member list of a tar archive (any compression), or null when tar cannot read it. */
export async function tarList(path: string): Promise<string[] | null> {
  const out = await new Deno.Command("tar", {
    args: ["-tf", path],
    stdout: "piped",
    stderr: "null",
  })
    .output();
  if (out.code !== 0) return null;
  return new TextDecoder().decode(out.stdout).split("\n").filter((l) => l)
    .map((l) => l.replace(/^\.\//, ""));
}
