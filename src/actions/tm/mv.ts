/**
 * tm-mv <host:src> <host:dst>: TM MV, for a file or a directory.
 *   - node → front-end, the OS disk of a container (epilog of a saved disk: `MV H:R/disk.i
 *     FE:L/disk.i`): the saved image is made from the container's private area at that moment
 *     (shutdown keeps it for the epilog), a tar archive in the format of the TM's image (gzip
 *     otherwise), verified on arrival; R/disk.i (the TM's untouched copy) is then removed. With
 *     no container files to archive the move fails: the untouched image is never handed back
 *     as the saved one;
 *   - node → front-end, a VM directory (stop: `MV H:R FE:L`): the container's parts of R
 *     (private, root) travel as ONE tar file, made as root on the node with numeric owners,
 *     modes, device nodes, xattrs and ACLs, and stored as L/images/private.onevz.tar — the
 *     front-end never unpacks it (it could not, as oneadmin); the rest of R as files;
 *   - front-end → node (resume: `MV FE:L/images H:R`): the files, then the container archive
 *     unpacked as root on the node;
 *   - node → node (cold migration: `MV oldH:R newH:R`), relayed through the front-end, as root
 *     at both ends.
 * A container whose private area leaves a node that way must be stopped (SAVE ran), and its
 * config is retired there afterwards (vzctl destroy of a container without files): restore
 * recreates it from R/ctid.conf wherever R arrives, so no node keeps a ghost.
 * Like `scp -r`, a source moved onto an existing directory of another name goes inside it
 * (`MV H:R FE:L` makes L/images). The data travels as a tar stream into a temporary name
 * beside the destination; the destination appears by rename, and the source is removed only
 * after that succeeded. A retried move whose source is already at the destination succeeds.
 * Same host: a plain `mv`.
 * Node-side commands run through sudo (R may hold root-owned files of a container), except the
 * creation of directories, which belong to the driver's user like the rest of VM_DIR.
 */
import { basename, dirname } from "../../host/posix_path.ts";
import type { CommandContext } from "../../cli/context.ts";
import { OnevzError } from "../../cli/errors.ts";
import type { Host } from "../../host/host.ts";
import { ARCHIVE_TOOLS, archiveExtFromMagic, readHead } from "../../ovz/archive.ts";
import { containersUsing, hasFiles, LOCK_NAME, vzctlStatus } from "../../ovz/container.ts";
import {
  closeHosts,
  hostFor,
  nodeJoin,
  parseTmArg,
  pipe,
  requireAbsolute,
  runTm,
  tarCreate,
  tarExtract,
  tempName,
  type TmArg,
  type TmLog,
} from "./common.ts";
import {
  commonOptions,
  CONTAINER_ARCHIVE,
  CONTAINER_PARTS,
  type ContainerDisk,
  containerOsDisk,
  withContainerFiles,
  xattrOptions,
} from "./container.ts";

function privileged(arg: TmArg) {
  return { privileged: !arg.local };
}

/** Put `staged` at `dst` by rename; an existing destination is replaced (moved aside first). */
async function install(host: Host, staged: string, dst: string, priv: { privileged: boolean }) {
  let aside: string | undefined;
  if (await host.exists(dst, priv)) {
    aside = tempName(dst);
    await host.run(["mv", "-f", "--", dst, aside], priv);
  }
  try {
    await host.run(["mv", "-f", "-T", "--", staged, dst], priv);
  } catch (e) {
    if (aside) await host.run(["mv", "-f", "--", aside, dst], { ...priv, check: false });
    throw e;
  }
  if (aside) await host.run(["rm", "-rf", "--", aside], { ...priv, check: false });
}

