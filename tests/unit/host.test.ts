/**
 * Host.readFiles: several files in one command. Checked against real GNU `tail` output (the
 * command it runs through sudo or ssh), and through LocalHost's direct and sudo paths.
 */
import assert from "node:assert/strict";
import { Host, type RunOptions, type RunResult, splitTailOutput } from "../../src/host/host.ts";
import { LocalHost } from "../../src/host/local.ts";

async function withFiles(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "onevz-host-" });
  try {
    await Deno.writeTextFile(`${dir}/a`, "first\nfile\n");
    await Deno.writeTextFile(`${dir}/no-newline`, "no newline at the end");
    await Deno.writeTextFile(`${dir}/empty`, "");
    await Deno.writeTextFile(`${dir}/looks like a header`, "==> x <==\n\n");
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A LocalHost that always goes through commands (as with sudo), without sudo itself. */
class CommandHost extends LocalHost {
  commands: string[][] = [];
  constructor() {
    super({ useSudo: false });
  }
  override run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    this.commands.push([...argv]);
    return super.run(argv, opts);
  }
  override readFiles(paths: readonly string[], opts: { privileged?: boolean } = {}) {
    return Host.prototype.readFiles.call(this, paths, opts);
  }
}

Deno.test("readFiles: one tail for many files, missing ones null, contents exact", async () => {
  await withFiles(async (dir) => {
    const paths = ["a", "missing", "no-newline", "empty", "looks like a header", "a"]
      .map((n) => `${dir}/${n}`);
    const want = await Promise.all(
      paths.map((p) => Deno.readTextFile(p).catch(() => null)),
    );
    assert.equal(want[1], null);
    const host = new CommandHost();
    assert.deepEqual(await host.readFiles(paths), want);
    assert.equal(host.commands.length, 1, "one command for all files");
    assert.equal(host.commands[0][0], "tail");
    // The direct path (root, no sudo) agrees.
    assert.deepEqual(await new LocalHost({ useSudo: false }).readFiles(paths), want);
    // Only missing files: every entry null, no error.
    assert.deepEqual(await host.readFiles([`${dir}/x`, `${dir}/y`]), [null, null]);
  });
});

Deno.test("readFiles: an unreadable file is an error, not a missing one", async () => {
  await withFiles(async (dir) => {
    const host = new CommandHost();
    // A directory makes tail complain with something other than "No such file".
    await assert.rejects(() => host.readFiles([`${dir}/a`, dir]), /tail/);
  });
});

Deno.test("splitTailOutput: the first printed header may belong to a later file", () => {
  const out = "==> /b <==\nB\n\n==> /c <==\nC";
  assert.deepEqual(splitTailOutput(out, ["/a", "/b", "/c"]), [null, "B\n", "C"]);
  assert.deepEqual(splitTailOutput("", ["/a"]), [null]);
});
