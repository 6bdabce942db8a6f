// Hostile command-line arguments for the node actions and tm-delete: deploy ids with shell
// text or option syntax, checkpoint paths with `..` or outside the VM directory, destination
// hosts that are ssh options, tm-delete paths outside VM_DIR. None may run an OpenVZ tool, ssh,
// or touch a file: the simulator's call log, the canary files and the node's tree prove it.
import assert from "node:assert/strict";
import { join } from "node:path";
import { DENO, makeSimNode, type SimNode } from "../helpers/simnode.ts";
import { CANARY, figure, total } from "./figures.ts";

const TOOLS = new Set(["vzctl", "vzlist", "vzmigrate", "vzfirewall"]);

async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (p.endsWith("/sim/proc") || p.endsWith("/sim/sim")) continue;
      const st = await Deno.lstat(p);
      out.push(`${p} ${st.size} ${st.mtime?.getTime()}`);
      if (e.isDirectory) await walk(p);
    }
  };
  await walk(dir);
  return out.sort();
}

Deno.test("hostile arguments: nothing runs, nothing is written, canaries stay untouched", async () => {
  const node: SimNode = await makeSimNode({ flavour: "ubc" });
  try {
    // A real container for VM 45 (CTID 1045), so path checks are reached past the CTID check.
    const r = `${node.vmDir}45/images`;
    await Deno.mkdir(r, { recursive: true });
    const mk = await node.tool("vzctl", [
      "create",
      "1045",
      "--ostemplate",
      "debian-7.0-x86_64",
      "--private",
      `${r}/private`,
      "--root",
      `${r}/root`,
      "--layout",
      "simfs",
    ]);
    assert.equal(mk.code, 0, mk.stderr);
    await node.tool("vzctl", ["start", "1045"]);
    const victim = join(node.dir, "outside", "victim");
    await Deno.mkdir(join(node.dir, "outside"));
    await Deno.writeTextFile(victim, "precious\n");
    const touch = `touch ${CANARY}`;
    const cases: { family: string; action: string; args: string[]; codes: number[] }[] = [];
    const add = (family: string, action: string, args: string[], codes = [3]) =>
      cases.push({ family, action, args, codes });
    for (
      const id of [
        "1045;reboot",
        `1045;${touch}`,
        `$(${touch})`,
        "`" + touch + "`",
        "-1",
        "--1045",
        "1045\n",
        "1045 1046",
        "0x415",
        "100",
        "99999999999",
        "../1045",
        "",
      ]
    ) {
      for (const action of ["poll", "shutdown", "cancel", "reboot"]) add("deploy-id", action, [id]);
      add("deploy-id", "save", [id, `${r}/checkpoint`]);
      add("deploy-id", "migrate", [id, "cn2"]);
    }
    add("deploy-id", "poll", ["--help", "x"], [2]);
    add("deploy-id", "poll", ["-x"], [2, 3]);
    for (
      const cp of [
        `${r}/../46/images/checkpoint`,
        `${r}/../../outside/victim`,
        victim,
        "relative/checkpoint",
        `${r}/checkpoint\n${touch}`,
        `${r}/checkpoint;${touch}`.replace(`${r}/`, "/nonexistent/"),
        "/etc/passwd",
        "-oProxyCommand=x",
      ]
    ) {
      add("checkpoint-path", "save", ["1045", cp], [3]);
    }
    for (
      const cp of [
        `${r}/../46/images/checkpoint`,
        victim,
        "relative/checkpoint",
        `-${r}`,
      ]
    ) add("checkpoint-path", "restore", [cp, "1045"], [3]);
    add("checkpoint-path", "restore", ["/nonexistent/checkpoint", "1045"], [1]);
    for (
      const dest of [
        `-oProxyCommand=${touch}`,
        "-F/etc/passwd",
        `cn2;${touch}`,
        `$(${touch})`,
        "cn2 -v",
        "cn2\n",
        "",
        "../cn2",
        "user@cn2",
      ]
    ) add("migrate-dest", "migrate", ["1045", dest], [3]);
    const before = await tree(node.dir);
    const callsBefore = (await node.calls()).filter((c) => TOOLS.has(c.tool)).length;
    const env = { ...node.env, ONEVZ_VM_DIR: node.vmDir, ONEVZ_SSH: `/bin/false-${CANARY}` };
    const problems: string[] = [];
    const results: { code: number; stderr: string }[] = [];
    for (let i = 0; i < cases.length; i += 8) {
      results.push(
        ...await Promise.all(
          cases.slice(i, i + 8).map(async (c) => {
            const out = await new Deno.Command(
              DENO,
              {
                args: [
                  "run",
                  "-A",
                  "--quiet",
                  new URL("../../main.ts", import.meta.url).pathname,
                  c.action,
                  ...c.args,
                ],
                env,
                stdin: "null",
                stdout: "piped",
                stderr: "piped",
              },
            ).output();
            return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
          }),
        ),
      );
    }
    cases.forEach((c, i) => {
      const res = results[i];
      const what = `${c.action} ${JSON.stringify(c.args)}`;
      if (!c.codes.includes(res.code)) problems.push(`${what}: exit ${res.code} ${res.stderr}`);
      if (res.stderr.trim().split("\n").length !== 1) problems.push(`${what}: ${res.stderr}`);
    });
    assert.deepEqual(problems, []);
    const calls = (await node.calls()).filter((c) => TOOLS.has(c.tool));
    assert.equal(
      calls.length,
      callsBefore,
      `no tool ran: ${JSON.stringify(calls.slice(callsBefore))}`,
    );
    assert.deepEqual(await tree(node.dir), before, "nothing written");
    assert.equal(await Deno.readTextFile(victim), "precious\n");
    assert.equal(await Deno.stat(CANARY).then(() => true, () => false), false);
    const fam = new Map<string, number>();
    for (const c of cases) fam.set(c.family, (fam.get(c.family) ?? 0) + 1);
    for (const [f, n] of fam) figure("hostile-args", f, n, calls.length - callsBefore);
  } finally {
    await node.cleanup();
  }
});

