/**
 * deploy <deployment_file>: create and start the container for a VM.
 *
 * The operator's checklist, in order:
 *  1. read the deployment document (stdin under one_vmm_ssh; the front-end file in agentless
 *     mode) and validate it completely — nothing is run or written before this succeeds;
 *  2. look at the node: kernel flavour, $TEMPLATE, the OS image the TM placed, an existing CT;
 *  3. keep a copy of the document at <deployment_file> (later actions read it);
 *  4. run the plan (src/ovz/plan.ts): place the OS template, vzctl create, one vzctl set
 *     --save, context files, firewall rules, vzctl start — recording how to undo each step;
 *  5. print the CTID. On any failure, undo everything this deploy did and report why.
 */
import type { CommandContext } from "../../cli/context.ts";
import { InvalidInputError, OnevzError } from "../../cli/errors.ts";
import type { Host } from "../../host/host.ts";
import { Rollback } from "../../host/rollback.ts";
import { applyDefaults } from "../../one/defaults.ts";
import { type DriverConfig } from "../../one/config.ts";
import { toSpec, type VmSpec } from "../../one/spec.ts";
import { parseTemplateXml } from "../../one/template.ts";
import { ARCHIVE_EXTS, archiveExtFromMagic, readHead } from "../../ovz/archive.ts";
import { posix } from "node:path";
import { dirProblem, fileProblem, type FileStat, pathFacts, statPaths } from "../../host/files.ts";
import {
  DIGEST,
  imageCacheDir,
  listTemplateCache,
  placedTemplateName,
  pruneCache,
} from "../../ovz/caches.ts";
import { findContainer, lockContainer, staleLockOwner } from "../../ovz/container.ts";
import { parseVzConf, parseVzctlStatus } from "../../ovz/parsers.ts";
import { type DeployPlan, type Flavour, planDeploy } from "../../ovz/plan.ts";
import { type Facts, makeDirs, runStep, writeCopy } from "./deploy_steps.ts";
import { loadDriverConfig, readDeploymentInput } from "./input.ts";

const P = { privileged: true } as const;

export default async function deploy(ctx: CommandContext): Promise<number> {
  const host = ctx.host;
  const input = await readDeploymentInput(ctx, ctx.args[0]);
  const config: DriverConfig = await loadDriverConfig(ctx);
  const spec = specFromXml(input.xml, config);
  if (input.vmid !== undefined && input.vmid !== spec.vmid) {
    throw new InvalidInputError(
      `deployment file ${input.nodePath} is for VM ${input.vmid} but the template's VMID is ${spec.vmid}`,
    );
  }

  const facts = await observeNode(host, spec, input.vmDir);
  const plan = planDeploy(spec, facts);
  const placement = { inserted: false };

  const rollback = new Rollback();
  try {
    await makeDirs(host, plan.paths.images, rollback);
    // A deploy of this VM killed mid-way (its lock left behind) may have left a half-made
    // container: read that before lockContainer breaks the stale lock, then start afresh.
    const interrupted = await staleLockOwner(host, plan.paths.images);
    const unlock = await lockContainer(host, plan.paths.images, "deploy");
    try {
      if (interrupted?.action === "deploy") await discardInterrupted(ctx, host, plan);
      // Adoption runs under the lock too, so it never starts a container another deploy is
      // still configuring.
      if (await adoptExisting(host, plan) !== undefined) {
        ctx.io.out(`${spec.ctid}\n`);
        return 0;
      }
      await writeCopy(host, input.nodePath, input.xml, rollback);
      const needFiles = (spec.context?.files.length ?? 0) > 0;
      for (const step of plan.steps) {
        await runStep(host, plan, step, facts, rollback, needFiles, placement);
      }
    } finally {
      await unlock();
    }
  } catch (e) {
    const problems = await rollback.run();
    for (const p of problems) ctx.io.err(`onevz: deploy: ${p}\n`);
    throw e;
  }
  rollback.commit();
  if (placement.inserted) await pruneTemplates(ctx, host, facts, plan, config);
  ctx.io.out(`${spec.ctid}\n`);
  return 0;
}

/**
 * $TEMPLATE/cache grew by one of onevz's templates: bound it (src/ovz/caches.ts). Never fails
 * the deploy, which is complete; a problem is one line on stderr.
 */
async function pruneTemplates(
  ctx: CommandContext,
  host: Host,
  facts: Facts,
  plan: DeployPlan,
  config: DriverConfig,
) {
  try {
    const listing = await listTemplateCache(host, facts.vmDir, facts.templateCacheDir);
    await pruneCache(host, listing, config.caches.template, {
      keep: new Set([posix.basename(plan.paths.templateFile)]),
      privileged: true,
    });
  } catch (e) {
    ctx.io.err(
      `onevz: deploy: could not prune ${facts.templateCacheDir}: ${(e as Error).message}\n`,
    );
  }
}

/** Template text → validated spec (defaults applied). Pure; throws InvalidInputError. */
export function specFromXml(xml: string, config: DriverConfig): VmSpec {
  const doc = applyDefaults(parseTemplateXml(xml), config.defaults);
  return toSpec(doc, {
    ctidOffset: config.ctidOffset,
    nicModel: config.nicModel,
    contextDir: config.contextDir,
  });
}

