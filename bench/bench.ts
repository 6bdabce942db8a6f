/**
 * onevz benchmark: wall-clock latency of the driver's hot paths against a simulated node.
 * Not a test (timings depend on the machine); run `npm run bench` and compare with the targets
 * below, which are what oned can live with on a node running many containers:
 *
 *   process start (--version)   ≤ 50 ms    (measured 2026-11-24: 30 ms, from source)
 *   poll (one container)        ≤ 150 ms   (86 ms, of which the simulator's vzctl status ~25)
 *   plan (vps145)               ≤ 150 ms   (72 ms)
 *   deploy + cancel (vps145)    ≤ 1 s      (325 ms)
 *
 * Usage: deno run -A bench/bench.ts [--runs N]
 */
import { makeSimNode, makeTemplateTarball, REPO, run } from "../tests/helpers/simnode.ts";

const runs = Number(Deno.args[Deno.args.indexOf("--runs") + 1]) || 10;

async function time(label: string, fn: () => Promise<void>, n = runs) {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  const q = (p: number) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))].toFixed(0);
  console.log(
    `${label.padEnd(34)} median ${q(0.5).padStart(5)} ms   p90 ${
      q(0.9).padStart(5)
    } ms   (${n} runs)`,
  );
}

function must(r: { code: number; stderr: string }, what: string) {
  if (r.code !== 0) throw new Error(`${what} failed: ${r.stderr}`);
}

const node = await makeSimNode({ flavour: "ubc" });
try {
  const xml = await Deno.readTextFile(`${REPO}/fixtures/templates/vps145.xml`);
  const doc = xml.replace(/<CONTEXT>.*<\/CONTEXT>/s, "");
  const images = `${node.vmDir}45/images`;
  await Deno.mkdir(images, { recursive: true });
  await Deno.writeFile(`${images}/disk.0`, await makeTemplateTarball("bz2"));

  await time("onevz --version (process start)", async () => {
    must(await node.action("--version", []), "version");
  });
  await time("simulator: vzctl status (baseline)", async () => {
    must(await node.tool("vzctl", ["status", "1045"]), "status");
  });
  await time("plan vps145", async () => {
    must(await node.action("plan", [`${REPO}/fixtures/templates/vps145.xml`]), "plan");
  });
  await time("deploy + cancel vps145", async () => {
    must(await node.action("deploy", [`${images}/deployment.0`], doc), "deploy");
    must(await node.action("cancel", ["1045"]), "cancel");
  }, Math.max(3, Math.floor(runs / 2)));
  must(await node.action("deploy", [`${images}/deployment.0`], doc), "deploy");
  await time("poll (running container)", async () => {
    const r = await node.action("poll", ["1045"]);
    must(r, "poll");
    if (!r.stdout.startsWith("STATE=a")) throw new Error(`poll said ${r.stdout}`);
  });
  const probe = await run(`${REPO}/node_modules/.bin/deno`, ["--version"]);
  console.log(`(${probe.stdout.split("\n")[0]}, from source with deno run)`);
} finally {
  await node.cleanup();
}
