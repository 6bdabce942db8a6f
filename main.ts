/**
 * onevz entry point: one executable for every action, named by argv[0] (a remotes entry named
 * `deploy`, `poll`, `tm-clone`, …) or by the first argument (`onevz deploy …`).
 * src/cli/dispatch.ts does the work.
 *
 * Except for one case, answered here first because it is by far the most frequent start and
 * each one counts (oned polls every VM every interval): an agentless poll of a container its
 * host's fresh snapshot lists as running (README §13). Its answer was worked out when the node
 * was read, so it needs neither a host nor poll's modules; this file loads only the command
 * table and the snapshot's reader before it knows.
 */
import { invokedName, resolveInvocation } from "./src/cli/commands.ts";
import { answerForArgs } from "./src/actions/vmm/poll_window.ts";

function answeredFromSnapshot(argv0: string, args: string[]): boolean {
  const { command, rest } = resolveInvocation(argv0, args);
  if (command?.name !== "poll") return false;
  const answer = answerForArgs((name) => Deno.env.get(name), rest);
  if (!answer) return false;
  const write = (file: { writeSync(p: Uint8Array): number }, text: string) => {
    let data = new TextEncoder().encode(text);
    while (data.length > 0) data = data.subarray(file.writeSync(data));
  };
  answer.notes.forEach((line) => write(Deno.stderr, line));
  write(Deno.stdout, answer.reply + "\n");
  return true;
}

if (import.meta.main) {
  const argv0 = await invokedName();
  if (!answeredFromSnapshot(argv0, Deno.args)) {
    // Specifier made at run time: see `lazy` in src/cli/commands.ts.
    const { run } = await import(new URL("./src/cli/dispatch.ts", import.meta.url).href);
    Deno.exit(await run(argv0, Deno.args));
  }
}
