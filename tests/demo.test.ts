/**
 * `npm run demo` (fixtures/demo/demo.ts) end to end, as root and as an unprivileged user, plus
 * the one_tm emulation it relies on (fixtures/oned/tm.ts).
 */
import assert from "node:assert/strict";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { errorMessage, oneTm, parseTmConf, scriptLines } from "../fixtures/oned/tm.ts";
import { run } from "../fixtures/oned/run.ts";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const DEMO = join(REPO, "fixtures/demo/demo.ts");
const DENO = Deno.execPath();
const opts = { sanitizeOps: false, sanitizeResources: false };

/** The reply lines (`drv > …`) of a demo transcript. */
function replies(out: string): string[] {
  return out.split("\n").filter((l) => l.startsWith("drv > ")).map((l) => l.slice(6));
}

/** Node call lines (`  cn1  vzctl …`) of a transcript, as "node tool argv…". */
function nodeCalls(out: string): string[] {
  return out.split("\n").map((l) => /^ {2}(cn\d) {2,}(vz\S+ .*)$/.exec(l)).filter((m) => m)
    .map((m) => `${m![1]} ${m![2]}`);
}

function checkTranscript(out: string) {
  const r = replies(out);
  assert.deepEqual(r.map((l) => l.split(" ")[0]), [
    "MONITOR",
    "MONITOR",
    "TRANSFER",
    "DEPLOY",
    "EXECUTE",
    "POLL",
    "SAVE",
    "RESTORE",
    "EXECUTE",
    "MIGRATE",
    "EXECUTE",
    "POLL",
    "SHUTDOWN",
    "TRANSFER",
  ], out);
  for (const line of r) {
    if (line.startsWith("MONITOR ")) assert.match(line, /^MONITOR SUCCESS [01] .*HYPERVISOR=ovz/);
    else assert.match(line, /^[A-Z]+ SUCCESS 45 /, line);
  }
  assert.ok(r.includes("DEPLOY SUCCESS 45 1045"), r.join("\n"));
  assert.equal(r.filter((l) => l === "EXECUTE SUCCESS 45 vzfirewall").length, 3);
  for (const p of r.filter((l) => l.startsWith("POLL "))) assert.match(p, / STATE=a( |$)/);
  const calls = nodeCalls(out);
  assert.ok(calls.some((c) => /^cn1 vzctl (.* )?create 1045( |$)/.test(c)), calls.join("\n"));
  // The swap DISK (SIZE 1024) on a UBC node: src/ovz/plan.ts → --swappages 0:1024M.
  assert.ok(
    calls.some((c) => /^cn1 vzctl (.* )?set 1045 .*--swappages 0:1024M( |$)/.test(c)),
    calls.join("\n"),
  );
  assert.ok(calls.some((c) => /^cn1 vzmigrate /.test(c)), calls.join("\n"));
  assert.match(out, /^oned> DEPLOY 45 cn1 \S+\/\/45\/images\/deployment\.0 -$/m);
  assert.match(out, /^oned> RESTORE 45 cn1 1045 \S+\/images\/checkpoint$/m);
  assert.match(out, /^ {2}ssh {2}cn1: \S+\/vmm\/ovz\/restore \S+\/images\/checkpoint$/m);
  assert.match(out, /^demo OK: /m);
  // What each step made cn2 do (its status look-ups and vzctl's --quiet left out).
  const trace = (from: string, to: string) => {
    const part = out.slice(out.indexOf(from), out.indexOf(to, out.indexOf(from)));
    return part.split("\n").flatMap((l) => {
      const tm = /^ {2}tm {3}(\S+)/.exec(l);
      if (tm) return [`tm ${tm[1]}`];
      const words = /^ {2}cn2 {2}(.*)$/.exec(l)?.[1].split(" ").filter((w) => w !== "--quiet");
      return words && words[1] !== "status" ? [`${words[0]} ${words[1]}`] : [];
    });
  };
  // Shutdown only stops the container and leaves it for the epilog, as 2.2.1's tm_ssh expects
  // R/disk.0 to be there for the MV.
  assert.deepEqual(trace("oned> SHUTDOWN ", "drv > SHUTDOWN "), ["vzctl stop"], out);
  // The epilog (one_tm, after SHUTDOWN SUCCESS): the MV of the saved disk archives the private
  // area on cn2 (tar, streamed to the front-end), then DELETE destroys the container.
  const epilog = out.slice(out.indexOf("transfer.0.epilog"));
  assert.deepEqual(
    trace("transfer.0.epilog", "drv > TRANSFER "),
    ["tm MV", "tar --numeric-owner", "tm DELETE", "vzctl destroy"],
    epilog,
  );
  assert.match(epilog, /^ {2}cn2 {2}tar --numeric-owner -cjf - -C \S+\/images\/private \.$/m);
  assert.match(epilog, /^ {2}cn2 {2}vzctl --quiet destroy 1045$/m);
  assert.match(out, /no container is registered on either node/);
  // Each `vzfirewall -a → exit 255` comes with vzfirewall's reason and why it is a success.
  const lines = out.split("\n");
  const unchanged = lines.flatMap((l, i) => /vzfirewall -a +→ exit 255$/.test(l) ? [i] : []);
  assert.ok(unchanged.length > 0, "the restore's hook finds the rules in place");
  for (const i of unchanged) {
    assert.match(
      lines[i + 1],
      /^ {2}out {2}Nothing is changed\. .*exit 255 as success/,
      lines[i + 1],
    );
  }
}

