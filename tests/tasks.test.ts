/**
 * The deno.json tasks and package.json scripts, run the way a user runs them: with the Deno
 * npm installed (`node_modules/.bin/deno task X`, `npx deno task X`), with a Deno of the
 * system on PATH (the native binary copied outside node_modules), and `npm run X`. Each task
 * must start its own program: `demo --help` prints the demo's usage, `build` with a missing
 * DENORT_BIN names it (build.ts's own message), `bench --help` the bench's usage, and
 * `test <file>` runs tests/run.sh on that file up to its "N passed, N failed" line. A clone
 * without node_modules is told to run `npm install` first.
 */
import assert from "node:assert/strict";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Output, run } from "../fixtures/oned/run.ts";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const NPM_DENO = join(REPO, "node_modules/.bin/deno");
/** The native binary npm installed, behind the node_modules/.bin link. */
const NATIVE = Deno.realPathSync(NPM_DENO);
const opts = { sanitizeOps: false, sanitizeResources: false };
const have = (cmd: string) =>
  new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" }).outputSync()
    .success;

/** A "system" Deno: the native binary copied into a directory of its own, first on PATH. */
const systemDir = Deno.makeTempDirSync({ prefix: "onevz-sysdeno-" });
Deno.copyFileSync(NATIVE, join(systemDir, "deno"));
Deno.chmodSync(join(systemDir, "deno"), 0o755);
// Removed when the module unloads, however many of its tests ran.
globalThis.addEventListener("unload", () => Deno.removeSync(systemDir, { recursive: true }));
const PATH = Deno.env.get("PATH") ?? "/usr/bin:/bin";

interface Runner {
  name: string;
  /** The command line that runs task `task` with arguments `args`. */
  argv(task: string, args: string[]): string[];
  env?: Record<string, string>;
  skip?: boolean;
}

const RUNNERS: Runner[] = [
  { name: "node_modules/.bin/deno task", argv: (t, a) => [NPM_DENO, "task", t, ...a] },
  {
    name: "npx deno task",
    argv: (t, a) => ["npx", "--no-install", "deno", "task", t, ...a],
    skip: !have("npx"),
  },
  {
    name: "deno task (system Deno on PATH)",
    argv: (t, a) => ["deno", "task", t, ...a],
    env: { PATH: `${systemDir}:${PATH}` },
  },
  {
    name: "npm run",
    argv: (t, a) => t === "test" ? ["npm", "test", "--", ...a] : ["npm", "run", t, "--", ...a],
    skip: !have("npm"),
  },
];

function exec(argv: string[], o: { cwd?: string; env?: Record<string, string> } = {}) {
  return run(argv[0], argv.slice(1), {
    cwd: o.cwd ?? REPO,
    env: { NO_COLOR: "1", DENORT_BIN: "", ...o.env },
  });
}

const show = (r: Output) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

/** What each task must print to prove that it started its own program. */
const TASKS: Record<
  string,
  { args: string[]; env?: Record<string, string>; check(r: Output): void }
> = {
  demo: {
    args: ["--help"],
    check: (r) => {
      assert.equal(r.code, 0, show(r));
      assert.match(r.stdout, /^usage: npm run demo -- \[--keep\]/m, show(r));
    },
  },
  build: {
    args: [],
    env: { DENORT_BIN: "/nonexistent/onevz-denort" },
    check: (r) => {
      assert.equal(r.code, 1, show(r));
      assert.match(r.stderr, /^build: DENORT_BIN=\/nonexistent\/onevz-denort does not exist$/m);
    },
  },
  bench: {
    args: ["--help"],
    check: (r) => {
      assert.equal(r.code, 0, show(r));
      assert.match(r.stdout, /^usage: deno task bench \[--runs N\]/m, show(r));
    },
  },
  test: {
    args: ["tests/unit/units.test.ts"],
    check: (r) => {
      assert.equal(r.code, 0, show(r));
      const last = r.stdout.trimEnd().split("\n").at(-1) ?? "";
      const m = /^(\d+) passed, 0 failed$/.exec(last);
      assert.ok(m && Number(m[1]) > 0, show(r));
      assert.match(r.stdout, /^== deno test -A --no-lock tests\/unit\/units\.test\.ts$/m);
    },
  },
};

