/**
 * The checks doctor runs beyond the core ones of frontend.ts and node.ts. A check file adds
 * itself here with one import and one array entry:
 *   - a node check gives probe snippets (sh, values shellQuoted), run in the node's single
 *     ssh round trip with the core probes, and a pure evaluation of the gathered facts
 *     (`facts.probes[key]`); it runs only when ssh to the node worked;
 *   - a front-end check gets the gathered front-end facts and the local host, and may read
 *     more itself.
 * Results use ok / warn / fail of ./types.ts; a fix is either a command that works as printed
 * (tests/doctor_fixes.test.ts runs them) or words (`todo`).
 */
import type { Host } from "../../host/host.ts";
import type { FrontendFacts } from "./frontend.ts";
import type { NodeFacts } from "./node.ts";
import type { CheckResult } from "./types.ts";
import { VZFIREWALL_CHECK } from "./vzfirewall.ts";

export interface NodeProbeContext {
  /** A node path inside the (simulated) OpenVZ sysroot. */
  sysPath: (p: string) => string;
  frontend: string;
  vmDir: string;
  remoteDir: string;
  peers: string[];
}

export interface NodeCheck {
  name: string;
  /** Probe snippets by key; keys must not collide with another check's. */
  probes?: (o: NodeProbeContext) => Record<string, string>;
  evaluate: (facts: NodeFacts) => CheckResult[];
}

export interface FrontendCheck {
  name: string;
  run: (
    o: { host: Host; env: (name: string) => string | undefined; facts: FrontendFacts },
  ) => Promise<CheckResult[]>;
}

/** Further node checks (vzfirewall, caches, …), after the core ones. */
export const NODE_CHECKS: NodeCheck[] = [VZFIREWALL_CHECK];

/** Further front-end checks, after the core ones. */
export const FRONTEND_CHECKS: FrontendCheck[] = [];
