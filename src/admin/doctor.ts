/**
 * onevz doctor [HOST…] [--json]: checks the front-end's OpenNebula setup and each node the
 * way the manual setup steps require, and says per check ok / warning / failure with the
 * command that fixes it. Exit 1 when a check fails, 0 otherwise (warnings allowed).
 *
 * Options (when the command table declares them; environment fallbacks otherwise):
 *   --frontend NAME   the front-end as nodes reach it (ONEVZ_FRONTEND, default hostname())
 *   --vm-dir DIR      VM_DIR on the nodes (ONEVZ_VM_DIR; default from var/config or oned.conf)
 *   --remote-dir DIR  SCRIPTS_REMOTE_DIR (ONEVZ_REMOTE_DIR; idem)
 */
import { hostname, userInfo } from "node:os";
import type { CommandContext } from "../cli/context.ts";
import { shellQuote } from "../cli/errors.ts";
import { allFinished } from "../host/host.ts";
import { LocalHost } from "../host/local.ts";
import { SshHost } from "../host/ssh.ts";
import { VERSION } from "../version.ts";
import {
  evaluateFrontend,
  frontendPaths,
  gatherFrontend,
  nodeDirs,
  onevzCommand,
} from "./checks/frontend.ts";
import { evaluateNode, gatherNode } from "./checks/node.ts";
import { cacheChecks } from "./checks/caches.ts";
import { FRONTEND_CHECKS, NODE_CHECKS } from "./checks/registry.ts";
import type { CheckResult, Status } from "./checks/types.ts";

export interface DoctorOptions {
  hosts: string[];
  frontend: string;
  vmDir: string;
  remoteDir: string;
  /** Skip the front-end checks (tests of node checks). */
  skipFrontend?: boolean;
}

const LABEL: Record<Status, string> = { ok: "ok", warning: "warn", failure: "FAIL" };

/**
 * The text report: one line per check; under a failure or warning the command that fixes it
 * (with who runs it where, when that is not "you, here") and what to do in words; a summary
 * (pure).
 */
export function formatResults(results: CheckResult[]): string {
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`${LABEL[r.status].padEnd(4)} ${r.scope}: ${r.message}`);
    if (r.status !== "ok") {
      if (r.fix) {
        const who = r.fixAs
          ? ` (as ${r.fixAs.user} on ${r.fixAs.on === "front-end" ? "the front-end" : r.fixAs.on})`
          : "";
        const [first, ...more] = r.fix.split("\n");
        lines.push(`     fix${who}: ${first}`, ...more.map((l) => `       ${l}`));
      }
      if (r.todo) lines.push(`     ${r.fix ? "note" : "to do"}: ${r.todo}`);
      for (const d of r.detail ?? []) lines.push(`       ${d}`);
    }
  }
  lines.push(summary(results));
  return lines.join("\n") + "\n";
}

export function summary(results: CheckResult[]): string {
  const count = (s: Status) => results.filter((r) => r.status === s).length;
  const f = count("failure");
  const w = count("warning");
  return `doctor: ${results.length} checks: ${count("ok")} ok, ${w} warning${
    w === 1 ? "" : "s"
  }, ` +
    `${f} failure${f === 1 ? "" : "s"}`;
}

export function exitCode(results: CheckResult[]): number {
  return results.some((r) => r.status === "failure") ? 1 : 0;
}

/** Gather and evaluate everything. */
export async function runChecks(
  opts: DoctorOptions,
  env: (name: string) => string | undefined,
): Promise<CheckResult[]> {
  const front = new LocalHost({ useSudo: false });
  const sysroot = env("ONEVZ_NODE_SYSROOT") || undefined;
  const frontend = opts.skipFrontend ? Promise.resolve([]) : (async () => {
    const facts = await gatherFrontend(front, env, VERSION);
    const extra = await allFinished(FRONTEND_CHECKS.map((c) => c.run({ host: front, env, facts })));
    return [...evaluateFrontend(facts), ...extra.flat()];
  })();
  // How fixes printed for a node reach it from here: the ssh doctor itself used.
  const sshConfig = env("ONEVZ_SSH_CONFIG") || undefined;
  const sshCommand = `${env("ONEVZ_SSH") || "ssh"}${
    sshConfig ? ` -F ${shellQuote(sshConfig)}` : ""
  }`;
  let frontendUser = env("USER") || "oneadmin";
  try {
    frontendUser = userInfo().username;
  } catch { /* no passwd entry */ }
  const nodes = opts.hosts.map(async (name) => {
    let host: SshHost;
    try {
      host = new SshHost(name, { sysroot });
    } catch (e) {
      return [{
        id: "node.name",
        scope: `node ${name}`,
        status: "failure" as const,
        message: (e as Error).message,
      }];
    }
    try {
      const probeCtx = {
        sysPath: (p: string) => host.sysPath(p),
        frontend: opts.frontend,
        vmDir: opts.vmDir,
        remoteDir: opts.remoteDir,
        peers: opts.hosts.filter((h) => h !== name),
      };
      const facts = await gatherNode(host, front, {
        frontend: opts.frontend,
        vmDir: opts.vmDir,
        remoteDir: opts.remoteDir,
        peers: probeCtx.peers,
        sshConfig,
        version: VERSION,
        sshCommand,
        onevzCommand: onevzCommand(),
        frontendUser,
        extraProbes: Object.assign({}, ...NODE_CHECKS.map((c) => c.probes?.(probeCtx) ?? {})),
      });
      const core = evaluateNode(facts);
      if (facts.login.rc !== 0) return core;
      return [
        ...core,
        ...NODE_CHECKS.flatMap((c) => c.evaluate(facts)),
        ...(await cacheChecks(host, opts.vmDir, env)),
      ];
    } finally {
      await host.close().catch(() => {});
    }
  });
  const all = await allFinished([frontend, ...nodes]);
  return all.flat();
}

/** Options from flags, then environment, then oned's configuration. */
export async function resolveOptions(ctx: CommandContext): Promise<DoctorOptions> {
  const flag = (k: string) => typeof ctx.flags[k] === "string" ? ctx.flags[k] as string : undefined;
  const loc = ctx.env("ONE_LOCATION") || undefined;
  const paths = frontendPaths(loc);
  const read = (p: string) => Deno.readTextFile(p).catch(() => null);
  const dirs = nodeDirs(await read(paths.onedConf), await read(paths.varConfig), loc);
  return {
    hosts: [...new Set(ctx.args)],
    frontend: flag("frontend") ?? (ctx.env("ONEVZ_FRONTEND") || hostname()),
    vmDir: flag("vm-dir") ?? (ctx.env("ONEVZ_VM_DIR") || dirs.vmDir),
    remoteDir: flag("remote-dir") ?? (ctx.env("ONEVZ_REMOTE_DIR") || dirs.remoteDir),
  };
}

export default async function doctor(ctx: CommandContext): Promise<number> {
  const opts = await resolveOptions(ctx);
  const results = await runChecks(opts, ctx.env);
  if (ctx.flags.json === true) ctx.io.out(JSON.stringify(results, null, 2) + "\n");
  else ctx.io.out(formatResults(results));
  return exitCode(results);
}
