/**
 * What every command receives: its positional arguments, the host its commands run on,
 * and the three standard streams. Actions never touch Deno.stdout or process.exit themselves.
 */
import type { Host } from "../host/host.ts";

export interface Io {
  /** All of stdin (read once, on demand). */
  readStdin(): Promise<Uint8Array>;
  /** Write text to stdout as given (add "\n" yourself). */
  out(text: string): void;
  /** Write text to stderr as given. */
  err(text: string): void;
}

export interface CommandContext {
  /** Positional arguments after the command name (and after the host, in agentless mode). */
  args: string[];
  /** Options given as --name or --name=value (after the command name); repeatable ones: string[]. */
  flags: Record<string, string | boolean | string[]>;
  /** Where OpenVZ commands run: the local node, or a node over ssh (agentless mode). */
  host: Host;
  /** Root of the installed remotes tree (directory holding vmm/, im/, hooks/), if known. */
  remotesDir?: string;
  /** "node" under one_vmm_ssh/one_im_ssh; "agentless" under one_vmm_sh/one_im_sh. */
  mode: "node" | "agentless";
  env: (name: string) => string | undefined;
  io: Io;
}
