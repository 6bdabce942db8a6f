/**
 * The steps deploy runs, each undoable: directories, the deployment copy, and the plan's
 * commands and file work (src/ovz/plan.ts). Writes into the container's private area never
 * follow a symbolic link the OS template shipped.
 */
import { posix } from "node:path";
import { OnevzError } from "../../cli/errors.ts";
import type { Host } from "../../host/host.ts";
import type { Rollback } from "../../host/rollback.ts";
import { FIREWALL_BEGIN, FIREWALL_END, withBootLine, withMarkedBlock } from "../../one/context.ts";
import type { Flavour } from "../../ovz/plan.ts";
import type { DeployPlan, Step } from "../../ovz/plan.ts";

const P = { privileged: true } as const;

export interface Facts {
  flavour: Flavour;
  vmDir: string;
  templateCacheDir: string;
  templateFileExt: string;
  /** The OS image to place, or undefined when the cache already holds the template. */
  imagePath?: string;
  /** The node's /etc/vz/dists configs (without .conf); undefined when unreadable. */
  distNames?: string[];
}

/** mkdir -p R, remembering which levels this deploy created (undo removes only those). */
export async function makeDirs(host: Host, images: string, rollback: Rollback) {
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

export async function writeCopy(host: Host, path: string, xml: string, rollback: Rollback) {
  const previous = await host.readFile(path, P);
  await host.writeFileAtomic(path, xml, { ...P, mode: 0o640 });
  rollback.add(
    `deployment file ${path}`,
    () => previous === null ? host.remove(path, P) : host.writeFileAtomic(path, previous, P),
  );
}

export async function runStep(
  host: Host,
  plan: DeployPlan,
  step: Step,
  facts: Facts,
  rb: Rollback,
  needFiles: boolean,
  adopt?: { scratch: string },
) {
  const ctid = String(plan.ctid);
  switch (step.kind) {
    case "run": {
      const action = step.argv[2];
      if (action === "create" && adopt) {
        return await createAdopting(host, plan, step.argv, adopt, rb);
      }
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
      if (action === "mount") {
        // vzctl destroy refuses a mounted CT: the undo of later steps needs it unmounted
        rb.add(`mounted container ${ctid}`, async () => {
          await host.run(["vzctl", "--quiet", "umount", ctid], { ...P, check: false });
        });
      }
      if (action === "start") {
        rb.add(`running container ${ctid}`, () => host.run(["vzctl", "--quiet", "stop", ctid], P));
      }
      return;
    }
    case "place-template":
      return await placeTemplate(host, facts, step.to, rb);
    case "copy-dir":
      return await copyContextDir(host, plan.paths.guest, step.from, step.to, needFiles);
    case "write-file": {
      await safeParentDir(host, plan.paths.guest, step.path);
      if (step.ifAbsent && await host.exists(step.path, P)) return;
      await host.remove(step.path, P); // never write through a link the template shipped
      await host.writeFileAtomic(step.path, step.content, { ...P, mode: 0o644 });
      return;
    }
    case "append-line": {
      await safeParentDir(host, plan.paths.guest, step.path);
      if (await host.isSymlink(step.path, P)) {
        throw new OnevzError(`${step.path} is a symbolic link in the OS template: not appending`);
      }
      const text = await host.readFile(step.path, P);
      const next = withBootLine(text, step.line);
      if (next === text) return;
      // Executable: Debian's rc.local and systemd's rc-local.service run it only then.
      await host.writeFileAtomic(step.path, next, { ...P, mode: 0o755 });
      return;
    }
    case "put-block": {
      await safeParentDir(host, plan.paths.private, step.path);
      if (await host.isSymlink(step.path, P)) {
        throw new OnevzError(`${step.path} is a symbolic link in the OS template: not editing it`);
      }
      const text = await host.readFile(step.path, P);
      const next = withMarkedBlock(text, step, step.text);
      if (next !== text) await host.writeFileAtomic(step.path, next, { ...P, mode: 0o644 });
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

/**
 * R/private already holds a container's files but the CTID has no config (a config removed
 * by hand, a node reinstalled with /vz kept). vzctl create refuses an existing private area,
 * so the config is made by a create into a scratch directory and then pointed at R/private
 * (`vzctl set --private … --save`, as vzmigrate does). Undo removes only that config and the
 * scratch directory: the files in R/private are never touched.
 */
async function createAdopting(
  host: Host,
  plan: DeployPlan,
  argv: string[],
  adopt: { scratch: string },
  rb: Rollback,
) {
  const ctid = String(plan.ctid);
  const conf = host.sysPath(`/etc/vz/conf/${ctid}.conf`);
  const destroyed = `${conf}.destroyed`;
  const hadDestroyed = await host.exists(destroyed, P);
  const scratchArgv = argv.map((a, i) => argv[i - 1] === "--private" ? adopt.scratch : a);
  await host.remove(adopt.scratch, { ...P, recursive: true });
  rb.add(`adopted container ${ctid} (its new config)`, async () => {
    await host.run(["vzctl", "--quiet", "umount", ctid], { ...P, check: false });
    await host.remove(conf, P);
    if (!hadDestroyed) await host.remove(destroyed, P);
    await host.remove(adopt.scratch, { ...P, recursive: true });
  });
  await host.run(scratchArgv, P);
  await host.run(["vzctl", "--quiet", "set", ctid, "--private", plan.paths.private, "--save"], P);
  await host.remove(adopt.scratch, { ...P, recursive: true });
}

/**
 * Drop an earlier onevz FIREWALL block: the marker line through the line that closes the
 * value (`"`, or `#"` in the commented form older onevz versions wrote) and the end marker.
 */
export function withoutOnevzBlock(conf: string): string {
  const lines = conf.split("\n");
  const start = lines.indexOf(FIREWALL_BEGIN);
  if (start < 0) return conf.endsWith("\n") || conf === "" ? conf : conf + "\n";
  let end = start + 1;
  while (end < lines.length && lines[end] !== '"' && lines[end] !== '#"') end++;
  if (lines[end + 1] === FIREWALL_END) end++;
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
