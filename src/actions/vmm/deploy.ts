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
import { posix } from "node:path";
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
import { type DeployPlan, type Flavour, planDeploy, type Step } from "../../ovz/plan.ts";
import { FIREWALL_BEGIN } from "../../one/context.ts";
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
  });
}

interface Facts {
  flavour: Flavour;
  vmDir: string;
  templateCacheDir: string;
  templateFileExt: string;
  /** The OS image to place, or undefined when the cache already holds the template. */
  imagePath?: string;
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

/** mkdir -p R, remembering which levels this deploy created (undo removes only those). */
async function makeDirs(host: Host, images: string, rollback: Rollback) {
  const missing: string[] = [];
  for (let d = images; d !== "/" && !(await host.exists(d, P)); d = posix.dirname(d)) {
    missing.push(d);
  }
  if (missing.length === 0) return;
  await host.mkdirp(images, P);
  for (const d of missing.reverse()) {
    rollback.add(`directory ${d}`, () => host.remove(d, { ...P, recursive: true }));
  }
}

async function writeCopy(host: Host, path: string, xml: string, rollback: Rollback) {
  const previous = await host.readFile(path, P);
  await host.writeFileAtomic(path, xml, { ...P, mode: 0o640 });
  rollback.add(
    `deployment file ${path}`,
    () => previous === null ? host.remove(path, P) : host.writeFileAtomic(path, previous, P),
  );
}

async function runStep(
  host: Host,
  plan: DeployPlan,
  step: Step,
  facts: Facts,
  rb: Rollback,
  needFiles: boolean,
) {
  const ctid = String(plan.ctid);
  switch (step.kind) {
    case "run": {
      const action = step.argv[2];
      if (action === "create") {
        const destroyed = host.sysPath(`/etc/vz/conf/${ctid}.conf.destroyed`);
        const hadDestroyed = await host.exists(destroyed, P);
        rb.add(`container ${ctid}`, async () => {
          await host.run(["vzctl", "--quiet", "destroy", ctid], { ...P, check: false });
          await host.remove(host.sysPath(`/etc/vz/conf/${ctid}.conf`), P);
          if (!hadDestroyed) await host.remove(destroyed, P);
          await host.remove(plan.paths.private, { ...P, recursive: true });
          await host.remove(plan.paths.root, { ...P, recursive: true });
        });
      }
      await host.run(step.argv, P);
      if (action === "start") {
        rb.add(`running container ${ctid}`, () => host.run(["vzctl", "--quiet", "stop", ctid], P));
      }
      return;
    }
    case "place-template":
      return await placeTemplate(host, facts, step.to, rb);
    case "copy-dir":
      return await copyContextDir(host, plan.paths.private, step.from, step.to, needFiles);
    case "write-file": {
      await safeParentDir(host, plan.paths.private, step.path);
      if (step.ifAbsent && await host.exists(step.path, P)) return;
      await host.remove(step.path, P); // never write through a link the template shipped
      await host.writeFileAtomic(step.path, step.content, { ...P, mode: 0o644 });
      return;
    }
    case "append-line": {
      await safeParentDir(host, plan.paths.private, step.path);
      if (await host.isSymlink(step.path, P)) {
        throw new OnevzError(`${step.path} is a symbolic link in the OS template: not appending`);
      }
      const text = (await host.readFile(step.path, P)) ?? "#!/bin/sh\n";
      if (text.split("\n").includes(step.line)) return;
      const sep = text === "" || text.endsWith("\n") ? "" : "\n";
      await host.writeFileAtomic(step.path, `${text}${sep}${step.line}\n`, { ...P, mode: 0o755 });
      return;
    }
    case "append-config": {
      const path = host.sysPath(step.path);
      const text = await host.readFile(path, P);
      if (text === null) throw new OnevzError(`${path} missing after vzctl create`);
      await host.writeFileAtomic(path, withoutOnevzBlock(text) + step.text, { ...P, mode: 0o644 });
      return;
    }
  }
}

/** Drop an earlier onevz FIREWALL block (marker line through the closing `#"`). */
export function withoutOnevzBlock(conf: string): string {
  const lines = conf.split("\n");
  const start = lines.indexOf(FIREWALL_BEGIN);
  if (start < 0) return conf.endsWith("\n") || conf === "" ? conf : conf + "\n";
  let end = start + 1;
  while (end < lines.length && lines[end] !== '#"') end++;
  lines.splice(start, end - start + 1);
  const out = lines.join("\n");
  return out.endsWith("\n") || out === "" ? out : out + "\n";
}

/**
 * Put the OS image into $TEMPLATE/cache/<name><ext>. A hard link costs no space and appears
 * atomically; across file systems copy to a temporary name and rename. An existing file of
 * that name is reused when identical and is never overwritten.
 */
async function placeTemplate(host: Host, facts: Facts, to: string, rb: Rollback) {
  if (!facts.imagePath) return; // the cache already holds it
  if (await host.exists(to, P)) {
    const same = await host.run(["cmp", "-s", "--", facts.imagePath, to], { ...P, check: false });
    if (same.status === 0) return;
    throw new OnevzError(
      `${to} already exists with different content: rename the image (its NAME must be unique ` +
        `among the node's cached OS templates) or remove the cached file`,
    );
  }
  await host.mkdirp(posix.dirname(to), P);
  const linked = await host.run(["ln", "--", facts.imagePath, to], { ...P, check: false });
  if (linked.status !== 0) {
    // Copy to a private name, then link it into place: `ln` never replaces a file another
    // deploy placed meanwhile (mv -f would), and readers never see a partial copy.
    const tmp = `${to}.onevz-tmp-${crypto.randomUUID().slice(0, 8)}`;
    try {
      await host.run(["cp", "--", facts.imagePath, tmp], P);
      const placed = await host.run(["ln", "--", tmp, to], { ...P, check: false });
      if (placed.status !== 0) {
        if (!(await host.exists(to, P))) {
          throw new OnevzError(`cannot place ${to}: ${placed.stderr.trim()}`);
        }
        const same = await host.run(["cmp", "-s", "--", facts.imagePath, to], {
          ...P,
          check: false,
        });
        if (same.status === 0) return; // an identical copy won the race
        throw new OnevzError(
          `${to} already exists with different content: rename the image (its NAME must be unique among the node's cached OS templates) or remove the cached file`,
        );
      }
    } finally {
      await host.remove(tmp, P);
    }
  }
  rb.add(`cached OS template ${to}`, () => host.remove(to, P));
}

/**
 * Make sure every directory from `base` down to dirname(path) exists and none of them is a
 * symbolic link: the private area comes from a user's tarball, and a link there could point
 * a write at the node's own files.
 */
async function safeParentDir(host: Host, base: string, path: string) {
  const rel = posix.relative(base, posix.dirname(path));
  if (rel.startsWith("..") || posix.isAbsolute(rel)) {
    throw new OnevzError(`${path} is outside the private area ${base}`);
  }
  let dir = base;
  for (const part of rel.split("/").filter((p) => p !== "")) {
    dir = `${dir}/${part}`;
    if (await host.isSymlink(dir, P)) {
      throw new OnevzError(
        `${dir} is a symbolic link in the OS template: refusing to write through it`,
      );
    }
    if (!(await host.exists(dir, P))) await host.mkdirp(dir, P);
  }
}

/** Copy the regular files of the TM's context directory into the container. */
async function copyContextDir(
  host: Host,
  base: string,
  from: string,
  to: string,
  needFiles: boolean,
) {
  if (!(await host.isDirectory(from, P))) {
    // Without FILES, deploy writes context.sh itself; FILES can only come from the TM.
    if (!needFiles) return await safeParentDir(host, base, `${to}/x`);
    throw new OnevzError(
      `context directory ${from} not found: the transfer manager's CONTEXT step (tm-context) did not run`,
    );
  }
  await safeParentDir(host, base, `${to}/x`);
  const listing = await host.run([
    "find",
    from,
    "-mindepth",
    "1",
    "-maxdepth",
    "1",
    "-type",
    "f",
    "-printf",
    "%f\\n",
  ], P);
  for (const name of listing.stdout.split("\n").filter((n) => n !== "")) {
    if (name.includes("/") || name === "." || name === "..") continue;
    await host.run(["cp", "--remove-destination", "--", `${from}/${name}`, `${to}/${name}`], P);
  }
}