async function observeNode(host: Host, spec: VmSpec, vmDir: string): Promise<Facts> {
  const flavour: Flavour = (await host.exists(host.sysPath("/proc/vz/vswap"))) ? "vswap" : "ubc";
  const vzConfText = await host.readFile(host.sysPath("/etc/vz/vz.conf"));
  if (vzConfText === null) {
    throw new OnevzError(
      `${host.sysPath("/etc/vz/vz.conf")} not found on ${host.name}: is OpenVZ installed?`,
    );
  }
  const template = parseVzConf(vzConfText).TEMPLATE || "/vz/template";
  const templateCacheDir = `${template.replace(/\/+$/, "")}/cache`;
  const images = `${vmDir.replace(/\/+$/, "")}/${spec.vmid}/images`;
  const candidates = [`${images}/disk.${spec.osDisk.diskId}`];
  if (spec.osDisk.source?.startsWith("/")) candidates.push(spec.osDisk.source);
  const cacheDir = imageCacheDir(vmDir);
  // One look (as the driver's user) at the images the TM may have placed, every directory
  // on their way and on $TEMPLATE/cache's, and the node image cache's entries.
  const seen = await pathFacts(host, {
    dirs: [...new Set([templateCacheDir, ...candidates.map((c) => posix.dirname(c))])],
    files: candidates,
    list: [cacheDir],
  });
  for (const path of candidates) {
    const st = seen.stats.get(path);
    if (!st) continue;
    // Root unpacks this file: it must be a regular file nobody else can have rewritten, in
    // directories nobody else can replace it in.
    const problem = fileProblem(st, seen, `OS image ${path}`) ??
      dirProblem(posix.dirname(path), seen, `OS image ${path}`) ??
      dirProblem(templateCacheDir, seen, "$TEMPLATE/cache");
    if (problem) {
      throw new OnevzError(
        `${problem}: refusing to hand it to vzctl create (onevz's tm-clone places images ` +
          `read-only; run the prolog again)`,
      );
    }
    const ext = archiveExtFromMagic(await readHead(host, path));
    if (!ext) {
      throw new OnevzError(
        `OS image ${path} is not a tar archive (gzip, bzip2, xz or plain tar): an OpenVZ OS template is needed`,
      );
    }
    const digest = await imageDigest(host, path, st, seen.entries.get(cacheDir) ?? []);
    return {
      flavour,
      vmDir,
      templateCacheDir,
      templateFileExt: ext,
      imagePath: path,
      image: st,
      loginUid: seen.uid,
      templateName: placedTemplateName(spec.osDisk.templateName, digest),
    };
  }
  // No image from the TM: an OS template of that name already in the cache will do (the
  // administrator's own, by its plain name).
  const names = ARCHIVE_EXTS.map((ext) => `${templateCacheDir}/${spec.osDisk.templateName}${ext}`);
  const cached = await statPaths(host, names, P);
  for (const [i, name] of names.entries()) {
    const st = cached.get(name);
    if (!st) continue;
    const problem = fileProblem(st, seen, `cached OS template ${name}`) ??
      dirProblem(templateCacheDir, seen, "$TEMPLATE/cache");
    if (problem) throw new OnevzError(`${problem}: refusing to hand it to vzctl create`);
    return {
      flavour,
      vmDir,
      templateCacheDir,
      templateFileExt: ARCHIVE_EXTS[i],
      loginUid: seen.uid,
    };
  }
  throw new OnevzError(
    `OS image for DISK ${spec.osDisk.diskId} not found on ${host.name}: expected ${
      candidates[0]
    } ` +
      `(placed by the transfer manager) or ${templateCacheDir}/${spec.osDisk.templateName}.tar.gz`,
  );
}

/**
 * The image's sha256: the name of the node cache entry it is a hard link of (tm-clone checked
 * that content against that name), else computed on the node.
 */
async function imageDigest(
  host: Host,
  path: string,
  st: FileStat,
  cacheEntries: { ino: string; size: number; name: string }[],
): Promise<string> {
  const entry = cacheEntries.find((e) =>
    e.ino === st.ino && e.size === st.size && DIGEST.test(e.name)
  );
  if (entry) return entry.name;
  const r = await host.run(["sha256sum", "--", path], P);
  const sum = r.stdout.trim().split(/\s+/)[0];
  if (!DIGEST.test(sum)) throw new OnevzError(`sha256sum of ${path} printed no digest`);
  return sum;
}

/**
 * A CT with this CTID already exists. When it is this VM's own container (a restart from
 * UNKNOWN sends a new DEPLOY), make sure it runs and answer its CTID; any other container
 * is a collision.
 */
async function adoptExisting(host: Host, plan: DeployPlan): Promise<number | undefined> {
  const ct = await findContainer(host, plan.ctid);
  if (!ct) return undefined;
  if (ct.privateDir !== plan.paths.private) {
    throw new OnevzError(
      `CTID ${plan.ctid} is already used by another container (VE_PRIVATE=${ct.privateDir}); ` +
        `VM ${plan.vmid} cannot get it: change CTID_OFFSET in vmm_ssh_ovz.conf or remove that container`,
    );
  }
  const status = parseVzctlStatus(
    (await host.run(["vzctl", "status", String(plan.ctid)], P)).stdout,
  );
  if (!status?.running) await host.run(["vzctl", "--quiet", "start", String(plan.ctid)], P);
  return plan.ctid;
}

/** Remove the container an interrupted deploy of this VM left (same CTID and VE_PRIVATE). */
async function discardInterrupted(ctx: CommandContext, host: Host, plan: DeployPlan) {
  const ct = await findContainer(host, plan.ctid);
  if (!ct || ct.privateDir !== plan.paths.private) return;
  const ctid = String(plan.ctid);
  ctx.io.err(`onevz: deploy: an earlier deploy of CT ${ctid} was interrupted: recreating it\n`);
  await host.run(["vzctl", "--quiet", "stop", ctid], { ...P, check: false });
  await host.run(["vzctl", "--quiet", "destroy", ctid], P);
  await host.remove(plan.paths.private, { ...P, recursive: true });
  await host.remove(plan.paths.root, { ...P, recursive: true });
}
