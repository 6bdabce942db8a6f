/**
 * The benchmark's measuring tools (bench/measure.ts): the figures in BENCHMARKS.md are only
 * as honest as these. Tool time is the union of overlapping calls; the process count follows
 * strace's clone/execve records through threads and interleaved ("unfinished") lines.
 */
import assert from "node:assert/strict";
import { directChildren, stats, takeToolMs } from "../../bench/measure.ts";

Deno.test("bench: median and nearest-rank p95", () => {
  assert.deepEqual(stats([5, 1, 3]), { median: 3, p95: 5, n: 3 });
  assert.deepEqual(stats([4, 1, 3, 2]), { median: 2.5, p95: 4, n: 4 });
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(stats(hundred).p95, 95);
});

Deno.test("bench: time inside tools is the union of their lifetimes", async () => {
  const f = await Deno.makeTempFile();
  try {
    // Two calls overlapping by 1 s, a third one apart: 3 s + 1 s.
    await Deno.writeTextFile(f, "vzctl 10.0 12.0 0\nvzlist 11.0 13.0 0\nvzctl 20.0 21.0 1\n");
    assert.equal(Math.round(await takeToolMs(f)), 4000);
    assert.equal(await Deno.readTextFile(f), "", "emptied for the next run");
    assert.equal(await takeToolMs(f), 0);
  } finally {
    await Deno.remove(f);
  }
});

Deno.test("bench: direct children from strace -f output", () => {
  const trace = [
    `100 execve("/usr/bin/deno", ["deno", "run"], 0x1 /* 3 vars */) = 0`,
    `100 clone3({flags=CLONE_VM|CLONE_THREAD|CLONE_SIGHAND, exit_signal=0}, 88) = 101`,
    `101 clone3({flags=CLONE_VM|CLONE_VFORK, exit_signal=SIGCHLD}, 88 <unfinished ...>`,
    `102 execve("/sbin/vzctl", ["vzctl", "status"], 0x2 /* 3 vars */ <unfinished ...>`,
    `101 <... clone3 resumed>) = 102`,
    `102 <... execve resumed>) = 0`,
    // The tool's own children are not onevz's.
    `102 clone(child_stack=NULL, flags=CLONE_CHILD_SETTID|SIGCHLD) = 103`,
    `103 execve("/usr/bin/readlink", ["readlink"], 0x3 /* 3 vars */) = 0`,
    // The tool exec'ing again is still one process.
    `102 execve("/usr/bin/deno", ["deno"], 0x4 /* 3 vars */) = 0`,
    `100 vfork() = 104`,
    `104 execve("/usr/bin/nope", ["nope"], 0x5 /* 3 vars */) = -1 ENOENT (No such file)`,
    `104 execve("/bin/tail", ["tail"], 0x5 /* 3 vars */) = 0`,
  ].join("\n");
  assert.deepEqual(directChildren(trace), ["/sbin/vzctl", "/bin/tail"]);
});
