/**
 * What deploy learns from the node about vzctl and vzfirewall, and the repair of a config
 * an interrupted create or restore left behind:
 *  - the layout for `vzctl create`: vzctl 4.x defaults to ploop (a stock vz.conf says
 *    VE_LAYOUT=ploop, and a CT config without VE_LAYOUT makes create try ploop), so deploy
 *    always passes `--layout` (the ONEVZ LAYOUT setting, simfs by default); 3.0.x has
 *    neither the option nor ploop;
 *  - whether vzfirewall is installed (the hook, or vps.premount, will run it), to warn about
 *    a container that vzfirewall would close, or that would stop it for the whole node.
 */
import type { CommandContext } from "../../cli/context.ts";
import { OnevzError } from "../../cli/errors.ts";
import { allFinished, type Host } from "../../host/host.ts";
import type { Layout } from "../../one/config.ts";
import { firewallOpensSomething } from "../../one/firewall.ts";
import type { VmSpec } from "../../one/spec.ts";
import { confPathFor, vzctlStatus } from "../../ovz/container.ts";
import { expandVeid, parseVzConf } from "../../ovz/parsers.ts";
import type { DeployPlan } from "../../ovz/plan.ts";
import { note } from "./common.ts";

const P = { privileged: true } as const;

export interface ToolFacts {
  /** `--layout` for create, undefined on vzctl 3.0.x. */
  layout?: Layout;
  /** vzfirewall is on the node (PATH, /usr/sbin, /sbin), where the hook finds it. */
  vzfirewall: boolean;
}

/** `vzctl version 4.11.1` → 4; undefined when the text has no version. */
export function vzctlMajor(text: string): number | undefined {
  const m = /version\s+(\d+)\.\d+/.exec(text);
  return m ? Number(m[1]) : undefined;
}

export async function observeTools(host: Host, layout: Layout): Promise<ToolFacts> {
  // where the hook looks for it: the PATH, then /usr/sbin and /sbin (of the node's sysroot)
  const [version, onPath, inSbin] = await allFinished([
    host.run(["vzctl", "--version"], { ...P, check: false }),
    host.run(["sh", "-c", "command -v vzfirewall"], { check: false }),
    allFinished(
      ["/usr/sbin/vzfirewall", "/sbin/vzfirewall"].map((p) => host.exists(host.sysPath(p))),
    ),
  ]);
  const major = vzctlMajor(version.stdout + version.stderr);
  if (version.status !== 0 || major === undefined) {
    throw new OnevzError(
      `vzctl --version failed on ${host.name} (exit ${version.status}: ${
        (version.stderr || version.stdout).trim().split("\n")[0] || "no output"
      }): is vzctl installed and allowed by sudo?`,
    );
  }
  if (major < 4 && layout === "ploop") {
    throw new OnevzError(
      `ONEVZ LAYOUT is ploop but ${host.name} runs vzctl ${
        version.stdout.trim().replace(/^vzctl version /, "")
      }, which has no ploop: set LAYOUT = "simfs" in vmm_ssh_ovz.conf`,
    );
  }
  return {
    layout: major >= 4 ? layout : undefined,
    vzfirewall: onPath.status === 0 || inSbin.some((x) => x),
  };
}

/**
 * The warnings for a node running vzfirewall (pure). vzfirewall closes every container IP it
 * has no rules for, and dies for the whole node on a config without IP_ADDRESS.
 */
export function vzfirewallWarnings(spec: VmSpec): string[] {
  const out: string[] = [];
  const ct = spec.ctid;
  const venet = spec.nics.filter((n) => n.model === "venet" && n.ip);
  if (venet.length === 0) {
    out.push(
      `container ${ct} has no venet IP (no IP_ADDRESS in its config): vzfirewall stops with ` +
        `"Cannot find IP_ADDRESS" for the whole node, so no container's rules apply until it ` +
        `is gone; give the VM a venet NIC (NIC MODEL = "venet") or remove vzfirewall from the node`,
    );
  }
  const v6 = venet.filter((n) => n.ip!.includes(":")).map((n) => n.ip!);
  if (v6.length) {
    out.push(
      `container ${ct} has IPv6 address ${v6.join(", ")}: vzfirewall writes IPv4 iptables ` +
        `rules, and iptables-restore refuses the whole node's rule set with an IPv6 address in it`,
    );
  }
  if (spec.context?.firewall === undefined || !firewallOpensSomething(spec.context.firewall)) {
    out.push(
      `VM ${spec.vmid} has no CONTEXT/FIREWALL rules: once vzfirewall runs (the vzfirewall hook), ` +
        `container ${ct} accepts no inbound connection; add e.g. FIREWALL = "[22] *" to open ssh`,
    );
  }
  return out;
}

/** Print the warnings when the node has vzfirewall. */
export function warnAboutVzfirewall(ctx: CommandContext, spec: VmSpec, tools: ToolFacts) {
  if (!tools.vzfirewall) return;
  for (const w of vzfirewallWarnings(spec)) note(ctx, `deploy: warning: ${w}`);
}

/**
 * A CTID.conf with nothing behind it: its private area (this VM's R/private, or vz.conf's
 * default when the config names none) is absent or empty and the CT is neither running nor
 * mounted. An interrupted `vzctl create` (the sample copied, no VE_PRIVATE or VE_LAYOUT yet),
 * an interrupted restore or deploy rollback leave one; with it `vzctl create` keeps the
 * stale config and, without VE_LAYOUT, tries ploop (exit 99 on simfs nodes). Nothing is lost
 * by removing it, so deploy does, and says so. A config of another container, or of one
 * that has files, is left alone.
 */
export async function clearLeftoverConfig(ctx: CommandContext, host: Host, plan: DeployPlan) {
  const path = confPathFor(host, plan.ctid);
  const text = await host.readFile(path, P);
  if (text === null) return;
  const conf = parseVzConf(text);
  const priv = conf.VE_PRIVATE === undefined
    ? undefined
    : expandVeid(conf.VE_PRIVATE, plan.ctid).replace(/\/+$/, "");
  if (priv !== undefined && priv !== plan.paths.private) return;
  const status = await vzctlStatus(host, plan.ctid, { check: false });
  if (!status || status.running || status.mounted) return;
  if (priv === undefined && status.exists) return; // vz.conf's default private area has files
  if (!(await isAbsentOrEmpty(host, plan.paths.private))) return;
  await host.remove(path, P);
  note(
    ctx,
    `deploy: removed ${path}: a config without a private area (left by an interrupted ` +
      `create, restore or rollback${
        conf.VE_LAYOUT ? "" : "; it has no VE_LAYOUT, so vzctl create would try ploop"
      })`,
  );
}

/** A directory that does not exist or holds nothing (any doubt counts as "has files"). */
async function isAbsentOrEmpty(host: Host, dir: string): Promise<boolean> {
  if (!(await host.exists(dir, P))) return true;
  const r = await host.run(["find", dir, "-mindepth", "1", "-maxdepth", "1", "-print", "-quit"], {
    ...P,
    check: false,
  });
  return r.status === 0 && r.stdout.trim() === "";
}
