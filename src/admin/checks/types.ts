/**
 * What a doctor check produces. Checks are pure functions from gathered facts to results;
 * gathering (a few commands per host) lives beside them in gather functions.
 */

export type Status = "ok" | "warning" | "failure";

/** Who runs a fix command, and where: `on` is "front-end" or a node's name. */
export interface RunAs {
  user: string;
  on: string;
}

/**
 * How to fix a result: a command (run as printed by `as`, else where doctor ran, as the user
 * who ran it), or what to do in words when no command can fix it — or both.
 */
export type FixSpec = string | { command?: string; as?: RunAs; todo?: string };

export interface CheckResult {
  /** Stable identifier for scripts (`frontend.oned.im_mad`, `node.sudo`). */
  id: string;
  /** "front-end" or "node <name>". */
  scope: string;
  status: Status;
  /** One line saying what was checked and what was found. */
  message: string;
  /**
   * The exact command that fixes a failure or warning, run by `fixAs` (else where doctor ran,
   * as the user who ran it). Every such command is run in the test bed against the broken
   * node or front-end it was printed for (tests/doctor_fixes.test.ts).
   */
  fix?: string;
  fixAs?: RunAs;
  /** What to do, in words, where no command can fix it (or after the command). */
  todo?: string;
  /** Extra lines shown under the result (e.g. the sudoers rule onevz needs). */
  detail?: string[];
}

export function ok(id: string, scope: string, message: string): CheckResult {
  return { id, scope, status: "ok", message };
}

function withFix(
  status: "warning" | "failure",
  id: string,
  scope: string,
  message: string,
  fix?: FixSpec,
  detail?: string[],
): CheckResult {
  const spec = typeof fix === "string" ? { command: fix } : (fix ?? {});
  return {
    id,
    scope,
    status,
    message,
    ...(spec.command ? { fix: spec.command } : {}),
    ...(spec.command && spec.as ? { fixAs: spec.as } : {}),
    ...(spec.todo ? { todo: spec.todo } : {}),
    ...(detail ? { detail } : {}),
  };
}

/** A fix in words only (no command can do it). */
export function todo(text: string): FixSpec {
  return { todo: text };
}

/** A command run as `user` on `on` ("front-end" or a node name). */
export function runAs(user: string, on: string, command: string, words?: string): FixSpec {
  return { command, as: { user, on }, ...(words ? { todo: words } : {}) };
}

export function warn(
  id: string,
  scope: string,
  message: string,
  fix?: FixSpec,
  detail?: string[],
): CheckResult {
  return withFix("warning", id, scope, message, fix, detail);
}

export function fail(
  id: string,
  scope: string,
  message: string,
  fix?: FixSpec,
  detail?: string[],
): CheckResult {
  return withFix("failure", id, scope, message, fix, detail);
}

/** Output of one probe run on a host: exit status and combined output. */
export interface ProbeOutput {
  rc: number;
  out: string;
}

export type Probes = Record<string, ProbeOutput>;

const MARK = "@@onevz-doctor@@";

/**
 * One shell script that runs every probe and prints each one's output between markers, so
 * that a node's facts cost one ssh round trip. Snippets are fixed text plus shellQuoted values.
 */
export function probeScript(probes: Record<string, string>): string {
  return Object.entries(probes).map(([key, snippet]) =>
    `echo '${MARK} ${key}'; ( ${snippet}\n) 2>&1 </dev/null; echo "${MARK} rc $?"`
  ).join("\n") + "\n";
}

/** Parse probeScript's output (pure). Probes that did not run are absent. */
export function parseProbeOutput(text: string): Probes {
  const out: Probes = {};
  let key: string | undefined;
  let lines: string[] = [];
  for (const line of text.split("\n")) {
    if (line.startsWith(MARK + " ")) {
      const rest = line.slice(MARK.length + 1);
      const rc = /^rc (\d+)$/.exec(rest);
      if (rc && key !== undefined) {
        out[key] = { rc: Number(rc[1]), out: lines.join("\n").trim() };
        key = undefined;
      } else if (!rc) {
        key = rest;
        lines = [];
      }
    } else if (key !== undefined) {
      lines.push(line);
    }
  }
  return out;
}

/** The first line of a text (for messages). */
export function firstLine(text: string): string {
  return text.split("\n").map((l) => l.trim()).find((l) => l) ?? "";
}