Deno.test("npm run demo: vps145 through its whole life on simulated nodes", opts, async () => {
  const r = await run(DENO, ["run", "-A", "--quiet", DEMO, "--keep", "--full-paths"], {
    cwd: REPO,
    env: { NO_COLOR: "1" },
  });
  const kept = /^kept (\/\S+)$/m.exec(r.stdout)?.[1];
  try {
    assert.equal(r.code, 0, `demo failed:\n${r.stdout}\n${r.stderr}`);
    checkTranscript(r.stdout);
    assert.ok(kept, "no 'kept <dir>' line");
    // The SAVE=yes disk came back to the front-end as an archive of the container's files.
    const disk = join(kept, "fe/one/var/45/disk.0");
    assert.ok((await Deno.stat(disk)).isFile, disk);
    const list = await run("tar", ["-tf", disk]);
    assert.equal(list.code, 0, list.stderr);
    // Built from the VM's own image (the demo's marker file), not a node's cached template.
    assert.match(list.stdout, /^(\.\/)?etc\/onevz-demo-image$/m);
    assert.match(r.stdout, new RegExp(`^saved disk on the front-end: ${disk}$`, "m"));
    // Nothing left of the VM on the nodes.
    for (const n of ["cn1", "cn2"]) {
      await assert.rejects(
        Deno.stat(join(kept, "nodes", n, "vm/45/images")),
        `${n} still has vm/45/images`,
      );
    }
  } finally {
    if (kept) await Deno.remove(kept, { recursive: true }).catch(() => {});
  }
});