export async function move(srcArg: string, dstArg: string, log: TmLog): Promise<void> {
  const src = parseTmArg(srcArg);
  const dst = parseTmArg(dstArg);
  const srcPath = requireAbsolute(src.path, "source");
  const dstPath = requireAbsolute(dst.path, "destination");
  const sameHost = (src.local && dst.local) || (!!src.host && src.host === dst.host);
  if (sameHost && srcPath === dstPath) {
    log("Will not move, source and destination are equal");
    return;
  }
  const from = hostFor(src);
  const to = sameHost ? from : hostFor(dst);
  try {
    // scp -r semantics: onto an existing directory of another name, the source goes inside.
    const final = basename(srcPath) !== basename(dstPath) &&
        (await to.isDirectory(dstPath, privileged(dst)))
      ? nodeJoin(dstPath, basename(srcPath))
      : dstPath;
    const disk = await containerOsDisk(from, srcPath);
    if (disk) return await saveContainerDisk(from, to, { src, dst, srcPath, final }, disk, log);
    if (!(await from.exists(srcPath, privileged(src)))) {
      if (await to.exists(final, privileged(dst))) {
        log(`${srcArg} is already at ${final}: moved by an earlier run`);
        return;
      }
      throw new OnevzError(`source ${srcArg} does not exist`);
    }
    // A container whose private area moves away must be stopped, and it stays registered
    // only where its files are (restore recreates the config from R/ctid.conf, written by save).
    const moving = src.local ? [] : await containersUsing(from, srcPath);
    for (const ct of moving) {
      const st = await vzctlStatus(from, ct.ctid);
      if (st?.running || st?.mounted) {
        throw new OnevzError(
          `container ${ct.ctid} is ${st.running ? "running" : "mounted"} on ${from.name} with ` +
            `its private area in ${srcPath}: not moving it`,
        );
      }
    }
    log(`Creating directory ${dirname(final)}`);
    await to.mkdirp(dirname(final));
    if (sameHost) {
      const staged = tempName(final);
      await from.run(["mv", "-f", "--", srcPath, staged], privileged(src));
      try {
        await install(to, staged, final, privileged(dst));
      } catch (e) {
        await from.run(["mv", "-f", "--", staged, srcPath], { ...privileged(src), check: false });
        throw e;
      }
      log(`Moved ${srcPath} to ${final} on ${from.name}`);
      return;
    }
    const stage = tempName(final);
    await to.mkdirp(stage);
    try {
      log(`Moving ${srcArg} to ${to.name}:${final}`);
      const staged = nodeJoin(stage, basename(srcPath));
      const bytes = await transfer({ from, to, src, dst, srcPath, staged }, log);
      await install(to, staged, final, privileged(dst));
      log(`Transferred ${bytes} bytes (tar stream) to ${to.name}:${final}`);
    } finally {
      await to.run(["rm", "-rf", "--", stage], { ...privileged(dst), check: false });
    }
    await from.run(["rm", "-rf", "--", srcPath], privileged(src));
    log(`Removed ${srcArg}`);
    for (const ct of moving) {
      // Its files are gone from here: vzctl destroy now only retires the config (.destroyed).
      await from.run(["vzctl", "--quiet", "destroy", String(ct.ctid)], { privileged: true });
      log(`Unregistered container ${ct.ctid} from ${from.name}: its files moved to ${dstArg}`);
    }
  } finally {
    await closeHosts(from, to);
  }
}

interface Leg {
  from: Host;
  to: Host;
  src: TmArg;
  dst: TmArg;
  srcPath: string;
  /** Where the copy is unpacked (inside the temporary directory). */
  staged: string;
}

/** Stream the source into `staged`; returns the bytes sent. */
async function transfer(leg: Leg, log: TmLog): Promise<number> {
  const { from, to, src, dst, srcPath, staged } = leg;
  const stage = dirname(staged);
  const directory = await from.isDirectory(srcPath, privileged(src));
  const base = basename(srcPath);
  if (!src.local && !dst.local) {
    // Node to node, as root at both ends: everything, owners and device nodes included.
    const opts = directory ? commonOptions(await xattrOptions(from), await xattrOptions(to)) : [];
    const { bytes } = await pipe(
      { host: from, argv: [...tarCreate(srcPath, opts)], privileged: true },
      { host: to, argv: tarExtract(stage, opts), privileged: true },
    );
    return bytes;
  }
  const holdsContainer = directory && !src.local &&
    (await from.isDirectory(`${srcPath}/private`, { privileged: true }));
  // The files, as the driver's user at the front-end end (a container's files excepted).
  const skip = holdsContainer
    ? ["--anchored", ...[...CONTAINER_PARTS, `${LOCK_NAME}*`].map((p) => `--exclude=${base}/${p}`)]
    : [];
  let { bytes } = await pipe(
    { host: from, argv: tarCreate(srcPath, skip), ...privileged(src) },
    { host: to, argv: tarExtract(stage), privileged: false },
  );
  if (holdsContainer) {
    // The container's parts as one archive made as root; the front-end only stores it.
    const opts = await xattrOptions(from);
    const archive = `${staged}/${CONTAINER_ARCHIVE}`;
    const parts: string[] = [];
    for (const p of CONTAINER_PARTS) {
      if (await from.exists(`${srcPath}/${p}`, { privileged: true })) parts.push(p);
    }
    const sent = await pipe(
      {
        host: from,
        argv: ["tar", "--numeric-owner", "-S", ...opts, "-C", srcPath, "-cf", "-", "--", ...parts],
        privileged: true,
      },
      { host: to, argv: ["dd", `of=${archive}`, "bs=1M", "status=none"], privileged: false },
    );
    await to.run(["chmod", "600", "--", archive]);
    await to.run(["tar", "-t", "-f", archive], { ...privileged(dst) }).catch((e) => {
      throw new OnevzError(`the container archive ${archive} does not read back: ${e.message}`);
    });
    bytes += sent.bytes;
    log(`Packed ${parts.join(", ")} of ${srcPath} as root into ${CONTAINER_ARCHIVE}`);
  } else if (directory && src.local && !dst.local) {
    // Resume: a container archive arrived with the files; unpack it as root on the node.
    const archive = `${staged}/${CONTAINER_ARCHIVE}`;
    if (await to.exists(archive, { privileged: true })) {
      const opts = await xattrOptions(to);
      await to.run(
        ["tar", "--numeric-owner", "-p", ...opts, "-C", staged, "-xf", archive],
        { privileged: true },
      );
      await to.run(["rm", "-f", "--", archive], { privileged: true });
      log(`Unpacked ${CONTAINER_ARCHIVE} as root into ${staged}`);
    }
  }
  return bytes;
}

