/**
 * Dispatch: by argv[0] (a remotes entry `exec -a poll …`) and by subcommand, global help,
 * unknown commands, argument counts and --version.
 */
import assert from "node:assert/strict";
import { COMMANDS } from "../src/cli/commands.ts";
import { VERSION } from "../src/version.ts";
import { DENO, REPO_ROOT, run } from "./testbed/bed.ts";

const MAIN = `${REPO_ROOT}/main.ts`;

function onevz(args: string[]) {
  return run(DENO, ["run", "-A", "--quiet", "--no-lock", MAIN, ...args], { cwd: REPO_ROOT });
}

function bashOnevz(argv0: string, args: string) {
  return run("bash", [
    "-c",
    `exec -a ${argv0} '${DENO}' run -A --quiet --no-lock '${MAIN}' ${args}`,
  ], { cwd: REPO_ROOT });
}

Deno.test("dispatch by argv[0]: exec -a poll … --help prints poll's help", async () => {
  const r = await bashOnevz("poll", "--help");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Usage: onevz poll <deploy_id>/);
});

Deno.test("dispatch by subcommand: onevz poll --help prints poll's help", async () => {
  const r = await onevz(["poll", "--help"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Usage: onevz poll <deploy_id>/);
});

Deno.test("both dispatch forms print the same help", async () => {
  const [a, b] = await Promise.all([bashOnevz("poll", "--help"), onevz(["poll", "--help"])]);
  assert.equal(a.stdout, b.stdout);
});

Deno.test("argv[0] through a path (…/vmm/ovz/deploy style) uses its basename", async () => {
  const r = await bashOnevz("/some/remotes/vmm/ovz/deploy", "--help");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Usage: onevz deploy <deployment_file>/);
});

Deno.test("onevz --help lists every command of the command table", async () => {
  const r = await onevz(["--help"]);
  assert.equal(r.code, 0, r.stderr);
  for (const c of COMMANDS) {
    assert.match(r.stdout, new RegExp(`^  ${c.name.replace("-", "\\-")} +\\S`, "m"), c.name);
  }
});

Deno.test("onevz without arguments prints the help and exits 2", async () => {
  const r = await onevz([]);
  assert.equal(r.code, 2);
  assert.match(r.stdout, /Commands:/);
});

Deno.test("onevz bogus: one-line error on stderr, exit 2", async () => {
  const r = await onevz(["bogus"]);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, "");
  assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
  assert.match(r.stderr, /bogus/);
  assert.doesNotMatch(r.stderr, /^ExitCode:/m);
});

Deno.test("wrong argument count exits 2 with a one-line error", async () => {
  for (const args of [["poll"], ["poll", "1", "2"], ["save", "1"], ["migrate", "1", "2", "3"]]) {
    const r = await onevz(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, new RegExp(args[0]));
  }
});

Deno.test("wrong argument count by argv[0] exits 2 too", async () => {
  const r = await bashOnevz("poll", "");
  assert.equal(r.code, 2, r.stderr);
});

Deno.test("--version prints src/version.ts's version, which matches package.json", async () => {
  const r = await onevz(["--version"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), `onevz ${VERSION}`);
  const pkg = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}/package.json`));
  assert.equal(pkg.version, VERSION);
});

Deno.test("src/version.ts is a tracked source file, in step with package.json and its lock", async () => {
  // Tracked, not generated: a clone and `deno compile` need it as it is. Never ignored.
  const inGit = await run("git", ["rev-parse", "--is-inside-work-tree"], { cwd: REPO_ROOT })
    .catch(() => ({ code: 127, stdout: "", stderr: "" }));
  if (inGit.code === 0) {
    const tracked = await run("git", ["ls-files", "--error-unmatch", "src/version.ts"], {
      cwd: REPO_ROOT,
    });
    assert.equal(tracked.code, 0, `src/version.ts is not tracked: ${tracked.stderr}`);
    const ignored = await run("git", ["check-ignore", "--no-index", "-v", "src/version.ts"], {
      cwd: REPO_ROOT,
    });
    assert.equal(ignored.code, 1, `src/version.ts is ignored: ${ignored.stdout}`);
  }
  // (A source tarball has no git; its .gitignore may not name the file either.)
  const gitignore = await Deno.readTextFile(`${REPO_ROOT}/.gitignore`).catch(() => "");
  assert.doesNotMatch(gitignore, /^\/?(src\/)?version\.ts$/m, ".gitignore names src/version.ts");
  const lock = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}/package-lock.json`));
  assert.equal(lock.version, VERSION, "package-lock.json version");
  assert.equal(lock.packages[""].version, VERSION, "package-lock.json packages[''] version");
});

Deno.test("every command's --help says each sentence once", async () => {
  for (const c of COMMANDS) {
    const r = await onevz([c.name, "--help"]);
    assert.equal(r.code, 0, `${c.name}: ${r.stderr}`);
    const sentences = r.stdout.replace(/\s+/g, " ").split(/(?<=\.) /).map((s) => s.trim())
      .filter((s) => s);
    const seen = new Set<string>();
    for (const s of sentences) {
      assert.ok(!seen.has(s), `${c.name} --help repeats "${s}"`);
      seen.add(s);
    }
    // Where it runs, once: "Runs on the source node. Runs on the cluster node …" said it twice.
    assert.ok(
      sentences.filter((s) => /^Runs on /.test(s)).length <= 1,
      `${c.name} --help says where it runs twice:\n${r.stdout}`,
    );
  }
});