Deno.test("npm run demo as an unprivileged user (nobody, a HOME of its own)", opts, async (t) => {
  if (Deno.uid() !== 0) {
    console.log("  already unprivileged: the previous test covers it");
    return;
  }
  const su = (cmd: string) => run("su", ["nobody", "-s", "/bin/bash", "-c", cmd]);
  const probe = await su("unshare -r -m true");
  if (probe.code !== 0) {
    // simssh needs user namespaces for a non-root user (kernel.unprivileged_userns_clone,
    // AppArmor's restrict_unprivileged_userns): without them the demo must be run as root.
    console.log(`  SKIPPED: no unprivileged user namespaces here: ${probe.stderr.trim()}`);
    t.step("skipped", () => {});
    return;
  }
  const simBin = Deno.env.get("ONEVZ_DEMO_SIM_BIN");
  // nobody's HOME (Deno's cache) and TMPDIR: directories of this test's, removed afterwards.
  // Apart: the demo's $T (in TMPDIR) holds its CONTEXT FILES, which tm-context never takes
  // from the home of the user running it (oneadmin's, on a front-end).
  const base = await Deno.makeTempDir({ prefix: "onevz-nobody-" });
  const home = join(base, "home");
  const tmp = join(base, "tmp");
  try {
    await Deno.chmod(base, 0o755);
    for (const d of [home, tmp]) {
      await Deno.mkdir(d);
      await run("chown", ["nobody", d]);
    }
    const r = await su(
      `cd ${REPO} && HOME=${home} NO_COLOR=1 TMPDIR=${tmp} ` +
        (simBin ? `ONEVZ_DEMO_SIM_BIN=${simBin} ` : "") + `${DENO} run -A --quiet ${DEMO}`,
    );
    assert.equal(r.code, 0, `demo as nobody failed:\n${r.stdout}\n${r.stderr}`);
    checkTranscript(r.stdout);
    // Without --keep the temporary directory is gone.
    const dir = /^ {2}\$T = (\/\S+)/m.exec(r.stdout)?.[1];
    assert.ok(dir && dir.startsWith(`${tmp}/`), dir);
    await assert.rejects(Deno.stat(dir));
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("the demo exits non-zero with the reason when a step fails", opts, async () => {
  const u = await run(DENO, ["run", "-A", "--quiet", DEMO, "--bogus"], { cwd: REPO });
  assert.equal(u.code, 2);
  assert.match(u.stderr, /^usage: /);
  const r = await run(DENO, [
    "run",
    "-A",
    "--quiet",
    DEMO,
    "--fault",
    "cn1:vzctl:start:3:Unable to start container: demo fault",
  ], { cwd: REPO, env: { NO_COLOR: "1" } });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /^drv > DEPLOY FAILURE 45 .*demo fault/m);
  assert.match(r.stderr, /^demo FAILED: DEPLOY on cn1 failed: .*demo fault/m);
  assert.doesNotMatch(r.stdout, /^oned> POLL/m);
  // The temporary directory is removed on failure too.
  const dir = /^ {2}\$T = (\/\S+)/m.exec(r.stdout)?.[1];
  assert.ok(dir);
  await assert.rejects(Deno.stat(dir));
});

Deno.test("one_tm emulation: conf parsing, line splitting, stop at first failure", async () => {
  const dir = await Deno.makeTempDir({ prefix: "onevz-tm-" });
  try {
    const ok = join(dir, "ok");
    const bad = join(dir, "bad");
    await Deno.writeTextFile(ok, '#!/bin/sh\necho "ok: $*" >> "$(dirname "$0")/log"\n');
    await Deno.writeTextFile(
      bad,
      "#!/bin/sh\necho 'ERROR MESSAGE --8<------' >&2\necho \"no room for $2\" >&2\n" +
        "echo 'second line' >&2\necho 'ERROR MESSAGE ------>8--' >&2\nexit 3\n",
    );
    await Deno.chmod(ok, 0o755);
    await Deno.chmod(bad, 0o755);
    const conf = parseTmConf(
      `# comment\nCLONE=${ok}\n  mkswap = ${bad}  \nMV=ssh/tm_mv.sh\n`,
      "/usr/lib/one/tm_commands",
    );
    assert.deepEqual(conf, { CLONE: ok, MKSWAP: bad, MV: "/usr/lib/one/tm_commands/ssh/tm_mv.sh" });
    assert.deepEqual(scriptLines("# x\n\nCLONE  a   b\n  MV c d  \n"), [
      ["CLONE", "a", "b"],
      ["MV", "c", "d"],
    ]);
    const good = await oneTm(7, "clone fe:/a n:/b\nCLONE fe:/c n:/d\n", conf);
    assert.equal(good.reply, "TRANSFER SUCCESS 7 -");
    assert.equal(await Deno.readTextFile(join(dir, "log")), "ok: fe:/a n:/b\nok: fe:/c n:/d\n");
    const failed = await oneTm(7, "MKSWAP 1024 n:/swap\nCLONE fe:/e n:/f\n", conf);
    assert.equal(failed.result, "FAILURE");
    assert.equal(failed.steps.length, 1);
    assert.equal(failed.steps[0].code, 3);
    assert.equal(failed.message, "no room for n:/swap\nsecond line");
    assert.equal(failed.reply, "TRANSFER FAILURE 7 no room for n:/swap");
    const unknown = await oneTm(7, "FOO a b\n", conf);
    assert.equal(unknown.reply, "TRANSFER FAILURE 7 Unknown command: FOO");
    assert.equal(errorMessage("nothing\n"), "Error message not available");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
