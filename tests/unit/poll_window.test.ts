/**
 * The agentless poll's answer from its host's snapshot (src/actions/vmm/poll_window.ts), which
 * main.ts gives before it builds a host: only for a container a fresh snapshot of that very
 * node lists as running, for arguments poll itself would accept; anything else goes to poll,
 * which reads the node. The snapshot files are written here by hand in the file's format; the
 * end-to-end family (tests/e2e/poll_snapshot.test.ts) makes them through real ssh.
 */
import assert from "node:assert/strict";
import { runningReply } from "../../src/actions/vmm/poll_answer.ts";
import {
  answerForArgs,
  FORMAT,
  placeOf,
  type SnapshotEntry,
} from "../../src/actions/vmm/poll_window.ts";
import { describeContainer } from "../../src/ovz/container.ts";
import { DENO, REPO } from "../helpers/simnode.ts";

const ENTRY: SnapshotEntry = {
  reply: "STATE=a USEDMEMORY=4096 USEDCPU=7 NETRX=10 NETTX=20",
  notes: [],
  vestat: " 2050 0 0 0 16 63435200 0 16000000 564800 0 0 0",
};

interface World {
  env: Record<string, string>;
  get: (name: string) => string | undefined;
  place: NonNullable<ReturnType<typeof placeOf>>;
  write: (
    entries: Record<number, SnapshotEntry>,
    at?: { readAt: number; expiresAt: number },
  ) => void;
}

/** A private runtime directory of the test's own, with a snapshot of node cn1 in it. */
async function withWorld(fn: (w: World) => Promise<void> | void) {
  const xdg = await Deno.makeTempDir({ dir: "/tmp", prefix: "ovzw" });
  const saved = Deno.env.get("XDG_RUNTIME_DIR");
  Deno.env.set("XDG_RUNTIME_DIR", xdg);
  try {
    const env: Record<string, string> = {
      ONEVZ_MODE: "agentless",
      ONEVZ_SSH_CONFIG: `${xdg}/ssh_config`,
      XDG_RUNTIME_DIR: xdg,
    };
    const get = (name: string) => env[name];
    const place = placeOf(get, "cn1")!;
    assert.ok(place, "the private directory is usable");
    // Written for the node env names now (a test may change env first).
    const write: World["write"] = (entries, at) => {
      const place = placeOf(get, "cn1")!;
      const now = Date.now();
      const header = {
        format: FORMAT,
        identity: place.identity,
        readAt: at?.readAt ?? now - 1000,
        expiresAt: at?.expiresAt ?? now + 600_000,
      };
      const lines = [JSON.stringify(header)];
      for (const [ctid, e] of Object.entries(entries)) lines.push(`${ctid} ${JSON.stringify(e)}`);
      Deno.writeTextFileSync(place.snapshot, lines.join("\n") + "\n", { mode: 0o600 });
      Deno.writeTextFileSync(place.changed, "0", { mode: 0o600 });
    };
    await fn({ env, get, place, write });
  } finally {
    if (saved === undefined) Deno.env.delete("XDG_RUNTIME_DIR");
    else Deno.env.set("XDG_RUNTIME_DIR", saved);
    await Deno.remove(xdg, { recursive: true });
  }
}

Deno.test("poll window: a listed running container is answered from a fresh snapshot", () =>
  withWorld(({ get, write }) => {
    write({ 2050: ENTRY });
    assert.deepEqual(answerForArgs(get, ["cn1", "2050"]), ENTRY);
  }));

