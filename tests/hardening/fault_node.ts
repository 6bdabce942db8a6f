/**
 * Shared pieces of the hardening tests (faults, concurrency, privilege):
 *  - a content-level snapshot of a simulated node (path, type, mode, sha-256 of every file
 *    under VM_DIR and the simulator root, minus /proc and the simulator's bookkeeping), so
 *    "the node is exactly as before" compares bytes, not only names;
 *  - FaultyHost: a LocalHost that records every state-changing operation an action makes
 *    (commands that write, file writes, mkdir, rename, remove) and can fail the k-th one once,
 *    which injects a failure at every step of an action in turn;
 *  - running an action in-process (CommandContext with captured streams) or as a child
 *    process that can be SIGKILLed, with its descendants found through /proc.
 */
import { join } from "node:path";
import type { CommandContext } from "../../src/cli/context.ts";
import { LocalHost } from "../../src/host/local.ts";
import type { RunOptions, RunResult } from "../../src/host/host.ts";
import { REPO, type SimNode } from "../helpers/simnode.ts";
import { descendants } from "../helpers/procs.ts";

export const TEMPLATES = `${REPO}/fixtures/templates`;

/** path → "d mode" | "f mode sha256" | "l target", for everything under the node's dir. */
export async function nodeState(node: SimNode): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const skip = new Set([join(node.root, "proc"), join(node.root, "sim")]);
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (skip.has(p)) continue;
      const st = await Deno.lstat(p);
      const mode = (st.mode ?? 0) & 0o7777;
      if (st.isSymlink) out.set(p, `l ${await Deno.readLink(p)}`);
      else if (st.isDirectory) {
        out.set(p, `d ${mode.toString(8)}`);
        await walk(p);
      } else {
        const sum = new Uint8Array(
          await crypto.subtle.digest("SHA-256", await Deno.readFile(p)),
        );
        out.set(
          p,
          `f ${mode.toString(8)} ${
            Array.from(sum, (b) => b.toString(16).padStart(2, "0")).join("")
          }`,
        );
      }
    }
  };
  await walk(node.dir);
  return out;
}

/** Human-readable differences between two node states (empty when identical). */
export function stateDiff(before: Map<string, string>, after: Map<string, string>): string[] {
  const d: string[] = [];
  for (const [p, v] of before) {
    if (!after.has(p)) d.push(`- ${p}`);
    else if (after.get(p) !== v) d.push(`~ ${p} (${v} → ${after.get(p)})`);
  }
  for (const p of after.keys()) if (!before.has(p)) d.push(`+ ${p}`);
  return d;
}

/** Commands that change state (everything else only reads). */
const READERS = new Set([
  "cat",
  "test",
  "od",
  "cmp",
  "find",
  "stat",
  "ls",
  "vzlist",
  "uname",
  "sha256sum",
]);
function mutating(argv: readonly string[]): boolean {
  if (READERS.has(argv[0])) return false;
  if (argv[0] === "dd" && !argv.some((a) => a.startsWith("of="))) return false; // a read
  if (argv[0] === "vzctl") return !argv.includes("status") && !argv.includes("--version");
  if (argv[0] === "sh" && argv[2] === "command -v vzfirewall") return false; // deploy's look-up
  return true;
}

/**
 * A LocalHost that lists every state-changing operation (`ops`) and, when `failAt` is set,
 * makes that operation (0-based, counted from the start) fail once: a command exits 1 with
 * `injected fault #k` on stderr, a file helper throws. Later operations (the rollback) run.
 */
export class FaultyHost extends LocalHost {
  ops: string[] = [];
  failAt = -1;
  failed?: string;

  constructor(sysroot: string) {
    super({ name: "cn1", sysroot, useSudo: false });
  }

  private hit(op: string): boolean {
    const k = this.ops.length;
    this.ops.push(op);
    if (k === this.failAt && !this.failed) {
      this.failed = op;
      return true;
    }
    return false;
  }

  private boom(op: string): never {
    throw new Error(`injected fault #${this.failAt} (${op}): Input/output error`);
  }

  protected override spawn(argv: readonly string[], opts: RunOptions): Promise<RunResult> {
    if (mutating(argv)) {
      const op = `run ${argv.join(" ")}`;
      if (this.hit(op)) {
        return Promise.resolve({
          argv,
          status: 1,
          stdout: "",
          stderr: `injected fault #${this.failAt}: ${argv[0]} failed: Input/output error\n`,
        });
      }
    }
    return super.spawn(argv, opts);
  }

  override async writeFileAtomic(
    path: string,
    data: string | Uint8Array,
    opts: { privileged?: boolean; mode?: number } = {},
  ) {
    const op = `write ${path}`;
    if (this.hit(op)) this.boom(op);
    await super.writeFileAtomic(path, data, opts);
  }

  override async mkdirp(path: string, opts: { privileged?: boolean; mode?: number } = {}) {
    const op = `mkdir ${path}`;
    if (this.hit(op)) this.boom(op);
    await super.mkdirp(path, opts);
  }

