// Property-based hardening (fast-check, fixed seed, bounded runs): generated templates and
// argument lists full of hostile values either fail validation with one line, or give a plan
// whose argv cannot be option-injected and whose paths stay in the VM directory; context.sh,
// the FIREWALL block and shellQuote keep arbitrary text inert.
import assert from "node:assert/strict";
import fc from "fast-check";
import { specFromXml } from "../../src/actions/vmm/deploy.ts";
import { shellQuote } from "../../src/cli/errors.ts";
import { parseDriverConfig } from "../../src/one/config.ts";
import { contextSh, firewallBlock } from "../../src/one/context.ts";
import { DENO, makeSimNode } from "../helpers/simnode.ts";
import {
  type Attr,
  BASE,
  CANARY,
  figure,
  HOSTILE,
  planViolations,
  total,
  verdict,
  withAttr,
  xmlOf,
} from "./figures.ts";

const CONFIG = parseDriverConfig(null);
const SEED = 42;

/** Strings that are hostile most of the time: pieces of HOSTILE glued to arbitrary text. */
const hostile = fc.oneof(
  fc.constantFrom(...HOSTILE),
  fc.string({ maxLength: 24 }),
  fc.tuple(fc.constantFrom(...HOSTILE), fc.string({ maxLength: 8 }), fc.constantFrom(...HOSTILE))
    .map(([a, b, c]) => a + b + c),
);

const PATHS = [
  "NAME",
  "CONTEXT/HOSTNAME",
  "CONTEXT/NAMESERVER",
  "CONTEXT/FILES",
  "CONTEXT/FIREWALL",
  "CONTEXT/USERDATA",
  "NIC/IP",
  "NIC/MAC",
  "NIC/BRIDGE",
  "NIC/MODEL",
  "RAW/DATA",
  "DISK/SOURCE",
  "MEMORY/KMEMSIZE",
  "CPUMASK",
  "DISKSPACE",
];

function mutate(attrs: readonly Attr[], changes: [string, string][]): Attr[] {
  return changes.reduce<Attr[]>((a, [path, value]) => withAttr(a, path, value), [...attrs]);
}

Deno.test("property: generated hostile templates are refused in one line or planned inertly", () => {
  let refused = 0, accepted = 0;
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.constantFrom(...PATHS), hostile), { minLength: 1, maxLength: 4 }),
      fc.constantFrom<"ubc" | "vswap">("ubc", "vswap"),
      (changes, flavour) => {
        const doc = xmlOf(mutate(BASE, changes));
        const v = verdict(() => specFromXml(doc, CONFIG));
        if (!v.ok) {
          refused++;
          return;
        }
        accepted++;
        assert.deepEqual(planViolations(specFromXml(doc, CONFIG), flavour), []);
      },
    ),
    { seed: SEED, numRuns: 1500 },
  );
  figure("property", "templates(refused)", refused);
  figure("property", "templates(accepted, plan inert)", accepted);
});

Deno.test("property: RAW DATA tokens never yield an option-injected argv", () => {
  let n = 0;
  const tok = fc.oneof(
    fc.constantFrom("--numproc", "--description", "--hostname", "--name", "--userpasswd", "--save"),
    hostile,
  );
  fc.assert(
    fc.property(fc.array(tok, { maxLength: 6 }), (tokens) => {
      n++;
      const data = tokens.map((t) => `'${t.replaceAll("'", "")}'`).join(" ");
      const doc = xmlOf(mutate(BASE, [["RAW/DATA", data]]));
      const v = verdict(() => specFromXml(doc, CONFIG));
      if (v.ok) assert.deepEqual(planViolations(specFromXml(doc, CONFIG)), []);
    }),
    { seed: SEED, numRuns: 800 },
  );
  figure("property", "raw-data", n);
});

