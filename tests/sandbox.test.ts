/**
 * tests/sandbox.sh, the suite's own /tmp and pid namespace (tests/run.sh): a checkout that lives
 * under /tmp (a clone made there) is still there inside the sandbox, and it is not counted as
 * something the tests left behind; what a command does leave in /tmp is. Runs the script as
 * tests/run.sh does, as PID 1 of new pid and mount namespaces (root only: that is when run.sh
 * uses them).
 */
import assert from "node:assert/strict";

const SCRIPT = new URL("./sandbox.sh", import.meta.url).pathname;
const canUnshare = Deno.uid() === 0 &&
  (await new Deno.Command("unshare", {
    args: ["-m", "-p", "-f", "--mount-proc", "true"],
    stdout: "null",
    stderr: "null",
  }).output().then((r) => r.success, () => false));

async function inSandbox(checkout: string, sandbox: string, command: string[]) {
  const r = await new Deno.Command("unshare", {
    args: [
      "-m",
      "-p",
      "-f",
      "--mount-proc",
      "--propagation",
      "private",
      "bash",
      `${checkout}/tests/sandbox.sh`,
      sandbox,
      ...command,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return {
    code: r.code,
    out: dec.decode(r.stdout),
    err: dec.decode(r.stderr),
    left: Deno.readTextFileSync(`${sandbox}/left`).split("\n").filter((l) => l),
  };
}

Deno.test({
  name: "sandbox: a checkout under /tmp stays reachable, and is not a leftover",
  ignore: !canUnshare,
  fn: async () => {
    // A checkout of its own under /tmp (only the script matters here); the sandbox outside
    // /tmp, where tests/run.sh makes it (/tmp is what the sandbox replaces).
    const checkout = await Deno.makeTempDir({ dir: "/tmp", prefix: "onevz-checkout-" });
    const sandbox = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "onevz-sandbox-" });
    try {
      await Deno.mkdir(`${checkout}/tests`);
      await Deno.copyFile(SCRIPT, `${checkout}/tests/sandbox.sh`);
      await Deno.writeTextFile(`${checkout}/marker`, "the checkout\n");
      await Deno.mkdir(`${sandbox}/tmp`, { mode: 0o1777 });
      await Deno.mkdir(`${sandbox}/run`, { mode: 0o700 });

      const clean = await inSandbox(checkout, sandbox, ["cat", `${checkout}/marker`]);
      assert.equal(clean.code, 0, clean.err);
      assert.equal(clean.out, "the checkout\n");
      assert.deepEqual(clean.left, []);

      // What a test leaves in the sandbox's /tmp is still reported.
      const messy = await inSandbox(checkout, sandbox, ["touch", "/tmp/left-by-a-test"]);
      assert.equal(messy.code, 0, messy.err);
      assert.deepEqual(messy.left, ["file in /tmp: left-by-a-test"]);
      // The checkout itself was never touched through the sandbox's /tmp.
      assert.equal(await Deno.readTextFile(`${checkout}/marker`), "the checkout\n");
    } finally {
      await Deno.remove(sandbox, { recursive: true });
      await Deno.remove(checkout, { recursive: true });
    }
  },
});
