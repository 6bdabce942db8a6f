/**
 * SshHost runs commands on another machine through OpenSSH. Each argument is quoted for the
 * remote shell, so template values stay inert data.
 *
 * Connections are multiplexed (ControlMaster). By default the master outlives the action for
 * ONEVZ_SSH_PERSIST seconds (60), in a private per-user directory, so that the bursts oned
 * sends to one node (the lines of a transfer script, then deploy; the polls of its VMs) pay
 * for one ssh handshake instead of one each: on a small front-end a handshake costs more
 * than the whole action. ONEVZ_SSH_PERSIST=0 gives each action its own connection, closed
 * when the action ends.
 */
import { shellQuote } from "../cli/errors.ts";
import { Host, type RunOptions, type RunResult } from "./host.ts";
import { LocalHost } from "./local.ts";
import { isValidHostName, sharedControlDir } from "./control_dir.ts";

export { sharedControlDir };

export interface SshHostOptions {
  /** Remote user (default: the ssh config's or the current user). */
  user?: string;
  /** Extra ssh config file (ONEVZ_SSH_CONFIG), used by the test bed and by operators. */
  configFile?: string;
  /** Remote OpenVZ sysroot (ONEVZ_SYSROOT on the node), for simulated nodes. */
  sysroot?: string;
  /**
   * Run privileged commands through `sudo -n`. Default: when the remote login is not root
   * (asked once per host object with `id -u`).
   */
  useSudo?: boolean;
  /** Share one connection between the commands of this host object. */
  multiplex?: boolean;
  /**
   * Keep the shared connection this many seconds after the last use, for later actions
   * (default ONEVZ_SSH_PERSIST, else 60; 0: one connection per action, closed by close()).
   */
  persistSeconds?: number;
}

/** The default master lifetime after the last use, in seconds (ONEVZ_SSH_PERSIST). */
export function persistSecondsFromEnv(value = Deno.env.get("ONEVZ_SSH_PERSIST")): number {
  if (value === undefined || value.trim() === "") return 60;
  const n = Number(value);
  return Number.isInteger(n) && n >= 0 && n <= 86400 ? n : 60;
}

export class SshHost extends Host {
  readonly name: string;
  private readonly local = new LocalHost({ name: "localhost", useSudo: false });
  private readonly controlPath?: string;
  /** The master outlives this object (shared socket, ControlPersist); close() leaves it. */
  private readonly persistent: boolean = false;
  private readonly persistSeconds: number = 60;
  private readonly opts: SshHostOptions;
  private sudoDecided: boolean;
  /** Settles when this host's first command (the one that opens the master) is done. */
  private connected?: Promise<void>;

  constructor(name: string, opts: SshHostOptions = {}) {
    super();
    if (!isValidHostName(name)) {
      throw new Error(`invalid host name: ${JSON.stringify(name)}`);
    }
    this.name = name;
    this.opts = opts;
    this.sysroot = opts.sysroot ?? "";
    this.useSudo = opts.useSudo ?? true;
    this.sudoDecided = opts.useSudo !== undefined;
    if (opts.multiplex !== false) {
      const persist = opts.persistSeconds ?? persistSecondsFromEnv();
      const shared = persist > 0 ? sharedControlDir() : undefined;
      if (shared) {
        this.controlPath = `${shared}/%C`;
        this.persistent = true;
        this.persistSeconds = persist;
      } else {
        // A unix socket path must fit in 108 bytes: %C is 40 characters, so a long TMPDIR
        // falls back to /tmp.
        const tmp = Deno.env.get("TMPDIR") ?? "/tmp";
        const dir = tmp.length <= 48 ? tmp : "/tmp";
        this.controlPath = `${dir}/onevz-ssh-${Deno.pid}-%C`;
      }
    }
  }

  /**
   * The ssh argv prefix (without the remote command). ONEVZ_SSH names another ssh-compatible
   * program (like GIT_SSH): a wrapper with site options, or the test fixtures' node stand-in.
   */
  sshArgv(opts: { direct?: boolean } = {}): string[] {
    const args = [Deno.env.get("ONEVZ_SSH") || "ssh", "-o", "BatchMode=yes"];
    const config = this.opts.configFile ?? Deno.env.get("ONEVZ_SSH_CONFIG");
    if (config) args.push("-F", config);
    if (opts.direct) {
      args.push("-o", "ControlMaster=no", "-o", "ControlPath=none");
    } else if (this.controlPath) {
      args.push(
        "-o",
        "ControlMaster=auto",
        "-o",
        `ControlPath=${this.controlPath}`,
        "-o",
        `ControlPersist=${this.persistSeconds}`,
      );
    }
    const target = this.opts.user ? `${this.opts.user}@${this.name}` : this.name;
    return [...args, "--", target];
  }

  override async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    if (opts.privileged && !this.sudoDecided) {
      const id = await super.run(["id", "-u"], { check: false });
      this.sudoDecided = true;
      this.useSudo = !(id.status === 0 && id.stdout.trim() === "0");
    }
    return super.run(argv, opts);
  }

  protected async spawn(argv: readonly string[], opts: RunOptions): Promise<RunResult> {
    const remote = argv.map(shellQuote).join(" ");
    // Commands started together wait for the first one, so that it is the one to open the
    // master connection and the others share it instead of racing to open their own.
    const first = this.connected === undefined;
    const started = first ? undefined : this.connected;
    let opened = () => {};
    if (first) this.connected = new Promise<void>((resolve) => opened = resolve);
    await started;
    const r = await this.local["spawn"]([...this.sshArgv(), remote], opts).finally(opened);
    // Another onevz process opened the shared master at the same moment: ssh says so and
    // goes on without multiplexing; that is not the command's output.
    r.stderr = r.stderr.replace(MUX_RACE, "");
    if (r.status === 255 && this.controlPath && MUX_REFUSED.test(r.stderr)) {
      // The shared master's server refused one more session (sshd MaxSessions, 10 by
      // default): run this command over a connection of its own.
      const direct = this.sshArgv({ direct: true });
      const again = await this.local["spawn"]([...direct, remote], opts);
      return { ...again, argv };
    }
    return { ...r, argv };
  }

  /** Close the multiplexed connection, unless it is shared with later actions. */
  override async close(): Promise<void> {
    if (!this.controlPath || this.persistent) return;
    const args = this.sshArgv();
    const target = args.pop()!;
    args.pop(); // "--"
    await this.local.run([...args, "-O", "exit", target], { check: false });
  }
}

/** ssh's note when another process created the control socket first. */
const MUX_RACE = /^ControlSocket .* already exists, disabling multiplexing\r?\n/gm;

/** How ssh reports that a master connection could not open one more session. */
const MUX_REFUSED = /Session open refused|administratively prohibited|mux_client_request_session/i;
