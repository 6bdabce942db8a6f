/**
 * migrate <deploy_id> <dest_host>: live migration, run on the source node. After MIGRATE
 * OpenNebula 2.2.1 runs no transfer step, so the VM's images directory R moves here too.
 *  1. Validate; find the container and take its lock.
 *  2. Copy R, except the private area, the root mount point and driver state, to the same path
 *     on the destination (tar stream over `ssh -o BatchMode=yes`, as the driver's user). In
 *     agentless mode the front-end relays the stream (`ssh src sudo tar c | ssh dest tar x`):
 *     the front-end's ssh configuration is not the nodes', and the source reads R as root.
 *  3. `vzmigrate [--online] DEST CTID` (--online only when running): same CTID, same
 *     VE_PRIVATE path under R; vzmigrate removes the container from the source.
 *     On failure the container keeps running here, and the copy made in step 2 is removed
 *     from the destination if this migration created it.
 *  4. Remove R from the source.
 */
import { posix } from "node:path";
import type { CommandContext } from "../../cli/context.ts";
import { OnevzError, shellQuote } from "../../cli/errors.ts";
import type { RunResult } from "../../host/host.ts";
import { LocalHost } from "../../host/local.ts";
import { SshHost } from "../../host/ssh.ts";
import {
  type ContainerInfo,
  LOCK_NAME,
  requireContainer,
  withContainerLock,
} from "../../ovz/container.ts";
import { ctStatus, deployIdArg, hostArg, note } from "./common.ts";
import { POLL_SAMPLE } from "./poll.ts";

export default async function migrate(ctx: CommandContext): Promise<number> {
  const ctid = deployIdArg(ctx.args[0]);
  const dest = hostArg(ctx.args[1]);
  const host = ctx.host;
  const ct = await requireContainer(host, ctid);
  if (ct.vmid === undefined) {
    throw new OnevzError(
      `VE_PRIVATE of ${ctid} is not under $VM_DIR/<vid>/images: ${ct.privateDir}`,
    );
  }
  const destHost = new SshHost(dest, { multiplex: false, useSudo: false });
  await withContainerLock(host, ct.imagesDir, "migrate", async () => {
    const running = (await ctStatus(ctx, ctid)).running;
    const created = ctx.mode === "agentless" && host instanceof SshHost
      ? await relayImagesDir(ct, host, destHost)
      : await copyImagesDir(ctx, ct, destHost);
    try {
      await host.run(["vzmigrate", ...(running ? ["--online"] : []), dest, String(ctid)], {
        privileged: true,
      });
    } catch (e) {
      if (created) {
        await destHost.run(["rm", "-rf", "--", ct.imagesDir], { check: false })
          .catch(() => note(ctx, `could not remove ${ct.imagesDir} from ${dest}`));
      }
      throw e;
    }
  });
  await host.remove(ct.imagesDir, { privileged: true, recursive: true });
  return 0;
}

/** R, tar's excludes (private area, root, lock, poll sample) and the receiving shell command. */
function copyParts(ct: ContainerInfo) {
  const r = ct.imagesDir;
  const skip = [`${LOCK_NAME}*`, POLL_SAMPLE, posix.basename(ct.privateDir)];
  if (ct.rootDir && posix.dirname(ct.rootDir) === posix.dirname(ct.privateDir)) {
    skip.push(posix.basename(ct.rootDir));
  }
  const excludes = skip.map((name) => `--exclude=./${name}`);
  const q = shellQuote(r);
  const remote = `if test -e ${q}; then echo existed; else echo created; fi; ` +
    `mkdir -p -- ${q} && tar -C ${q} -xpf -`;
  return { r, excludes, remote };
}

/** Stream R (without private area, root, lock, poll sample) to dest; true if R was new there. */
async function copyImagesDir(ctx: CommandContext, ct: ContainerInfo, dest: SshHost) {
  const { r, excludes, remote } = copyParts(ct);
  // Fixed script; every value arrives as a positional parameter, never as shell text. The
  // reading tar runs through sudo when the driver is not root (deploy's files in R are
  // root's); ssh to the destination stays the driver user's, with its keys.
  const script = 'r=$1; s=$2; n=$3; shift 3; ex=("${@:1:$n}"); shift "$n"; set -o pipefail; ' +
    'if [ "$s" = sudo ]; then t=(sudo -n tar); else t=(tar); fi; ' +
    '"${t[@]}" -C "$r" -cf - "${ex[@]}" . | "$@"';
  const result = await ctx.host.run(
    [
      "bash",
      "-c",
      script,
      "onevz-migrate",
      r,
      ctx.host.useSudo ? "sudo" : "plain",
      String(excludes.length),
      ...excludes,
      ...dest.sshArgv(),
      remote,
    ],
    { check: false },
  );
  return copyResult(result, ct, dest);
}

/**
 * Agentless: the front-end pipes `ssh src [sudo -n] tar c` into `ssh dest tar x` (src's
 * multiplexed connection), so the nodes need no ssh access to each other for the copy.
 */
async function relayImagesDir(ct: ContainerInfo, src: SshHost, dest: SshHost) {
  const { r, excludes, remote } = copyParts(ct);
  const tar = ["tar", "-C", r, "-cf", "-", ...excludes, "."];
  const from = [
    ...src.sshArgv(),
    (src.useSudo ? ["sudo", "-n", ...tar] : tar).map(shellQuote)
      .join(" "),
  ];
  const to = [...dest.sshArgv(), remote];
  // Fixed script; both command lines arrive as positional parameters.
  const script = 'n=$1; shift; set -o pipefail; "${@:1:$n}" | "${@:$((n + 1))}"';
  const result = await new LocalHost({ name: "localhost", useSudo: false }).run(
    ["bash", "-c", script, "onevz-migrate", String(from.length), ...from, ...to],
    { check: false },
  );
  return copyResult(result, ct, dest);
}

function copyResult(result: RunResult, ct: ContainerInfo, dest: SshHost): boolean {
  if (result.status !== 0) {
    throw new OnevzError(
      `copying ${ct.imagesDir} to ${dest.name} failed (exit ${result.status}): ` +
        (result.stderr.trim().split("\n").slice(-3).join(" / ") || "no message") +
        `; container ${ct.ctid} not migrated`,
    );
  }
  return result.stdout.includes("created");
}
