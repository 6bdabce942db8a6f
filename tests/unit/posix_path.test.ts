/** src/host/posix_path.ts gives node:path's posix results (fast-check, seed 42). */
import assert from "node:assert/strict";
import { posix } from "node:path";
import fc from "fast-check";
import { basename, dirname, join, normalize } from "../../src/host/posix_path.ts";

const segment = fc.constantFrom("", ".", "..", "a", "b", "disk.0", "...", "x y");
const path = fc.array(segment, { maxLength: 7 }).map((s) => s.join("/"));

Deno.test("posix_path agrees with node:path.posix", () => {
  for (const p of ["/", "//", "/a//b/", "a/../..", "/..", ".", "", "/a/b/..", "a/"]) {
    assert.equal(normalize(p), posix.normalize(p), `normalize ${p}`);
    assert.equal(dirname(p), posix.dirname(p), `dirname ${p}`);
    assert.equal(basename(p), posix.basename(p), `basename ${p}`);
  }
  fc.assert(
    fc.property(path, fc.array(path, { maxLength: 3 }), (p, more) => {
      assert.equal(normalize(p), posix.normalize(p));
      assert.equal(dirname(p), posix.dirname(p));
      assert.equal(basename(p), posix.basename(p));
      assert.equal(join(p, ...more), posix.join(p, ...more));
    }),
    { seed: 42, numRuns: 5000 },
  );
});