Deno.test("deno.json and package.json define the same tasks, all through tools/deno.sh", () => {
  const tasks = JSON.parse(Deno.readTextFileSync(join(REPO, "deno.json"))).tasks;
  const scripts = JSON.parse(Deno.readTextFileSync(join(REPO, "package.json"))).scripts;
  assert.deepEqual(Object.keys(tasks).sort(), Object.keys(TASKS).sort());
  assert.deepEqual(tasks, scripts);
  for (const [name, line] of Object.entries(tasks) as [string, string][]) {
    // deno task runs any program found in node_modules/.bin as JavaScript: never `deno …`.
    assert.doesNotMatch(line, /^deno\b|[;&|]\s*deno\b/, `${name}: ${line}`);
  }
});

for (const runner of RUNNERS) {
  for (const [task, t] of Object.entries(TASKS)) {
    Deno.test({
      name: `tasks: ${
        runner.argv(task, t.args).join(" ").replace(REPO + "/", "")
      } (${runner.name})`,
      ignore: runner.skip,
      ...opts,
      fn: async () => {
        const r = await exec(runner.argv(task, t.args), { env: { ...runner.env, ...t.env } });
        assert.doesNotMatch(r.stderr, /SyntaxError|node_modules\/deno\/deno:1:1/, show(r));
        t.check(r);
      },
    });
  }
}

Deno.test("tasks: tools/deno.sh runs the Deno that runs the task", opts, async () => {
  const dir = await Deno.makeTempDir({ prefix: "onevz-task-" });
  try {
    const script = join(REPO, "tools/deno.sh");
    await Deno.writeTextFile(
      join(dir, "deno.json"),
      JSON.stringify({ tasks: { which: `sh ${script} eval "console.log(Deno.execPath())"` } }),
    );
    const sys = await exec(["deno", "task", "-q", "which"], {
      cwd: dir,
      env: { PATH: `${systemDir}:${PATH}` },
    });
    assert.equal(sys.code, 0, show(sys));
    assert.equal(sys.stdout.trim(), join(systemDir, "deno"));
    // Not under deno task (npm run, by hand): the Deno npm installed.
    const direct = await exec(["sh", script, "eval", "console.log(Deno.execPath())"]);
    assert.equal(direct.stdout.trim(), NATIVE, show(direct));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tasks: the demo's task runs the whole demo with a system Deno", opts, async () => {
  const r = await exec(["deno", "task", "demo"], { env: { PATH: `${systemDir}:${PATH}` } });
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, /^demo OK: /m, show(r));
});

/** Every file of the checkout, outside node_modules, .git, dist and .tmp (relative paths). */
async function sourceFiles(dir = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(join(REPO, dir))) {
    const rel = dir ? `${dir}/${e.name}` : e.name;
    if (!dir && ["node_modules", ".git", "dist", ".tmp"].includes(e.name)) continue;
    if (e.isDirectory) out.push(...await sourceFiles(rel));
    else out.push(rel);
  }
  return out;
}

Deno.test(
  "tasks: a clone without node_modules is told to run npm install first",
  opts,
  async () => {
    const clone = await Deno.makeTempDir({ prefix: "onevz-clone-" });
    try {
      // The checkout's files as a clone has them (tracked and new, not ignored); without git
      // (a source tarball), every file but node_modules and the build output.
      const git = await run(
        "git",
        ["ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        {
          cwd: REPO,
        },
      ).catch(() => ({ code: 127, stdout: "" }));
      const files = git.code === 0 ? git.stdout.split("\0").filter((f) => f) : await sourceFiles();
      for (const f of files) {
        let st: Deno.FileInfo;
        try {
          st = await Deno.lstat(join(REPO, f));
        } catch {
          continue; // deleted in the working tree
        }
        await Deno.mkdir(dirname(join(clone, f)), { recursive: true });
        if (st.isSymlink) await Deno.symlink(await Deno.readLink(join(REPO, f)), join(clone, f));
        else await Deno.copyFile(join(REPO, f), join(clone, f));
      }
      for (const task of ["demo", "build", "bench"]) {
        const r = await exec(["deno", "task", task], {
          cwd: clone,
          env: { PATH: `${systemDir}:${PATH}` },
        });
        assert.notEqual(r.code, 0, show(r));
        assert.match(
          r.stderr,
          /node_modules\/zod is missing: run `npm install` in \S+ first/,
          show(r),
        );
        assert.doesNotMatch(r.stdout + r.stderr, /demo FAILED|error: |at file:/, show(r));
      }
    } finally {
      await Deno.remove(clone, { recursive: true });
    }
  },
);
