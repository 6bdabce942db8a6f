/**
 * A process that takes a container lock the way every action does, for the lock tests:
 *   deno run -A lock_worker.ts <imagesDir> <log> <startAtMs> <holdMs> [ssh-host]
 * Waits until startAtMs (so that the workers of a trial start together), takes the lock of
 * <imagesDir> (locally, or on [ssh-host] over ssh like agentless mode), appends
 * "enter <pid>" and, after holdMs, "exit <pid>" to <log> (O_APPEND), then releases it.
 * Prints what the lock reported (a broken stale lock) on stderr.
 */
import { LocalHost } from "../../src/host/local.ts";
import { SshHost } from "../../src/host/ssh.ts";
import { lockContainer } from "../../src/ovz/container.ts";

const [dir, log, startAt, hold, sshHost] = Deno.args;
const host = sshHost
  ? new SshHost(sshHost, { multiplex: false })
  : new LocalHost({ useSudo: false });
const append = (line: string) =>
  Deno.writeTextFileSync(log, `${line} ${Deno.pid}\n`, { append: true });
await new Promise((r) => setTimeout(r, Math.max(0, Number(startAt) - Date.now())));
const unlock = await lockContainer(host, dir, "worker", {
  pollMs: 20,
  waitMs: 60_000,
  onBroken: (m) => console.error(m),
});
append("enter");
await new Promise((r) => setTimeout(r, Number(hold)));
append("exit");
await unlock();
