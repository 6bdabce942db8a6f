/**
 * The steps deploy runs, each undoable: directories, the deployment copy, and the plan's
 * commands and file work (src/ovz/plan.ts).
 *
 * The private area comes from a user's tarball, and root reads and writes it. So every path
 * deploy touches there (rc.local, ifcfg files, the context directory and its files) is looked
 * at first without following links: each directory on the way must be a real directory, and
 * a file must be absent or a regular file — a symbolic link, FIFO, device, socket or directory
 * in its place fails the deploy with the path and what it is. Reads are bounded and never
 * block (readRegular); writes go to a temporary name and are renamed over the path (mv -T),
 * which replaces the path itself and never writes through it.
 */
import { posix } from "node:path";
import { OnevzError } from "../../cli/errors.ts";
import type { Host } from "../../host/host.ts";
import type { Rollback } from "../../host/rollback.ts";
import {
  describeType,
  type FileStat,
  notRegular,
  readRegularText,
  statPaths,
} from "../../host/files.ts";
import { FIREWALL_BEGIN, FIREWALL_END, withBootLine, withMarkedBlock } from "../../one/context.ts";
import type { Flavour } from "../../ovz/plan.ts";
import type { DeployPlan, Step } from "../../ovz/plan.ts";
import { ARCHIVE_EXTS } from "../../ovz/archive.ts";

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
  /** lstat of imagePath when deploy examined it. */
  image?: FileStat;
  /** uid of the driver's login on the node. */
  loginUid: number;
  /** The name the image is placed under in $TEMPLATE/cache (placedTemplateName). */
  templateName?: string;
}

