/**
 * tm-mv <host:src> <host:dst>: TM MV, for a file or a directory.
 *   - front-end → node (resume: `MV FE:L/images H:R`),
 *   - node → front-end (SAVE=yes: `MV H:R/disk.i FE:L/disk.i`; stop: `MV H:R FE:L`),
 *   - node → node (cold migration: `MV oldH:R newH:R`), relayed through the front-end so the
 *     nodes need no ssh trust between them.
 * The data travels as a tar stream (owners kept numerically, sparse files kept sparse) into a
 * temporary directory beside the destination; the destination appears by rename, and the
 * source is removed only after that succeeded. Same host: a plain `mv`.
 * Node-side commands run through sudo (R may hold root-owned files of a container), except the
 * creation of directories, which belong to the driver's user like the rest of VM_DIR.
 */
import { basename } from "../../host/posix_path.ts";
import type { CommandContext } from "../../cli/context.ts";
import { OnevzError } from "../../cli/errors.ts";
import type { Host } from "../../host/host.ts";
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
    await host.run(["mv", "-f", "--", staged, dst], priv);
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
    if (!(await from.exists(srcPath, privileged(src)))) {
      throw new OnevzError(`source ${srcArg} does not exist`);
    }
    const dstDir = nodeJoin(dstPath, "..");
    log(`Creating directory ${dstDir}`);
    await to.mkdirp(dstDir);
    if (sameHost) {
      const staged = tempName(dstPath);
      await from.run(["mv", "-f", "--", srcPath, staged], privileged(src));
      try {
        await install(to, staged, dstPath, privileged(dst));
      } catch (e) {
        await from.run(["mv", "-f", "--", staged, srcPath], { ...privileged(src), check: false });
        throw e;
      }
      log(`Moved ${srcPath} to ${dstPath} on ${from.name}`);
      return;
    }
    const stage = tempName(dstPath);
    await to.mkdirp(stage);
    try {
      log(`Moving ${srcArg} to ${dstArg}`);
      const { bytes } = await pipe(
        { host: from, argv: tarCreate(srcPath), ...privileged(src) },
        // Keep owners only node to node; from the front-end the files become the node user's.
        { host: to, argv: tarExtract(stage), privileged: !dst.local && !src.local },
      );
      await install(to, nodeJoin(stage, basename(srcPath)), dstPath, privileged(dst));
      log(`Transferred ${bytes} bytes (tar stream) to ${to.name}:${dstPath}`);
    } finally {
      await to.run(["rm", "-rf", "--", stage], { ...privileged(dst), check: false });
    }
    await from.run(["rm", "-rf", "--", srcPath], privileged(src));
    log(`Removed ${srcArg}`);
  } finally {
    await closeHosts(from, to);
  }
}

export default function (ctx: CommandContext): Promise<number> {
  return runTm(ctx, "tm-mv", (log) => move(ctx.args[0], ctx.args[1], log));
}
