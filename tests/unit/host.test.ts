/**
 * Host.readFiles: several files in one command. Checked against real GNU `tail` output (the
 * command it runs through sudo or ssh), and through LocalHost's direct and sudo paths.
 */
import assert from "node:assert/strict";
import { Host, type RunOptions, type RunResult, splitTailOutput } from "../../src/host/host.ts";
import { LocalHost } from "../../src/host/local.ts";
import { persistSecondsFromEnv, sharedControlDir, SshHost } from "../../src/host/ssh.ts";

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

Deno.test("ssh: the shared control socket directory is private, or not used", async () => {
  const base = await Deno.makeTempDir({ dir: "/tmp", prefix: "xdg" });
  const old = Deno.env.get("XDG_RUNTIME_DIR");
  Deno.env.set("XDG_RUNTIME_DIR", base);
  try {
    const dir = sharedControlDir();
    assert.equal(dir, `${base}/onevz-ssh-${Deno.uid()}`);
    assert.equal(Deno.statSync(dir!).mode! & 0o777, 0o700);
    const host = new SshHost("cn1");
    assert.ok(host.sshArgv().includes(`ControlPath=${dir}/%C`), host.sshArgv().join(" "));
    assert.ok(host.sshArgv().includes("ControlPersist=60"));
    // Opened to others (or replaced by a symlink): not trusted, each action gets its own.
    Deno.chmodSync(dir!, 0o777);
    assert.equal(sharedControlDir(), undefined);
    const own = new SshHost("cn1").sshArgv().find((a) => a.startsWith("ControlPath="))!;
    assert.match(own, new RegExp(`onevz-ssh-${Deno.pid}-%C$`));
    Deno.removeSync(dir!);
    Deno.symlinkSync(base, dir!);
    assert.equal(sharedControlDir(), undefined);
    // ONEVZ_SSH_PERSIST=0: one connection per action; bad values fall back to 60 s.
    assert.equal(persistSecondsFromEnv("0"), 0);
    assert.equal(persistSecondsFromEnv("15"), 15);
    assert.equal(persistSecondsFromEnv("-3"), 60);
    assert.equal(persistSecondsFromEnv("soon"), 60);
    assert.equal(persistSecondsFromEnv(undefined), 60);
  } finally {
    if (old === undefined) Deno.env.delete("XDG_RUNTIME_DIR");
    else Deno.env.set("XDG_RUNTIME_DIR", old);
    await Deno.remove(base, { recursive: true });
  }
});
