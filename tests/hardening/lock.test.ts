/**
 * The per-container lock under real concurrency: separate processes (tests/hardening/
 * lock_worker.ts), started together, each taking the lock of one R and logging when it
 * enters and leaves. Exclusive means the log never shows two "enter" lines without an "exit"
 * between them — checked over many trials, each starting from a stale lock left by a killed
 * process (the case where breaking the lock used to be `rm` + `mkdir`: two got in).
 * Then the owner records a machine cannot check any more: a pid reused by another process,
 * a machine rebooted since the lock was taken, and a lock of another machine (kept until it
 * is old). And what two concurrent shutdowns say: the loser reports what really happened.
 * Prints `figures: lock <trials> trials × <workers> processes, <n> with two inside`.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { hostname } from "node:os";
import { LocalHost } from "../../src/host/local.ts";
import { lockContainer } from "../../src/ovz/container.ts";
import { DENO, makeSimNode, REPO } from "../helpers/simnode.ts";
import { simVm } from "./fault_node.ts";

const OPTS = { sanitizeOps: false, sanitizeResources: false } as const;
const TRIALS = 24;
const WORKERS = 3;

const bootId = () => Deno.readTextFileSync("/proc/sys/kernel/random/boot_id").trim();
const startTicks = (pid: number | "self") => {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
};

/** A pid that was just used by a process that has exited (its lock is stale). */
async function deadPid(): Promise<number> {
  const p = new Deno.Command("true").spawn();
  await p.status;
  return p.pid;
}

/** Leave a lock in `dir` as a killed action would: the old or the current owner record. */
async function staleLock(dir: string, format: "old" | "new") {
  await Deno.mkdir(`${dir}/.onevz.lock`);
  const pid = await deadPid();
  const owner = format === "old"
    ? { pid, host: hostname(), action: "deploy", since: Date.now() }
    : {
      pid,
      host: hostname(),
      action: "deploy",
      since: Date.now(),
      nonce: crypto.randomUUID().replaceAll("-", ""),
      bootId: bootId(),
      startTicks: "1",
    };
  await Deno.writeTextFile(`${dir}/.onevz.lock/owner`, JSON.stringify(owner) + "\n");
}

/** Overlaps in an enter/exit log: an "enter" while another process is inside. */
function overlaps(log: string): number {
  let inside: string | undefined;
  let bad = 0;
  for (const line of log.split("\n").filter((l) => l)) {
    const [what, pid] = line.split(" ");
    if (what === "enter") {
      if (inside !== undefined) bad++;
      inside = pid;
    } else if (inside === pid) inside = undefined;
  }
  return bad;
}

