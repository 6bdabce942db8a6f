/**
 * Builds dist/onevz, the single x86_64 Linux executable, with `deno compile`.
 *
 * `deno compile` needs the "denort" runtime. It downloads it unless DENORT_BIN names a local
 * copy (for offline machines: take denort-x86_64-unknown-linux-gnu.zip of the same Deno
 * version from a machine with internet access, unzip it, and export DENORT_BIN=/path/denort).
 * The result needs glibc ≥ 2.27 on the machine that runs it; nodes with an older glibc use
 * agentless mode (see README).
 *
 * Usage: deno run -A build.ts [--output dist/onevz]
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { VERSION } from "./src/version.ts";

const root = dirname(fileURLToPath(import.meta.url));
const TARGET = "x86_64-unknown-linux-gnu";
// Data files the installer reads at run time (found relative to src/admin in the binary).
const INCLUDES = ["remotes", "fixtures/templates/vmm_ssh_ovz.conf"];

/** The .ts files under dir, recursively. */
function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    const path = join(dir, e.name);
    if (e.isDirectory) out.push(...tsFiles(path));
    else if (e.isFile && e.name.endsWith(".ts")) out.push(path);
  }
  return out.sort();
}

function fail(message: string): never {
  console.error(`build: ${message}`);
  Deno.exit(1);
}

async function main() {
  const outIdx = Deno.args.indexOf("--output");
  const output = outIdx >= 0 ? Deno.args[outIdx + 1] : join(root, "dist", "onevz");
  if (!output) fail("--output needs a path");
  const denort = Deno.env.get("DENORT_BIN");
  if (denort) {
    try {
      const st = await Deno.stat(denort);
      if (!st.isFile) fail(`DENORT_BIN=${denort} is not a file`);
    } catch {
      fail(`DENORT_BIN=${denort} does not exist`);
    }
  }
  await Deno.mkdir(dirname(output), { recursive: true });
  const args = ["compile", "-A", "--no-check", "--target", TARGET, "--output", output];
  for (const inc of INCLUDES) {
    try {
      await Deno.stat(join(root, inc));
      args.push("--include", join(root, inc));
    } catch { /* optional data file not present in this checkout */ }
  }
  // The commands' modules are imported through run-time specifiers (src/cli/commands.ts), which
  // deno compile cannot see: include every module under src/.
  for (const file of tsFiles(join(root, "src"))) args.push("--include", file);
  args.push(join(root, "main.ts"));
  const res = await new Deno.Command(Deno.execPath(), { args, cwd: root, stderr: "piped" })
    .output();
  const stderr = new TextDecoder().decode(res.stderr);
  if (!res.success) {
    const offline = /dns error|failed to lookup|error sending request|Failed downloading|denort/i
      .test(stderr);
    const hint = offline
      ? "the Deno runtime (denort) could not be downloaded: this machine cannot reach Deno's download server. " +
        "Fetch denort-" + TARGET + ".zip for Deno " + Deno.version.deno +
        " elsewhere, unzip it here, and run again with DENORT_BIN=/path/to/denort."
      : "deno compile failed.";
    fail(`${hint}\n${stderr.trim().split("\n").slice(-4).join("\n")}`);
  }
  // A wrong DENORT_BIN (e.g. the full deno binary) produces a file that is not onevz: check.
  const check = await new Deno.Command(output, {
    args: ["--version"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output().catch(() => undefined);
  const said = check ? new TextDecoder().decode(check.stdout).trim() : "";
  if (said !== `onevz ${VERSION}`) {
    await Deno.remove(output).catch(() => {});
    fail(
      `the compiled file does not run as onevz (it printed ${
        JSON.stringify(said.slice(0, 60))
      }). ` +
        `DENORT_BIN must be the denort runtime of Deno ${Deno.version.deno}, not deno itself.`,
    );
  }
  console.log(`build: wrote ${output} (${said}, ${TARGET}, needs glibc ≥ 2.27)`);
}

if (import.meta.main) await main().catch((e) => fail(String(e?.message ?? e)));
