// build.ts: compiles where denort is available, and otherwise says how to supply DENORT_BIN.
import assert from "node:assert/strict";
import { VERSION } from "../src/version.ts";

const root = new URL("..", import.meta.url).pathname;

async function build(env: Record<string, string>, output: string) {
  const res = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "build.ts", "--output", output],
    cwd: root,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: res.code,
    stdout: new TextDecoder().decode(res.stdout),
    stderr: new TextDecoder().decode(res.stderr),
  };
}

Deno.test("build: a missing DENORT_BIN file is named in a one-line error", async () => {
  const out = await Deno.makeTempDir();
  const r = await build({ DENORT_BIN: "/nonexistent/denort" }, `${out}/onevz`);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /DENORT_BIN=\/nonexistent\/denort does not exist/);
  await Deno.remove(out, { recursive: true });
});

Deno.test("build: DENORT_BIN pointing at deno itself is detected, no bogus binary left", async () => {
  const out = await Deno.makeTempDir();
  const r = await build({ DENORT_BIN: Deno.execPath() }, `${out}/onevz`);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /must be the denort runtime/);
  await assert.rejects(Deno.stat(`${out}/onevz`));
  await Deno.remove(out, { recursive: true });
});

Deno.test("build: without DENORT_BIN it either compiles a working onevz or explains", async () => {
  const out = await Deno.makeTempDir();
  const r = await build({ DENORT_BIN: "" }, `${out}/onevz`);
  if (r.code === 0) {
    const v = await new Deno.Command(`${out}/onevz`, { args: ["--version"] }).output();
    assert.equal(new TextDecoder().decode(v.stdout).trim(), `onevz ${VERSION}`);
  } else {
    // Offline machines (like CI here) cannot fetch denort: the message must say what to do.
    assert.match(r.stderr, /could not be downloaded.*DENORT_BIN=\/path\/to\/denort/s);
  }
  await Deno.remove(out, { recursive: true });
});
