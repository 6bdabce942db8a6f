// Helpers for the simulator tests: temp roots and tool runs through the bin/ shims.
export const BIN = new URL("../../fixtures/sim/bin/", import.meta.url).pathname.replace(/\/$/, "");
const dec = new TextDecoder();

export interface Res {
  code: number;
  stdout: string;
  stderr: string;
}

export async function run(
  root: string,
  tool: string,
  args: string[],
  opts: { env?: Record<string, string>; stdin?: string } = {},
): Promise<Res> {
  const p = new Deno.Command(`${BIN}/${tool}`, {
    args,
    env: { OVZ_SIM_ROOT: root, PATH: `${BIN}:${Deno.env.get("PATH")}`, ...(opts.env ?? {}) },
    stdin: opts.stdin !== undefined ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = p.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const r = await p.output();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

export const vzctl = (root: string, ...a: string[]) => run(root, "vzctl", a);
export const vzlist = (root: string, ...a: string[]) => run(root, "vzlist", a);

/** A fresh simulated node under /tmp; returns its root. */
export async function mkRoot(...initArgs: string[]): Promise<string> {
  const dir = await Deno.makeTempDir({ dir: "/tmp", prefix: "ovzsim-test-" });
  const root = `${dir}/node`;
  const r = await run(root, "ovzsim", ["init", root, ...initArgs]);
  if (r.code !== 0) throw new Error(`ovzsim init failed: ${r.stderr}`);
  return root;
}

export function cleanup(root: string): void {
  Deno.removeSync(root.replace(/\/node$/, ""), { recursive: true });
}

export function read(p: string): string {
  return Deno.readTextFileSync(p);
}

/** Create CT ctid from centos-6-x86_64 (simfs on vzctl 4.x, whose stock default is ploop). */
export async function mkCt(root: string, ctid: number, ...extra: string[]): Promise<Res> {
  const info = JSON.parse(read(`${root}/sim/node.json`));
  const layout = parseInt(info.vzctl, 10) >= 4 && !extra.includes("--layout")
    ? ["--layout", "simfs"]
    : [];
  const r = await vzctl(
    root,
    "create",
    String(ctid),
    "--ostemplate",
    "centos-6-x86_64",
    ...layout,
    ...extra,
  );
  if (r.code !== 0) throw new Error(`create failed: ${r.stderr}`);
  return r;
}
