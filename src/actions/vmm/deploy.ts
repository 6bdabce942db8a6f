/**
 * deploy <deployment_file>: create and start the container for a VM.
 *
 * The operator's checklist, in order:
 *  1. read the deployment document (stdin under one_vmm_ssh; the front-end file in agentless
 *     mode) and validate it completely — nothing is run or written before this succeeds;
 *  2. look at the node: kernel flavour, $TEMPLATE, the OS image the TM placed, the dists
 *     vzctl knows, the vzctl version (create's --layout) and vzfirewall (warnings about
 *     FIREWALL); template mistakes that do not stop it are warned about on stderr;
 *  3. under the container's lock: finish what a killed deploy of this VM left (only a
 *     container it created and never started is rebuilt), and keep a copy of the document at
 *     <deployment_file> (later actions read it);
 *  4. this VM's container exists (a restart DEPLOY): start it as it is, and stop there;
 *  5. run the plan (src/ovz/plan.ts): place the OS template, vzctl create (into a scratch
 *     directory when R/private already holds a container's files, which are then adopted),
 *     one vzctl set --save, context files, firewall rules, vzctl start — recording how to undo
 *     each step;
 *  6. print the CTID. On any failure, undo everything this deploy did and report why.
 */
import type { CommandContext } from "../../cli/context.ts";
import { InvalidInputError, OnevzError } from "../../cli/errors.ts";
import { allFinished, type Host } from "../../host/host.ts";
import { squeezeSlashes } from "../../host/posix_path.ts";
import { Rollback } from "../../host/rollback.ts";
import { applyDefaults } from "../../one/defaults.ts";
import { type DriverConfig } from "../../one/config.ts";
import { lintTemplate } from "../../one/lint.ts";
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
import { distNamesFromListing } from "../../ovz/dists.ts";
import {
  containersUsing,
  DEPLOY_MARK,
  type DeployMark,
  findContainer,
  hasFiles,
  lockContainer,
  readMark,
  removeMark,
  SHUTDOWN_MARK,
  type ShutdownMark,
  vzctlStatus,
  writeMark,
} from "../../ovz/container.ts";
import { parseVzConf } from "../../ovz/parsers.ts";
import { type DeployPlan, type Flavour, planDeploy, type Step } from "../../ovz/plan.ts";
import { note } from "./common.ts";
import { clearLeftoverConfig, observeTools, warnAboutVzfirewall } from "./deploy_node.ts";
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

  const [facts, tools] = await allFinished([
    observeNode(host, spec, input.vmDir),
    observeTools(host, config.layout),
  ]);
  const plan = planDeploy(spec, { ...facts, layout: tools.layout });
  warnAboutVzfirewall(ctx, spec, tools);
  for (const w of plan.warnings) say(ctx, `warning: ${w.replaceAll("\n", " ")}`);
  const placement = { inserted: false };

  const rollback = new Rollback();
  try {
    await makeDirs(host, plan.paths.images, rollback);
    const unlock = await lockContainer(host, plan.paths.images, "deploy", {
      onBroken: (m) => say(ctx, m),
    });
    try {
      await finishInterrupted(ctx, host, plan);
      await clearLeftoverConfig(ctx, host, plan);
      await writeCopy(host, input.nodePath, input.xml, rollback);
      // Adoption runs under the lock too, so it never starts a container another deploy is
      // still configuring; it never discards anything.
      if (await adoptExisting(ctx, host, plan)) {
        rollback.commit();
        ctx.io.out(`${spec.ctid}\n`);
        return 0;
      }
      const adopt = await hasFiles(host, plan.paths.private)
        ? { scratch: `${plan.paths.images}/.private.onevz-scratch` }
        : undefined;
      if (adopt) await refuseForeignFiles(host, plan);
      if (adopt) {
        say(
          ctx,
          `${plan.paths.private} holds files but CT ${spec.ctid} has no config on ${host.name}: ` +
            `adopting them (a new config from vzctl create, the files kept)`,
        );
      }
      const needFiles = (spec.context?.files.length ?? 0) > 0;
      for (const step of plan.steps) {
        if (isVzctl(step, "create")) await markCreating(host, plan, adopt, rollback);
        // From here on the container may have run: a later deploy adopts it, never rebuilds.
        if (isVzctl(step, "start")) await removeMark(host, plan.paths.images, DEPLOY_MARK);
        await runStep(host, plan, step, facts, rollback, needFiles, adopt, placement);
      }
    } finally {
      await unlock();
    }
  } catch (e) {
    const problems = await rollback.run();
    for (const p of problems) say(ctx, p);
    throw e;
  }
  rollback.commit();
  if (placement.inserted) await pruneTemplates(ctx, host, facts, plan, config);
  ctx.io.out(`${spec.ctid}\n`);
  return 0;
}

/** A note of deploy's on stderr (after the reason, when it fails: see dispatch.ts). */
function say(ctx: CommandContext, text: string) {
  note(ctx, `deploy: ${text}`);
}

const isVzctl = (step: Step, action: string) =>
  step.kind === "run" && step.argv[0] === "vzctl" && step.argv[2] === action;

