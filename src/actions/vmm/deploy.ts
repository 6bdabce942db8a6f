/**
 * deploy <deployment_file>: create and start the container for a VM.
 *
 * The operator's checklist, in order:
 *  1. read the deployment document (stdin under one_vmm_ssh; the front-end file in agentless
 *     mode) and validate it completely — nothing is run or written before this succeeds;
 *  2. look at the node: kernel flavour, $TEMPLATE, the OS image the TM placed, an existing CT,
 *     the vzctl version (create's --layout) and vzfirewall (warnings about FIREWALL);
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
import { findContainer, lockContainer, staleLockOwner } from "../../ovz/container.ts";
import { parseVzConf, parseVzctlStatus } from "../../ovz/parsers.ts";
import { type DeployPlan, type Flavour, planDeploy } from "../../ovz/plan.ts";
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

  const [facts, tools] = await Promise.all([
    observeNode(host, spec, input.vmDir),
    observeTools(host, config.layout),
  ]);
  const plan = planDeploy(spec, { ...facts, layout: tools.layout });
  warnAboutVzfirewall(ctx, spec, tools);

  const rollback = new Rollback();
  try {
    await makeDirs(host, plan.paths.images, rollback);
    // A deploy of this VM killed mid-way (its lock left behind) may have left a half-made
    // container: read that before lockContainer breaks the stale lock, then start afresh.
    const interrupted = await staleLockOwner(host, plan.paths.images);
    const unlock = await lockContainer(host, plan.paths.images, "deploy");
    try {
      await clearLeftoverConfig(ctx, host, plan);
      if (interrupted?.action === "deploy") await discardInterrupted(ctx, host, plan);
      // Adoption runs under the lock too, so it never starts a container another deploy is
      // still configuring.
      if (await adoptExisting(host, plan) !== undefined) {
        ctx.io.out(`${spec.ctid}\n`);
        return 0;
      }
      await writeCopy(host, input.nodePath, input.xml, rollback);
      const needFiles = (spec.context?.files.length ?? 0) > 0;
      for (const step of plan.steps) await runStep(host, plan, step, facts, rollback, needFiles);
    } finally {
      await unlock();
    }
  } catch (e) {
    const problems = await rollback.run();
    for (const p of problems) ctx.io.err(`onevz: deploy: ${p}\n`);
    throw e;
  }
  rollback.commit();
  ctx.io.out(`${spec.ctid}\n`);
  return 0;
}

/** Template text → validated spec (defaults applied). Pure; throws InvalidInputError. */
export function specFromXml(xml: string, config: DriverConfig): VmSpec {
  const doc = applyDefaults(parseTemplateXml(xml), config.defaults);
  return toSpec(doc, {
    ctidOffset: config.ctidOffset,
    nicModel: config.nicModel,
    contextDir: config.contextDir,
    firewallCustom: config.firewallCustom,
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
  for (const path of candidates) {
    if (!(await host.exists(path, P)) || await host.isDirectory(path, P)) continue;
    const ext = archiveExtFromMagic(await readHead(host, path));
    if (!ext) {
      throw new OnevzError(
        `OS image ${path} is not a tar archive (gzip, bzip2, xz or plain tar): an OpenVZ OS template is needed`,
      );
    }
    // vzctl looks for .tar, .tar.gz, .tar.bz2, .tar.xz in that order: a same-named file
    // earlier in that order would be used instead of this VM's image.
    for (const other of ARCHIVE_EXTS.slice(0, ARCHIVE_EXTS.indexOf(ext))) {
      const shadow = `${templateCacheDir}/${spec.osDisk.templateName}${other}`;
      if (await host.exists(shadow, P)) {
        throw new OnevzError(
          `${shadow} exists and vzctl would create the container from it instead of this VM's ` +
            `${ext} image: give the image another NAME or remove that cached template`,
        );
      }
    }
    return { flavour, vmDir, templateCacheDir, templateFileExt: ext, imagePath: path };
  }
  // No image from the TM: an OS template of that name already in the cache will do.
  for (const ext of ARCHIVE_EXTS) {
    if (await host.exists(`${templateCacheDir}/${spec.osDisk.templateName}${ext}`, P)) {
      return { flavour, vmDir, templateCacheDir, templateFileExt: ext };
    }
  }
  throw new OnevzError(
    `OS image for DISK ${spec.osDisk.diskId} not found on ${host.name}: expected ${
      candidates[0]
    } ` +
      `(placed by the transfer manager) or ${templateCacheDir}/${spec.osDisk.templateName}.tar.gz`,
  );
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