async function trial(dir: string, log: string, extra: string[] = []) {
  const startAt = Date.now() + 1500;
  const workers = Array.from({ length: WORKERS }, () =>
    new Deno.Command(DENO, {
      args: [
        "run",
        "-A",
        "--quiet",
        `${REPO}/tests/hardening/lock_worker.ts`,
        dir,
        log,
        String(startAt),
        "40",
        ...extra,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output());
  const results = await Promise.all(workers);
  const stderr = results.map((r) => new TextDecoder().decode(r.stderr)).join("");
  return { stderr, failed: results.filter((r) => r.code !== 0).length };
}

Deno.test({
  name:
    `lock: ${TRIALS} trials, ${WORKERS} processes at once on a stale lock → one inside at a time`,
  ...OPTS,
  fn: async () => {
    const base = await Deno.makeTempDir({ prefix: "onevz-lock-" });
    let bad = 0;
    let crashed = 0;
    const errors: string[] = [];
    let brokenNotes = 0;
    try {
      // Four trials at a time (each on its own R): twelve processes contend at once.
      const one = async (i: number) => {
        const dir = `${base}/${i}/images`;
        await Deno.mkdir(dir, { recursive: true });
        await staleLock(dir, i % 2 === 0 ? "old" : "new");
        const log = `${base}/${i}.log`;
        await Deno.writeTextFile(log, "");
        const { stderr, failed } = await trial(dir, log);
        const text = await Deno.readTextFile(log);
        if (overlaps(text) > 0) bad++;
        if (failed > 0) {
          crashed++;
          errors.push(stderr.split("\n").find((l) => /error/i.test(l)) ?? stderr);
          return;
        }
        assert.equal(text.split("\n").filter((l) => l.startsWith("enter")).length, WORKERS);
        brokenNotes += (stderr.match(/broke the lock of an interrupted deploy/g) ?? []).length;
        assert.ok(!existsSync(`${dir}/.onevz.lock`), "released at the end");
      };
      for (let i = 0; i < TRIALS; i += 4) {
        await Promise.all([0, 1, 2, 3].map((k) => one(i + k)));
      }
      console.log(
        `figures: lock ${TRIALS} trials × ${WORKERS} processes, ${bad} with two inside, ` +
          `${crashed} with a worker failing`,
      );
      assert.equal(bad, 0, `${bad} of ${TRIALS} trials had two processes inside the lock`);
      assert.equal(crashed, 0, `a worker failed: ${errors.join(" | ")}`);
      assert.equal(brokenNotes, TRIALS, "each stale lock was broken once, and said so");
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});

Deno.test({
  name: "lock: a reused pid, a reboot since, a foreign machine's lock (kept until old)",
  ...OPTS,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "onevz-lock-" });
    const host = new LocalHost({ useSudo: false });
    const fast = { waitMs: 1500, pollMs: 50 };
    const leave = (owner: object) => {
      Deno.mkdirSync(`${dir}/.onevz.lock`);
      Deno.writeTextFileSync(`${dir}/.onevz.lock/owner`, JSON.stringify(owner));
    };
    const notes: string[] = [];
    const take = async (opts = {}) =>
      await (await lockContainer(host, dir, "test", {
        ...fast,
        ...opts,
        onBroken: (m) => notes.push(m),
      }))();
    try {
      // The owner's pid now belongs to a live process started later (this test's parent):
      // the recorded start time differs, so the lock is stale at once, not after 60 minutes.
      const live = Deno.ppid;
      const common = { host: hostname(), action: "save", since: Date.now() };
      leave({ ...common, pid: live, nonce: "a1", bootId: bootId(), startTicks: "1" });
      await take();
      assert.match(notes.at(-1)!, /pid \d+ now belongs to another process/);
      // The machine rebooted since (another boot id): stale, whatever the pid does now.
      leave({ ...common, pid: live, nonce: "a2", bootId: "0-rebooted", startTicks: "1" });
      await take();
      assert.match(notes.at(-1)!, /has rebooted since/);
      // An old owner record without boot id, taken before this machine booted.
      leave({ ...common, pid: live, since: 1000 });
      await take();
      assert.match(notes.at(-1)!, /has rebooted since/);
      // A live owner (this process, same start time) holds it: busy, with who and since when.
      leave({
        ...common,
        pid: Deno.pid,
        nonce: "a3",
        bootId: bootId(),
        startTicks: startTicks("self"),
      });
      await assert.rejects(take(), /busy: save by pid \d+ on .* since/);
      Deno.removeSync(`${dir}/.onevz.lock`, { recursive: true });
      // Another machine's lock cannot be checked: kept until it is older than staleMinutes.
      leave({ ...common, host: "elsewhere", pid: 1, nonce: "a4" });
      await assert.rejects(take(), /busy/);
      Deno.removeSync(`${dir}/.onevz.lock`, { recursive: true });
      leave({ ...common, host: "elsewhere", pid: 1, nonce: "a5", since: Date.now() - 3_600_000 });
      await take({ staleMinutes: 30 });
      assert.match(notes.at(-1)!, /older than 30 minutes/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "lock: two shutdowns at once → both succeed, the later one says it was already done",
  ...OPTS,
  fn: async () => {
    const node = await makeSimNode({ flavour: "ubc" });
    try {
      for (const save of [false, true]) {
        const vm = await simVm(node, save ? 41 : 40, { save });
        const [a, b] = await Promise.all([
          node.action("shutdown", [vm.ctid]),
          node.action("shutdown", [vm.ctid]),
        ]);
        assert.equal(a.code, 0, a.stderr);
        assert.equal(b.code, 0, b.stderr);
        const said = a.stderr + b.stderr;
        assert.match(said, /already shut down/, said);
        assert.doesNotMatch(said, /left stopped and intact|failed/, said);
        assert.ok(existsSync(`${vm.r}/private/root/marker`), "files kept for the epilog");
        const stops = (await node.calls()).filter((c) =>
          c.argv.includes("stop") && c.argv.includes(vm.ctid)
        );
        assert.equal(stops.length, 1, "stopped once");
      }
    } finally {
      await node.cleanup();
    }
  },
});