  override async rename(from: string, to: string, opts: { privileged?: boolean } = {}) {
    const op = `rename ${from} ${to}`;
    if (this.hit(op)) this.boom(op);
    await super.rename(from, to, opts);
  }

  override async remove(path: string, opts: { privileged?: boolean; recursive?: boolean } = {}) {
    const op = `remove ${path}`;
    if (this.hit(op)) this.boom(op);
    await super.remove(path, opts);
  }
}

export interface Captured {
  code: number;
  out: string;
  err: string;
  error?: Error;
}

/** Run an action module's default export in this process, on `host`, with stdin `input`. */
export async function runInProcess(
  action: (ctx: CommandContext) => Promise<number>,
  host: FaultyHost,
  args: string[],
  input: string,
  env: Record<string, string>,
): Promise<Captured> {
  let out = "", err = "";
  const ctx: CommandContext = {
    args,
    flags: {},
    host,
    mode: "node",
    env: (k) => env[k] ?? Deno.env.get(k),
    io: {
      readStdin: () => Promise.resolve(new TextEncoder().encode(input)),
      out: (t) => void (out += t),
      err: (t) => void (err += t),
    },
  };
  try {
    return { code: await action(ctx), out, err };
  } catch (e) {
    return { code: 1, out, err, error: e as Error };
  }
}

export interface Spawned {
  child: Deno.ChildProcess;
  done: Promise<{ code: number; signal: string | null; stdout: string; stderr: string }>;
}

/** Start `onevz <action> args…` on the node as a child process (stdin given or /dev/null). */
export function spawnAction(
  node: SimNode,
  action: string,
  args: string[],
  stdin?: string,
): Spawned {
  const child = new Deno.Command(`${REPO}/node_modules/.bin/deno`, {
    args: ["run", "-A", "--quiet", `${REPO}/main.ts`, action, ...args],
    env: node.env,
    stdin: stdin !== undefined ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    w.write(new TextEncoder().encode(stdin)).then(() => w.close()).catch(() => {});
  }
  const dec = new TextDecoder();
  const done = child.output().then((o) => ({
    code: o.code,
    signal: o.signal,
    stdout: dec.decode(o.stdout),
    stderr: dec.decode(o.stderr),
  }));
  return { child, done };
}

/** Number of hanging calls (`--hang` faults that fired) in the node's call log. */
export async function hangCount(node: SimNode): Promise<number> {
  const text = await Deno.readTextFile(`${node.root}/sim/calls.jsonl`).catch(() => "");
  return text.split("\n").filter((l) => l.includes('"hang":true')).length;
}

/** Wait until one more call than `seen` hangs in the simulator (a `--hang` fault fired). */
export async function waitForHang(node: SimNode, seen: number, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await hangCount(node) > seen) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no hanging simulator call within ${ms} ms`);
}

/**
 * SIGKILL the action (as a crash would) and then the simulator call it was blocked in (its
 * orphaned child, found before the kill), all by pid; returns once the action is gone.
 */
export async function killAction(s: Spawned): Promise<void> {
  const kids = descendants(s.child.pid);
  s.child.kill("SIGKILL");
  await s.done;
  for (const pid of kids.reverse()) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* already gone */ }
  }
}

/** A running CT laid out like deploy does (R = VM_DIR/<vid>/images), made with the sim's vzctl. */
export async function simVm(
  node: SimNode,
  vid: number,
  opts: { save?: boolean; start?: boolean } = {},
) {
  const ctid = String(1000 + vid);
  const r = `${node.vmDir}${vid}/images`;
  await Deno.mkdir(r, { recursive: true });
  const save = opts.save ? "<SAVE><![CDATA[yes]]></SAVE>" : "";
  await Deno.writeTextFile(
    `${r}/deployment.0`,
    `<TEMPLATE><DISK><DISK_ID><![CDATA[0]]></DISK_ID><IMAGE><![CDATA[debian-7.0-x86_64]]></IMAGE>` +
      `${save}</DISK><MEMORY><![CDATA[256]]></MEMORY><VMID><![CDATA[${vid}]]></VMID></TEMPLATE>`,
  );
  for (
    const argv of [
      [
        "create",
        ctid,
        "--ostemplate",
        "debian-7.0-x86_64",
        "--private",
        `${r}/private`,
        "--root",
        `${r}/root`,
        // as deploy does on vzctl 4.x (stock default: ploop)
        ...(JSON.parse(await Deno.readTextFile(`${node.root}/sim/node.json`)).vzctl.startsWith("4")
          ? ["--layout", "simfs"]
          : []),
      ],
      ["set", ctid, "--ipadd", `10.1.0.${vid}`, "--save"],
      ...(opts.start === false ? [] : [["start", ctid]]),
    ]
  ) {
    const o = await node.tool("vzctl", argv);
    if (o.code !== 0) throw new Error(`vzctl ${argv.join(" ")}: ${o.stderr}`);
  }
  await Deno.writeTextFile(`${r}/private/root/marker`, "user data\n").catch(async () => {
    await Deno.mkdir(`${r}/private/root`, { recursive: true });
    await Deno.writeTextFile(`${r}/private/root/marker`, "user data\n");
  });
  return { vid, ctid, r };
}
