/**
 * Dispatch (from main.ts): the command named by basename(argv[0]) when started through a
 * remotes entry named after an action (deploy, poll, tm-clone, …), otherwise by the first
 * argument (`onevz deploy …`). Prints errors once, on stderr, and maps them to exit codes.
 */
//
// Start-up cost matters (oned polls every VM of a node through here), so this file imports
// only what every invocation needs: Node built-ins (node:process alone costs ~10 ms), the ssh
// host and the option parser are loaded when an invocation needs them.
import { type CommandEntry, COMMANDS, resolveInvocation } from "./commands.ts";
import type { CommandContext, Io } from "./context.ts";
import { EXIT_FAILURE, EXIT_USAGE, OnevzError, UsageError } from "./errors.ts";
import type { Host } from "../host/host.ts";
import { LocalHost } from "../host/local.ts";
import { VERSION } from "../version.ts";

const io: Io = {
  readStdin: async () => new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer()),
  out: (text) => writeAll(Deno.stdout, text),
  err: (text) => writeAll(Deno.stderr, text),
};

function writeAll(file: { writeSync(p: Uint8Array): number }, text: string) {
  let data = new TextEncoder().encode(text);
  while (data.length > 0) data = data.subarray(file.writeSync(data));
}

function globalHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  const rows = COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    `onevz ${VERSION}: OpenVZ containers for OpenNebula 2.2.1`,
    "",
    "Usage: onevz <command> [arguments]   or, through a remotes entry, <command> [arguments]",
    "",
    "Commands:",
    ...rows,
    "",
    "Options: --help (also after a command), --version",
    "Exit codes: 0 ok, 1 the action failed (reason on stderr), 2 usage error, 3 invalid input.",
    "",
  ].join("\n");
}

function commandHelp(c: CommandEntry): string {
  const specs = Object.entries(c.options ?? {}).map(([k, o]) => {
    const spec = typeof o === "string" ? { type: o, help: "" } : o;
    const value = "value" in spec && spec.value ? spec.value : "value";
    const flag = `--${k}${spec.type === "boolean" ? "" : ` <${value}>`}`;
    const help = spec.type === "strings" ? `${spec.help} (repeatable)`.trim() : spec.help;
    return { flag, help };
  });
  const width = Math.max(0, ...specs.map((s) => s.flag.length));
  const opts = specs.map((s) => `  ${s.flag.padEnd(width)}  ${s.help}`.trimEnd());
  return [
    `Usage: onevz ${c.name}${c.usage ? " " + c.usage : ""}`,
    "",
    `${c.summary}.`,
    "",
    c.help,
    ...(opts.length ? ["", "Options:", ...opts] : []),
    "",
  ].join("\n");
}

export async function main(argv0: string, args: string[]): Promise<number> {
  const { command, rest, invokedAs } = resolveInvocation(argv0, args);
  if (invokedAs === "none" || (!command && (args[0] === "--help" || args[0] === "-h"))) {
    io.out(globalHelp());
    return invokedAs === "none" ? EXIT_USAGE : 0;
  }
  if (!command && args[0] === "--version") {
    io.out(`onevz ${VERSION}\n`);
    return 0;
  }
  try {
    if (!command) throw new UsageError(`unknown command '${args[0]}' (see onevz --help)`);
    if (rest.length === 1 && (rest[0] === "--help" || rest[0] === "-h")) {
      io.out(commandHelp(command));
      return 0;
    }
    // one_vmm_ssh/one_vmm_sh hand oned the first line of stderr as a failure's reason
    // ("Error deploying virtual machine: …"): an action's notes and warnings wait, so that
    // the reason comes first; they follow it, or are written at the end on success.
    const notes: string[] = [];
    const held = command.driverAction === "vmm";
    const actionIo: Io = held ? { ...io, err: (text) => void notes.push(text) } : io;
    const flush = () => notes.splice(0).forEach((text) => io.err(text));
    const [ctx, impl] = await Promise.all([
      buildContext(command, rest, actionIo),
      command.load(),
    ]);
    // Agentless: an action other than poll makes the host's poll snapshot stale (README §13).
    const snapshot = ctx.mode === "agentless" && command.driverAction === "vmm" &&
        command.name !== "poll"
      ? await import("../actions/vmm/poll_snapshot.ts")
      : undefined;
    snapshot?.markHostsChanged(ctx, command.name);
    try {
      const code = await impl.default(ctx);
      flush();
      return code;
    } catch (e) {
      const code = report(e);
      flush();
      return code;
    } finally {
      snapshot?.markHostsChanged(ctx, command.name);
      // Agentless: end the action's multiplexed ssh connection (ControlMaster) now.
      await ctx.host.close();
    }
  } catch (e) {
    return report(e);
  }
}

async function buildContext(
  command: CommandEntry,
  rest: string[],
  actionIo: Io,
): Promise<CommandContext> {
  let positionals: string[] = rest;
  let flags: Record<string, string | boolean> = {};
  if (command.options) {
    const options = Object.fromEntries(
      Object.entries(command.options).map(([k, o]) => {
        const type = typeof o === "string" ? o : o.type;
        return [k, type === "strings" ? { type: "string" as const, multiple: true } : { type }];
      }),
    );
    const { parseArgs } = await import("node:util");
    try {
      const parsed = parseArgs({ args: rest, options, allowPositionals: true, strict: true });
      positionals = parsed.positionals;
      flags = parsed.values as Record<string, string | boolean>;
    } catch (e) {
      throw new UsageError(`${command.name}: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  const env = (name: string) => Deno.env.get(name);
  const agentless = env("ONEVZ_MODE") === "agentless" && command.driverAction !== undefined &&
    command.driverAction !== "tm";
  let host: Host;
  if (agentless) {
    // one_vmm_sh passes the host first; run_probes passes `<hypervisor> <host>` to probes.
    const hostName = command.driverAction === "im" ? positionals.at(-1) : positionals[0];
    if (!hostName) throw new UsageError(`${command.name}: missing host (agentless mode)`);
    positionals = command.driverAction === "im" ? positionals.slice(0, -1) : positionals.slice(1);
    const { SshHost } = await import("../host/ssh.ts");
    host = new SshHost(hostName, { sysroot: env("ONEVZ_NODE_SYSROOT") });
  } else {
    host = new LocalHost();
  }
  if (positionals.length < command.minArgs || positionals.length > command.maxArgs) {
    const want = command.minArgs === command.maxArgs
      ? `${command.minArgs}`
      : `${command.minArgs} to ${command.maxArgs}`;
    throw new UsageError(
      `${command.name}: expected ${want} argument(s) (${
        command.usage || "none"
      }), got ${positionals.length}`,
    );
  }
  return {
    args: positionals,
    flags,
    host,
    remotesDir: env("ONEVZ_REMOTES"),
    mode: agentless ? "agentless" : "node",
    env,
    io: actionIo,
  };
}

function report(e: unknown): number {
  if (e instanceof OnevzError) {
    io.err(`onevz: ${e.message.replaceAll("\n", " ")}\n`);
    return e.exitCode;
  }
  const msg = e instanceof Error ? (e.stack ?? e.message) : String(e);
  io.err(`onevz: internal error: ${msg.split("\n")[0]}\n`);
  return EXIT_FAILURE;
}

/** The process's exit code: never 42, which one_vmm_ssh reads as "no such action". */
export async function run(argv0: string, args: string[]): Promise<number> {
  const code = await main(argv0, args);
  return code === 42 ? EXIT_FAILURE : code;
}