Deno.test("hostile arguments: tm-delete refuses paths outside VM_DIR and runs nothing", async () => {
  const node = await makeSimNode({ flavour: "ubc" });
  try {
    const vmDir = node.vmDir.replace(/\/$/, "");
    await Deno.mkdir(`${vmDir}/45/images`, { recursive: true });
    const victim = join(node.dir, "outside");
    await Deno.mkdir(victim);
    await Deno.writeTextFile(`${victim}/victim`, "precious\n");
    const paths = [
      victim,
      `${vmDir}/../outside`,
      `${vmDir}/45/images/../../../outside`,
      vmDir,
      `${vmDir}/`,
      `${vmDir}/.`,
      `${vmDir}/.onevz-cache`,
      "/",
      "relative/45/images",
      `-rf ${victim}`,
      `${vmDir}/45/images\n${victim}`,
      `localhost:${victim}`,
      `-oProxyCommand=touch:${vmDir}/45/images`,
      `$(touch ${CANARY}):${vmDir}/45/images`,
    ];
    const before = await tree(node.dir);
    const env = { ...node.env, ONEVZ_VM_DIR: vmDir, ONEVZ_SSH: "/bin/false" };
    const results = await Promise.all(
      paths.map((p) =>
        new Deno.Command(`${new URL("../..", import.meta.url).pathname}node_modules/.bin/deno`, {
          args: [
            "run",
            "-A",
            "--quiet",
            new URL("../../main.ts", import.meta.url).pathname,
            "tm-delete",
            p,
          ],
          env,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).output()
      ),
    );
    results.forEach((r, i) => {
      const err = new TextDecoder().decode(r.stderr);
      assert.notEqual(r.code, 0, `${paths[i]}: ${err}`);
      assert.notEqual(r.code, 42);
      assert.match(err, /ERROR MESSAGE --8<------/);
    });
    assert.deepEqual(await tree(node.dir), before);
    assert.equal(await Deno.readTextFile(`${victim}/victim`), "precious\n");
    assert.equal(await Deno.stat(CANARY).then(() => true, () => false), false);
    figure("hostile-args", "tm-delete-path", paths.length);
    total("hostile-args");
  } finally {
    await node.cleanup();
  }
});