Deno.test("property: context.sh sourced by bash -u round-trips every value, runs nothing", async () => {
  const name = fc.stringMatching(/^[A-Z0-9_]{0,8}$/).map((s) => `V_${s}`);
  const value = fc.oneof(hostile, fc.string({ unit: "binary", maxLength: 20 }))
    .map((s) => s.replaceAll("\0", ""));
  const samples = fc.sample(fc.dictionary(name, value, { maxKeys: 5 }), {
    seed: SEED,
    numRuns: 40,
  });
  const dir = await Deno.makeTempDir();
  try {
    for (const vars of samples) {
      await Deno.writeTextFile(`${dir}/context.sh`, contextSh(vars));
      const keys = Object.keys(vars);
      // Print each value NUL-terminated so that newlines and blanks survive the comparison.
      const script = `set -u; . "$1"; shift; for k in "$@"; do printf '%s\\0' "\${!k}"; done`;
      const out = await new Deno.Command("bash", {
        args: ["-c", script, "x", `${dir}/context.sh`, ...keys],
        env: { PATH: "/usr/bin:/bin" },
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      const got = new TextDecoder().decode(out.stdout).split("\0").slice(0, -1);
      assert.deepEqual(got, keys.map((k) => vars[k]));
    }
    assert.equal(await Deno.stat(CANARY).then(() => true, () => false), false);
    figure("property", "context.sh", samples.length);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("property: the FIREWALL block cannot be left from inside", () => {
  let n = 0;
  fc.assert(
    fc.property(fc.string({ maxLength: 60 }), (text) => {
      n++;
      const doc = xmlOf(mutate(BASE, [["CONTEXT/FIREWALL", text]]));
      const v = verdict(() => specFromXml(doc, CONFIG));
      if (!v.ok) return;
      const fw = specFromXml(doc, CONFIG).context?.firewall;
      if (fw === undefined) return;
      const lines = firewallBlock(fw).split("\n").slice(0, -1);
      assert.equal(lines[1], 'FIREWALL="');
      assert.equal(lines.at(-2), '"');
      for (const l of lines.slice(2, -2)) {
        // nothing ends the value, nor reads as a vzctl key or shell code when sourced
        assert.ok(!/["=$`\\]/.test(l) && l.trim() === l && l !== "", JSON.stringify(l));
      }
    }),
    { seed: SEED, numRuns: 1000 },
  );
  figure("property", "firewall-block", n);
});

Deno.test("property: shellQuote round-trips arbitrary strings through sh", async () => {
  const samples = fc.sample(
    fc.oneof(hostile, fc.string({ unit: "binary", maxLength: 30 })).map((s) =>
      s.replaceAll("\0", "")
    ),
    { seed: SEED, numRuns: 60 },
  );
  // One sh for all: each quoted word is printed NUL-terminated.
  const script = `for a in ${samples.map(shellQuote).join(" ")}; do printf '%s\\0' "$a"; done`;
  const out = await new Deno.Command("sh", { args: ["-c", script], stdout: "piped" }).output();
  const got = new TextDecoder().decode(out.stdout).split("\0").slice(0, -1);
  assert.deepEqual(got, samples);
  assert.equal(await Deno.stat(CANARY).then(() => true, () => false), false);
  figure("property", "shellQuote", samples.length);
});

Deno.test("property: hostile argument lists for the actions run no tool", async () => {
  const node = await makeSimNode({ flavour: "ubc" });
  try {
    const r = `${node.vmDir}45/images`;
    const action = fc.constantFrom("poll", "shutdown", "save", "restore", "migrate", "tm-delete");
    const samples = fc.sample(fc.tuple(action, hostile, hostile), { seed: SEED, numRuns: 24 })
      .map(([a, x, y]) => {
        const args = a === "save"
          ? [x, `${r}/../${y}`]
          : a === "restore"
          ? [`${r}/${x}/../checkpoint`, y]
          : a === "migrate"
          ? [`-${x}`, y]
          : a === "tm-delete"
          ? [`/${x}/../${y}`]
          : [x];
        return { a, args: args.map((s) => s.replaceAll("\0", "")) };
      });
    const env = { ...node.env, ONEVZ_VM_DIR: node.vmDir, ONEVZ_SSH: "/bin/false" };
    const results = await Promise.all(samples.map(({ a, args }) =>
      new Deno.Command(DENO, {
        args: [
          "run",
          "-A",
          "--quiet",
          new URL("../../main.ts", import.meta.url).pathname,
          a,
          ...args,
        ],
        env,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output()
    ));
    results.forEach((res, i) => {
      assert.ok([1, 2, 3].includes(res.code), `${JSON.stringify(samples[i])}: ${res.code}`);
    });
    const calls = (await node.calls()).filter((c) => c.tool !== "ovzsim");
    assert.deepEqual(calls, []);
    assert.equal(await Deno.stat(CANARY).then(() => true, () => false), false);
    figure("property", "argument-lists", samples.length, calls.length);
    total("property");
  } finally {
    await node.cleanup();
  }
});