/** Record, before vzctl create, that this deploy makes the container and has not started it. */
async function markCreating(
  host: Host,
  plan: DeployPlan,
  adopt: { scratch: string } | undefined,
  rollback: Rollback,
) {
  const mark: DeployMark = {
    ctid: plan.ctid,
    kind: adopt ? "adopted" : "fresh",
    ...(adopt ? { scratch: adopt.scratch } : {}),
    at: new Date().toISOString(),
  };
  await writeMark(host, plan.paths.images, DEPLOY_MARK, mark);
  rollback.add(`marker ${DEPLOY_MARK}`, () => removeMark(host, plan.paths.images, DEPLOY_MARK));
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
    say(ctx, `could not prune ${facts.templateCacheDir}: ${(e as Error).message}`);
  }
}

/**
 * Template text → validated spec (defaults applied), its warnings including misspelt names
 * in the template and the defaults file. Pure; throws InvalidInputError.
 */
export function specFromXml(xml: string, config: DriverConfig): VmSpec {
  const template = parseTemplateXml(xml);
  const spec = toSpec(applyDefaults(template, config.defaults), {
    ctidOffset: config.ctidOffset,
    nicModel: config.nicModel,
    contextDir: config.contextDir,
    rawPolicy: config.rawPolicy,
    firewallCustom: config.firewallCustom,
  });
  spec.warnings.unshift(...config.warnings, ...lintTemplate(template));
  return spec;
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
  // The dist configs vzctl chooses from (unreadable: plan assumes vzctl's stock set).
  const dists = await host.run(["ls", "-1", "--", host.sysPath("/etc/vz/dists")], {
    check: false,
  });
  const distNames = dists.status === 0 ? distNamesFromListing(dists.stdout) : undefined;
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
      distNames,
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
      distNames,
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
 * UNKNOWN sends a new DEPLOY, also after a failed shutdown or one whose epilog never came),
 * make sure it runs and answer its CTID; any other container is a collision.
 */
async function adoptExisting(ctx: CommandContext, host: Host, plan: DeployPlan) {
  const ct = await findContainer(host, plan.ctid);
  if (!ct) return false;
  if (squeezeSlashes(ct.privateDir) !== squeezeSlashes(plan.paths.private)) {
    throw new OnevzError(
      `CTID ${plan.ctid} is already used by another container (VE_PRIVATE=${ct.privateDir}); ` +
        `VM ${plan.vmid} cannot get it: change CTID_OFFSET in vmm_ssh_ovz.conf or remove that container`,
    );
  }
  const shutDown = await readMark<ShutdownMark>(host, plan.paths.images, SHUTDOWN_MARK);
  if (shutDown) {
    say(ctx, `CT ${plan.ctid} was shut down (${shutDown.at}) and is started again as it is`);
    await removeMark(host, plan.paths.images, SHUTDOWN_MARK);
  }
  const status = await vzctlStatus(host, plan.ctid);
  if (!status?.running) await host.run(["vzctl", "--quiet", "start", String(plan.ctid)], P);
  return true;
}

/**
 * R/private holds files and no config of this CTID names it: adopting them is right for an
 * orphan private area, but not when another registered container owns them (one deployed
 * with another CTID, by an older driver): two configs would share one private area.
 */
async function refuseForeignFiles(host: Host, plan: DeployPlan) {
  const [owner] = await containersUsing(host, plan.paths.private);
  if (!owner) return;
  throw new OnevzError(
    `${plan.paths.private} holds the files of container ${owner.ctid}, registered on ` +
      `${host.name}, but VM ${plan.vmid} gets CTID ${plan.ctid} (VMID + CTID_OFFSET): not ` +
      `giving those files a second container; set CTID_OFFSET in vmm_ssh_ovz.conf so that ` +
      `VM ${plan.vmid} gets CTID ${owner.ctid}, or shut the VM down instead of restarting it`,
  );
}

/**
 * An earlier deploy of this VM was killed between its vzctl create and its vzctl start (its
 * marker is still in R). Undo exactly what it made: a container built from the OS template
 * is destroyed (it is rebuilt from scratch); for a private area it adopted, only the config
 * goes. A container that runs (someone started it since) is kept and adopted.
 */
async function finishInterrupted(ctx: CommandContext, host: Host, plan: DeployPlan) {
  const mark = await readMark<DeployMark>(host, plan.paths.images, DEPLOY_MARK);
  if (!mark) return;
  const ctid = String(plan.ctid);
  const ct = mark.ctid === plan.ctid ? await findContainer(host, plan.ctid) : null;
  const own = ct &&
    [plan.paths.private, mark.scratch].some((p) =>
      p !== undefined && squeezeSlashes(p) === squeezeSlashes(ct.privateDir)
    );
  if (ct && own) {
    const status = await vzctlStatus(host, plan.ctid);
    if (status?.running) {
      say(ctx, `CT ${ctid}, left by an interrupted deploy, is running: adopting it`);
    } else if (mark.kind === "fresh") {
      say(ctx, `an earlier deploy of CT ${ctid} was interrupted before starting it: rebuilding`);
      await host.run(["vzctl", "--quiet", "umount", ctid], { ...P, check: false });
      await host.run(["vzctl", "--quiet", "destroy", ctid], P);
      await host.remove(plan.paths.private, { ...P, recursive: true });
      await host.remove(plan.paths.root, { ...P, recursive: true });
    } else {
      say(
        ctx,
        `an earlier deploy of CT ${ctid} was interrupted while adopting ${plan.paths.private}: ` +
          `removing the config it made, keeping the files`,
      );
      await host.run(["vzctl", "--quiet", "umount", ctid], { ...P, check: false });
      await host.remove(ct.confPath, P);
    }
  }
  if (mark.scratch) await host.remove(mark.scratch, { ...P, recursive: true });
  await removeMark(host, plan.paths.images, DEPLOY_MARK);
}
