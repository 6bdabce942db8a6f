/**
 * The one error type onevz reports to the operator. It carries the user-facing message,
 * the command that failed (if any) and the process exit code to use.
 *
 * Exit codes: 0 ok, 1 the action failed, 2 usage error (unknown command, bad arguments),
 * 3 invalid input (template, arguments that fail validation). Never 42: the ssh drivers
 * reserve it for "script missing, copy the remotes".
 */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_INVALID = 3;

export class OnevzError extends Error {
  readonly exitCode: number;
  readonly command?: readonly string[];
  constructor(message: string, opts: { exitCode?: number; command?: readonly string[] } = {}) {
    super(message);
    this.name = "OnevzError";
    this.exitCode = opts.exitCode ?? EXIT_FAILURE;
    if (this.exitCode === 42) this.exitCode = EXIT_FAILURE;
    this.command = opts.command;
  }
}

/** Bad command line: unknown command, missing or extra arguments. */
export class UsageError extends OnevzError {
  constructor(message: string) {
    super(message, { exitCode: EXIT_USAGE });
    this.name = "UsageError";
  }
}

/** Input that fails validation (template attribute, argument value). Nothing was run. */
export class InvalidInputError extends OnevzError {
  constructor(message: string) {
    super(message, { exitCode: EXIT_INVALID });
    this.name = "InvalidInputError";
  }
}

/** A command run on a host exited non-zero. `message` already names the command. */
export class CommandError extends OnevzError {
  readonly status: number;
  readonly stderr: string;
  readonly stdout: string;
  constructor(
    host: string,
    argv: readonly string[],
    status: number,
    stdout: string,
    stderr: string,
  ) {
    const detail = lastLines(stderr || stdout, 3);
    super(
      `${argv.map(shellQuote).join(" ")} failed on ${host} with exit code ${status}` +
        (detail ? `: ${detail}` : ""),
      { exitCode: EXIT_FAILURE, command: argv },
    );
    this.name = "CommandError";
    this.status = status;
    this.stderr = stderr;
    this.stdout = stdout;
  }
}

function lastLines(text: string, n: number): string {
  // Strip any "ExitCode:" line a nested ssh wrapper may have added: oned must never see ours.
  return text.split("\n").map((l) => l.trim()).filter((l) => l && !/^ExitCode:/.test(l))
    .slice(-n).join(" / ");
}

/** Quote one argument for a POSIX shell (used for display and for argv crossing ssh). */
export function shellQuote(arg: string): string {
  if (arg !== "" && /^[A-Za-z0-9_\/.,:=@%+-]+$/.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}
