/**
 * Doctor's look at a node's two image caches (src/ovz/caches.ts): the image cache
 * `$VM_DIR/.onevz-cache` and onevz's OS templates in `$TEMPLATE/cache`. It reports their sizes
 * against the bounds of the front-end's defaults file, entries other users could write (an
 * older onevz left them 0666; tm-clone drops them), and directories on their path that someone
 * other than root or the driver's user could change. Gathering is a few read-only commands;
 * `evaluateCaches` is pure.
 */
import type { Host } from "../../host/host.ts";
import { type PathFacts, pathFacts, unsafeDir } from "../../host/files.ts";
import { type CacheLimits, parseDriverConfig } from "../../one/config.ts";
import { readDefaultsFile } from "../../one/defaults_file.ts";
import { parseVzConf } from "../../ovz/parsers.ts";
import {
  type CacheListing,
  cacheSummary,
  formatBytes,
  imageCacheDir,
  listImageCache,
  listTemplateCache,
} from "../../ovz/caches.ts";
import { type CheckResult, fail, ok, warn } from "./types.ts";

export interface CacheFacts {
  node: string;
  image?: CacheListing;
  template?: CacheListing;
  /** Directory facts for both cache directories. */
  dirs?: PathFacts;
  imageDir: string;
  templateDir?: string;
  limits: { image: CacheLimits; template: CacheLimits };
  /** Why something could not be looked at. */
  problems: string[];
}

function limitText(l: CacheLimits): string {
  const size = l.maxBytes === undefined ? "no size bound" : `bound ${formatBytes(l.maxBytes)}`;
  const age = l.maxAgeDays === undefined ? "no age bound" : `${l.maxAgeDays} days`;
  return `${size}, ${age}`;
}

/** The results for one node (pure). */
export function evaluateCaches(f: CacheFacts): CheckResult[] {
  const scope = `node ${f.node}`;
  const out: CheckResult[] = [];
  for (const p of f.problems) out.push(warn("node.caches", scope, p));
  const one = (
    id: string,
    label: string,
    l: CacheListing | undefined,
    dir: string | undefined,
    limits: CacheLimits,
    setting: string,
  ) => {
    if (!dir || f.problems.length > 0) return;
    if (!l) {
      out.push(ok(id, scope, `${label} ${dir}: none yet; ${limitText(limits)}`));
      return;
    }
    const bad = f.dirs ? unsafeDir(dir, f.dirs, label) : undefined;
    if (bad) {
      // chmod as the directory's owner: root's directories need a root login.
      const login = bad.uid === 0 && f.dirs!.uid !== 0 ? `root@${f.node}` : f.node;
      out.push(fail(
        id,
        scope,
        `${label}: ${bad.message}`,
        bad.writable ? `ssh ${login} chmod go-w ${bad.path}` : undefined,
        bad.writable ? undefined : [`make ${bad.path} a directory of root or the driver's user`],
      ));
      return;
    }
    const s = cacheSummary(l);
    const text = `${label} ${dir}: ${s.entries} entr${s.entries === 1 ? "y" : "ies"}, ` +
      `${formatBytes(s.bytes)} (${s.inUse} used by VMs); ${limitText(limits)}`;
    if (l.unsafe.length > 0) {
      out.push(warn(
        id,
        scope,
        `${text}; ${l.unsafe.length} entr${
          l.unsafe.length === 1 ? "y" : "ies"
        } other users could have written (an older onevz made them so): never used as they are`,
        `ssh ${f.node} rm -f -- ${l.unsafe.join(" ")}`,
      ));
    } else if (limits.maxBytes !== undefined && s.bytes > limits.maxBytes) {
      const why = s.inUse === s.entries
        ? "every entry is used by a VM, so none can go"
        : "the next new entry prunes the least recently used ones";
      out.push(warn(id, scope, `${text}: over the bound; ${why}`, undefined, [
        `raise ${setting} in vmm_ssh_ovz.conf if this size is expected`,
      ]));
    } else {
      out.push(ok(id, scope, text));
    }
  };
  one(
    "node.caches.image",
    "image cache",
    f.image,
    f.imageDir,
    f.limits.image,
    "ONEVZ/IMAGE_CACHE_MAX_SIZE",
  );
  one(
    "node.caches.template",
    "onevz's OS templates in",
    f.template,
    f.templateDir,
    f.limits.template,
    "ONEVZ/TEMPLATE_CACHE_MAX_SIZE",
  );
  return out;
}

async function frontEndLimits(env: (k: string) => string | undefined) {
  // An unreadable file is doctor's frontend.defaults finding; the limits then are the built-in.
  const found = await readDefaultsFile(env, env("ONEVZ_REMOTES")).catch(() => undefined);
  return parseDriverConfig(found?.text ?? null, found?.file).caches;
}

/** Gather the facts on `host` (read-only) and evaluate them. */
export async function cacheChecks(
  host: Host,
  vmDir: string,
  env: (k: string) => string | undefined = (k) => Deno.env.get(k),
): Promise<CheckResult[]> {
  const problems: string[] = [];
  let limits: CacheFacts["limits"];
  try {
    limits = await frontEndLimits(env);
  } catch (e) {
    limits = parseDriverConfig(null).caches;
    problems.push(
      `the defaults file does not parse (${(e as Error).message}): built-in bounds shown`,
    );
  }
  const facts: CacheFacts = {
    node: host.name,
    imageDir: imageCacheDir(vmDir),
    limits,
    problems,
  };
  try {
    const conf = await host.readFile(host.sysPath("/etc/vz/vz.conf"));
    const template = (conf ? parseVzConf(conf).TEMPLATE : undefined) || "/vz/template";
    facts.templateDir = `${template.replace(/\/+$/, "")}/cache`;
    const exists = await pathFacts(host, { files: [facts.imageDir, facts.templateDir] });
    const dirs = [facts.imageDir, facts.templateDir].filter((d) => exists.stats.get(d));
    facts.dirs = await pathFacts(host, { dirs });
    if (exists.stats.get(facts.imageDir)) facts.image = await listImageCache(host, vmDir);
    if (exists.stats.get(facts.templateDir)) {
      facts.template = await listTemplateCache(host, vmDir, facts.templateDir);
    }
  } catch (e) {
    problems.push(`the caches could not be examined: ${(e as Error).message.split("\n")[0]}`);
  }
  return evaluateCaches(facts);
}