/** Files deploy reads from a private area (rc.local and the like) are at most this big. */
export const MAX_PRIVATE_FILE_BYTES = 1 << 20;

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
  placement: { inserted: boolean } = { inserted: false },
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
      return await placeTemplate(host, facts, step.to, rb, placement);
    case "copy-dir":
      return await copyContextDir(host, plan.paths.guest, step.from, step.to, needFiles);
    case "write-file": {
      await safeParentDir(host, plan.paths.guest, step.path);
      const existing = await regularOrAbsent(host, step.path, "writing");
      if (step.ifAbsent && existing) return;
      await host.writeFileAtomic(step.path, step.content, { ...P, mode: 0o644 });
      return;
    }
    case "append-line": {
      await safeParentDir(host, plan.paths.guest, step.path);
      const text = await readGuestText(host, step.path, "not appending to it");
      const next = withBootLine(text, step.line);
      if (next === text) return;
      // Executable: Debian's rc.local and systemd's rc-local.service run it only then.
      await host.writeFileAtomic(step.path, next, { ...P, mode: 0o755 });
      return;
    }
    case "put-block": {
      await safeParentDir(host, plan.paths.guest, step.path);
      const text = await readGuestText(host, step.path, "not editing it");
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
 * Put the OS image into $TEMPLATE/cache/<name>-onevz-<digest12><ext> (the plan's name). A hard
 * link costs no space, appears atomically and is the very file tm-clone checked; across file
 * systems the image is copied to a temporary name, made read-only and linked into place (`ln`
 * never replaces a file another deploy placed meanwhile). A file already there is used when it
 * is this image (same inode) or an identical, safe copy; anything else under onevz's name is
 * stale or planted, and is replaced.
 */
async function placeTemplate(
  host: Host,
  facts: Facts,
  to: string,
  rb: Rollback,
  placement: { inserted: boolean },
) {
  if (!facts.imagePath) return; // the administrator's cached template, by its own name
  const image = facts.imagePath;
  const stem = to.slice(0, to.length - facts.templateFileExt.length);
  const names = ARCHIVE_EXTS.map((e) => stem + e);
  const st = await statPaths(host, names, P);
  // vzctl looks for .tar, .tar.gz, .tar.bz2, .tar.xz in that order: a same-named file
  // earlier in that order would be used instead of this VM's image.
  for (const other of names.slice(0, names.indexOf(to))) {
    if (st.get(other)) {
      throw new OnevzError(
        `${other} exists and vzctl would create the container from it instead of this VM's ` +
          `${facts.templateFileExt} image: remove that file from the template cache`,
      );
    }
  }
  const reusable = async (cur: FileStat | null) => {
    if (!cur || cur.type !== "file") return false;
    if (facts.image && cur.ino === facts.image.ino) return true;
    if ((cur.uid !== 0 && cur.uid !== facts.loginUid) || cur.mode & 0o022) return false;
    if (facts.image && cur.size !== facts.image.size) return false;
    const same = await host.run(["cmp", "-s", "--", image, to], { ...P, check: false });
    return same.status === 0;
  };
  const cur = st.get(to) ?? null;
  if (await reusable(cur)) return;
  if (cur) {
    if (cur.type === "directory") {
      throw new OnevzError(`${to} is a directory: remove it from the template cache`);
    }
    await host.remove(to, P);
  }
  await host.mkdirp(posix.dirname(to), P);
  const linked = await host.run(["ln", "--", image, to], { ...P, check: false });
  if (linked.status !== 0) {
    const tmp = `${to}.onevz-tmp-${crypto.randomUUID().slice(0, 8)}`;
    try {
      await host.run(["cp", "--", image, tmp], P);
      await host.run(["chmod", "0444", "--", tmp], P);
      const placed = await host.run(["ln", "--", tmp, to], { ...P, check: false });
      if (placed.status !== 0) {
        const now = (await statPaths(host, [to], P)).get(to) ?? null;
        if (!now) throw new OnevzError(`cannot place ${to}: ${placed.stderr.trim()}`);
        if (await reusable(now)) return; // another deploy placed it meanwhile
        throw new OnevzError(`${to} appeared meanwhile with other content: deploy again`);
      }
    } finally {
      await host.remove(tmp, P);
    }
  }
  placement.inserted = true;
  rb.add(`cached OS template ${to}`, () => host.remove(to, P));
}

/** A guest file the OS template shipped, read only when it is a regular file (bounded). */
async function readGuestText(host: Host, path: string, refusal: string): Promise<string | null> {
  return await readRegularText(host, path, {
    ...P,
    maxBytes: MAX_PRIVATE_FILE_BYTES,
    what: `${path} in the OS template`,
  }).catch((e) => {
    throw new OnevzError(
      `${(e as Error).message.replace(/: refusing to read it$/, "")}: ${refusal}`,
    );
  });
}

/** lstat of a private-area path that deploy writes: null when absent; anything but a regular file is refused. */
async function regularOrAbsent(host: Host, path: string, doing: string): Promise<FileStat | null> {
  const st = (await statPaths(host, [path], P)).get(path) ?? null;
  const bad = notRegular(`${path} in the OS template`, st);
  if (bad) throw new OnevzError(`${bad}: refusing to write it (${doing})`);
  return st;
}

/**
 * Make sure every directory from `base` down to dirname(path) exists and is a real
 * directory, in one look: the private area comes from a user's tarball, and a link there could
 * point a write at the node's own files (a FIFO or device could hang or leak the read).
 */
async function safeParentDir(host: Host, base: string, path: string) {
  const rel = posix.relative(base, posix.dirname(path));
  if (rel.startsWith("..") || posix.isAbsolute(rel)) {
    throw new OnevzError(`${path} is outside the private area ${base}`);
  }
  const dirs = [base];
  for (const part of rel.split("/").filter((p) => p !== "")) dirs.push(`${dirs.at(-1)}/${part}`);
  const st = await statPaths(host, dirs, P);
  for (const d of dirs) {
    const s = st.get(d);
    if (!s) {
      await host.mkdirp(posix.dirname(path), P);
      return;
    }
    if (s.type === "symlink") {
      throw new OnevzError(
        `${d} is a symbolic link in the OS template: refusing to write through it`,
      );
    }
    if (s.type !== "directory") {
      throw new OnevzError(
        `${d} is ${
          describeType(s.type)
        } in the OS template, not a directory: refusing to write into it`,
      );
    }
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
  const names = listing.stdout.split("\n").filter((n) =>
    n !== "" && !n.includes("/") && n !== "." && n !== ".."
  );
  const existing = await statPaths(host, names.map((n) => `${to}/${n}`), P);
  for (const [path, st] of existing) {
    const bad = notRegular(`${path} in the OS template`, st);
    if (bad) throw new OnevzError(`${bad}: refusing to write it (context files)`);
  }
  for (const name of names) {
    // dd without following a link or waiting on a FIFO, to a new name, renamed over the path.
    const tmp = `${to}/.${name}.onevz-tmp-${crypto.randomUUID().slice(0, 8)}`;
    try {
      await host.run(
        [
          "dd",
          `if=${from}/${name}`,
          "iflag=nofollow,nonblock",
          `of=${tmp}`,
          "bs=1M",
          "status=none",
        ],
        P,
      );
      await host.run(["chmod", "0644", "--", tmp], P);
      await host.run(["mv", "-f", "-T", "--", tmp, `${to}/${name}`], P);
    } catch (e) {
      await host.remove(tmp, P).catch(() => {});
      throw e;
    }
  }
}
