/**
 * What a doctor check produces. Checks are pure functions from gathered facts to results;
 * gathering (a few commands per host) lives beside them in gather functions.
 */

export type Status = "ok" | "warning" | "failure";

export interface CheckResult {
  /** Stable identifier for scripts (`frontend.oned.im_mad`, `node.sudo`). */
  id: string;
  /** "front-end" or "node <name>". */
  scope: string;
  status: Status;
  /** One line saying what was checked and what was found. */
  message: string;
  /** The exact command (or edit) that fixes a failure or warning. */
  fix?: string;
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
  fix?: string,
  detail?: string[],
): CheckResult {
  return {
    id,
    scope,
    status,
    message,
    ...(fix ? { fix } : {}),
    ...(detail ? { detail } : {}),
  };
}

export function warn(
  id: string,
  scope: string,
  message: string,
  fix?: string,
  detail?: string[],
): CheckResult {
  return withFix("warning", id, scope, message, fix, detail);
}

export function fail(
  id: string,
  scope: string,
  message: string,
  fix?: string,
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