Deno.test("poll window: anything else is left to poll, which reads the node", () =>
  withWorld(({ env, get, place, write }) => {
    write({ 2050: ENTRY });
    const none = (args: string[], e: (n: string) => string | undefined = get) =>
      assert.equal(answerForArgs(e, args), undefined, JSON.stringify(args));
    none(["cn1", "2051"]); // not listed: stopped, gone or never there
    none(["cn1"]); // poll's own usage error
    none(["cn1", "2050", "extra"]);
    for (const id of ["100", "02050x", "2050 ", "-1", "99999999999", ""]) none(["cn1", id]);
    for (const host of ["-oProxyCommand=x", "cn1;id", "cn 1", ""]) none([host, "2050"]);
    none(["cn2", "2050"]); // another host
    // Another node behind the same name: another ssh config, sysroot or ssh program.
    for (const k of ["ONEVZ_SSH_CONFIG", "ONEVZ_NODE_SYSROOT", "ONEVZ_SSH"]) {
      none(["cn1", "2050"], (n) => (n === k ? "/elsewhere" : env[n]));
    }
    none(["cn1", "2050"], (n) => (n === "ONEVZ_MODE" ? undefined : env[n])); // node mode
    none(["cn1", "2050"], (n) => (n === "ONEVZ_POLL_WINDOW" ? "0" : env[n])); // off
    // An action on the host since the read.
    Deno.writeTextFileSync(place.changed, String(Date.now()));
    none(["cn1", "2050"]);
    // A window that ended, or a read said to come from the future.
    const now = Date.now();
    write({ 2050: ENTRY }, { readAt: now - 120_000, expiresAt: now - 1 });
    none(["cn1", "2050"]);
    write({ 2050: ENTRY }, { readAt: now - 120_000, expiresAt: now + 600_000 });
    none(["cn1", "2050"], (n) => (n === "ONEVZ_POLL_WINDOW" ? "60" : env[n]));
    write({ 2050: ENTRY }, { readAt: now + 60_000, expiresAt: now + 600_000 });
    none(["cn1", "2050"]);
    // A snapshot of an earlier format, or cut short.
    write({ 2050: ENTRY });
    const text = Deno.readTextFileSync(place.snapshot);
    Deno.writeTextFileSync(place.snapshot, text.replace(FORMAT, "onevz-poll-snapshot 1"));
    none(["cn1", "2050"]);
    Deno.writeTextFileSync(place.snapshot, text.slice(0, text.length - 20));
    none(["cn1", "2050"]);
  }));

Deno.test("poll window: a directory others can enter is never read", () =>
  withWorld(({ get, place, write }) => {
    write({ 2050: ENTRY });
    const dir = place.snapshot.slice(0, place.snapshot.lastIndexOf("/"));
    Deno.chmodSync(dir, 0o755);
    try {
      assert.equal(answerForArgs(get, ["cn1", "2050"]), undefined);
    } finally {
      Deno.chmodSync(dir, 0o700);
    }
  }));

Deno.test("poll window: the answer kept for a container is poll's, notes included", () => {
  const conf = 'IP_ADDRESS="10.0.0.5"\nVE_PRIVATE="/vz/private/$VEID"\nVE_ROOT="/vz/root/$VEID"\n';
  const ct = describeContainer(2050, "/etc/vz/conf/2050.conf", conf);
  const files = {
    conf,
    kernel: true,
    running: true,
    // privvmpages held × 4 KB is over what oned reads as a 32-bit int.
    beancounters: " 2050: kmemsize 1 1 1 1 0\n privvmpages 900000000 1 1 1 0",
    ownBeancounters: false,
    vswap: false,
    vestat: " 2050 0 0 0 16 0 0 200000000000 80000000000 0 0 0",
    venetstat: "2050 1000/2000",
    netDev: "",
  };
  const previous = " 2050 0 0 0 16 0 0 100000000000 20000000000 0 0 0";
  const { reply, notes } = runningReply(ct, files, previous);
  assert.equal(reply, "STATE=a USEDMEMORY=2147483647 USEDCPU=60 NETRX=1000 NETTX=2000");
  assert.equal(notes.length, 1);
  assert.match(notes[0], /^onevz: USEDMEMORY=3600000000 exceeds what oned can read.*\n$/);
  // Without an earlier read: the average since the container started.
  assert.match(runningReply(ct, files, "").reply, / USEDCPU=40 /);
});

Deno.test("poll window: main.ts answers from it without ssh, and goes to the node otherwise", () =>
  withWorld(async ({ env, write }) => {
    // An ssh that fails loudly: an answer from the snapshot never starts it.
    const ssh = `${env.XDG_RUNTIME_DIR}/ssh-refuses`;
    await Deno.writeTextFile(ssh, "#!/bin/sh\necho 'ssh was run' >&2\nexit 255\n", {
      mode: 0o755,
    });
    env.ONEVZ_SSH = ssh; // part of the node's identity: the snapshot is this program's node's
    write({ 2050: { ...ENTRY, notes: ["onevz: a note kept with the answer\n"] } });
    const withSsh = { ...env, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" };
    const poll = async (ctid: string) => {
      const r = await new Deno.Command(DENO, {
        args: ["run", "-A", "--quiet", `${REPO}/main.ts`, "poll", "cn1", ctid],
        env: withSsh,
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const dec = new TextDecoder();
      return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
    };
    const hit = await poll("2050");
    assert.equal(hit.code, 0, hit.err);
    assert.equal(hit.out, ENTRY.reply + "\n");
    assert.equal(hit.err, "onevz: a note kept with the answer\n");
    // Not in the snapshot: poll reads the node, here through the failing ssh, and says so.
    const miss = await poll("2051");
    assert.notEqual(miss.code, 0);
    assert.equal(miss.out, "");
    assert.match(miss.err, /ssh was run/);
  }));