/**
 * The saved disk of a container: its private area archived now, in the format of the TM's
 * image. Refused when the container still runs or has no files.
 */
async function saveContainerDisk(
  from: Host,
  to: Host,
  p: { src: TmArg; dst: TmArg; srcPath: string; final: string },
  disk: ContainerDisk,
  log: TmLog,
): Promise<void> {
  const what = `DISK ${disk.diskId} of ${from.name}:${disk.imagesDir}`;
  if (disk.ct) {
    const st = await vzctlStatus(from, disk.ct.ctid);
    if (st?.running || st?.mounted) {
      throw new OnevzError(
        `container ${disk.ct.ctid} is ${st.running ? "running" : "mounted"} on ${from.name}: ` +
          `its disk is saved after shutdown; not moving ${what}`,
      );
    }
  }
  if (!(await hasFiles(from, disk.privateDir))) {
    throw new OnevzError(
      `nothing to save for ${what}: the container's private area ${disk.privateDir} does ` +
        `not exist (the container was gone at shutdown); refusing to hand back the untouched ` +
        `OS image as the saved disk`,
    );
  }
  const image = p.srcPath;
  const ext = (await from.exists(image, { privileged: true }))
    ? archiveExtFromMagic(await readHead(from, image)) ?? ".tar.gz"
    : ".tar.gz";
  const { flag, verify } = ARCHIVE_TOOLS[ext];
  const dstPriv = privileged(p.dst);
  await to.mkdirp(dirname(p.final));
  const staged = tempName(p.final);
  try {
    log(`Archiving ${disk.privateDir} (${ext}) as the saved ${what}`);
    const { bytes } = await withContainerFiles(from, disk, (files) =>
      pipe(
        {
          host: from,
          argv: ["tar", "--numeric-owner", `-c${flag}f`, "-", "-C", files, "."],
          privileged: true,
        },
        { host: to, argv: ["dd", `of=${staged}`, "bs=1M", "status=none"], ...dstPriv },
      ));
    await to.run(verify(staged), dstPriv).catch((e) => {
      throw new OnevzError(`the archive of ${disk.privateDir} does not verify: ${e.message}`);
    });
    await to.run(["chmod", "600", "--", staged], dstPriv);
    await install(to, staged, p.final, dstPriv);
    log(`Saved ${bytes} bytes to ${to.name}:${p.final}`);
  } finally {
    await to.run(["rm", "-f", "--", staged], { ...dstPriv, check: false });
  }
  // The TM's copy of the image goes, as a move's source does; the private area stays for
  // the epilog's DELETE (a retried MV archives it again).
  await from.run(["rm", "-f", "--", image], { privileged: true });
  log(`Removed ${p.src.host ?? "front-end"}:${image}; ${disk.privateDir} is kept for DELETE`);
}

export default function (ctx: CommandContext): Promise<number> {
  return runTm(ctx, "tm-mv", (log) => move(ctx.args[0], ctx.args[1], log));
}
