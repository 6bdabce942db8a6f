/**
 * tm-clone's node script (src/actions/tm/clone.ts NODE_SCRIPT), run by sh as on a node. Another
 * clone's pruning may remove the cache entry in the instant after this clone linked its
 * target from it: the target holds the image, so `commit-place` succeeds. It failed with
 * "exit 1: no message" (seen racing six clones against a 1K cache, tests/hardening/images).
 * A `find` stand-in on PATH removes the entry just before the script's second look at it, the
 * one that writes the entry's record.
 */
import assert from "node:assert/strict";
import { NODE_SCRIPT } from "../../src/actions/tm/clone.ts";

async function sha256(text: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function commitPlace(opts: { pruneAtLook?: number }) {
  const dir = await Deno.makeTempDir({ prefix: "onevz-clone-script-" });
  try {
    const image = "an OS image\n";
    const bytes = new TextEncoder().encode(image);
    const digest = await sha256(image);
    const cache = `${dir}/cache`;
    const r = `${dir}/vm/45/images`;
    await Deno.mkdir(cache);
    await Deno.mkdir(r, { recursive: true });
    const entry = `${cache}/${digest}`;
    await Deno.writeFile(`${cache}/${digest}.onevz-tmp-1`, bytes);
    // find stand-in: counts its calls; at call N it first removes the entry (a prune).
    const bin = `${dir}/bin`;
    await Deno.mkdir(bin);
    const realFind = new TextDecoder().decode(
      (await new Deno.Command("sh", { args: ["-c", "command -v find"], stdout: "piped" })
        .output()).stdout,
    ).trim();
    await Deno.writeTextFile(
      `${bin}/find`,
      `#!/bin/sh\nn=$(($(cat '${dir}/looks' 2>/dev/null || echo 0) + 1))\necho $n > '${dir}/looks'\n` +
        `[ "$n" = "${opts.pruneAtLook ?? 0}" ] && rm -f -- '${entry}'\nexec '${realFind}' "$@"\n`,
      { mode: 0o755 },
    );
    const out = await new Deno.Command("sh", {
      args: [
        "-c",
        NODE_SCRIPT,
        "sh",
        "commit-place",
        `${cache}/${digest}.onevz-tmp-1`,
        entry,
        digest,
        `${entry}.record`,
        `${r}/disk.0`,
        `${r}/disk.0.onevz-tmp-2`,
      ],
      env: { PATH: `${bin}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}` },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return {
      code: out.code,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr),
      target: await Deno.readFile(`${r}/disk.0`).catch(() => null),
      entryLeft: await Deno.stat(entry).then(() => true, () => false),
      recordLeft: await Deno.stat(`${entry}.record`).then(() => true, () => false),
      bytes,
      names: [...Deno.readDirSync(cache)].map((e) => e.name).concat(
        [...Deno.readDirSync(r)].map((e) => e.name),
      ),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("clone script: commit-place links the target and records the entry", async () => {
  const r = await commitPlace({});
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split("\n"), ["committed", "placed"]);
  assert.deepEqual(r.target, r.bytes);
  assert.ok(r.entryLeft && r.recordLeft);
});

Deno.test("clone script: an entry pruned once the target is linked still places it", async () => {
  // Look 1: place's check that the entry is there; look 2: the record's fingerprint.
  const r = await commitPlace({ pruneAtLook: 2 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim().split("\n").at(-1), "placed");
  assert.deepEqual(r.target, r.bytes, "the target holds the image");
  assert.ok(!r.entryLeft && !r.recordLeft, "no record of a pruned entry");
  assert.deepEqual(r.names.filter((n) => n.includes("onevz-tmp") || n.includes(".$$")), []);
});

Deno.test("clone script: pruned before the target is linked, it says vanished", async () => {
  const r = await commitPlace({ pruneAtLook: 1 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim().split("\n").at(-1), "vanished");
  assert.equal(r.target, null);
});
