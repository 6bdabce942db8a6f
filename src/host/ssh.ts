/**
 * SshHost runs commands on another machine through OpenSSH. Each argument is quoted for the
 * remote shell, so template values stay inert data. One multiplexed connection (ControlMaster)
 * serves all commands of an action; `close()` ends it.
 */
import { shellQuote } from "../cli/errors.ts";
import { Host, type RunOptions, type RunResult } from "./host.ts";
import { LocalHost } from "./local.ts";

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
}

export class SshHost extends Host {
  readonly name: string;
  private readonly local = new LocalHost({ name: "localhost", useSudo: false });
  private readonly controlPath?: string;
  private readonly opts: SshHostOptions;
  private sudoDecided: boolean;

  constructor(name: string, opts: SshHostOptions = {}) {
    super();
    if (!/^[A-Za-z0-9_.:\[\]-]+$/.test(name) || name.startsWith("-")) {
      throw new Error(`invalid host name: ${JSON.stringify(name)}`);
    }
    this.name = name;
    this.opts = opts;
    this.sysroot = opts.sysroot ?? "";
    this.useSudo = opts.useSudo ?? true;
    this.sudoDecided = opts.useSudo !== undefined;
    if (opts.multiplex !== false) {
      // A unix socket path must fit in 108 bytes: %C is 40 characters, so a long TMPDIR
      // falls back to /tmp.
      const tmp = Deno.env.get("TMPDIR") ?? "/tmp";
      const dir = tmp.length <= 48 ? tmp : "/tmp";
      this.controlPath = `${dir}/onevz-ssh-${Deno.pid}-%C`;
    }
  }

  /**
   * The ssh argv prefix (without the remote command). ONEVZ_SSH names another ssh-compatible
   * program (like GIT_SSH): a wrapper with site options, or the test fixtures' node stand-in.
   */
  sshArgv(): string[] {
    const args = [Deno.env.get("ONEVZ_SSH") || "ssh", "-o", "BatchMode=yes"];
    const config = this.opts.configFile ?? Deno.env.get("ONEVZ_SSH_CONFIG");
    if (config) args.push("-F", config);
    if (this.controlPath) {
      args.push(
        "-o",
        "ControlMaster=auto",
        "-o",
        `ControlPath=${this.controlPath}`,
        "-o",
        "ControlPersist=60",
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

  protected spawn(argv: readonly string[], opts: RunOptions): Promise<RunResult> {
    const remote = argv.map(shellQuote).join(" ");
    return this.local["spawn"]([...this.sshArgv(), remote], opts).then((r) => ({ ...r, argv }));
  }

  /** Close the multiplexed connection, if one was opened. */
  override async close(): Promise<void> {
    if (!this.controlPath) return;
    const args = this.sshArgv();
    const target = args.pop()!;
    args.pop(); // "--"
    await this.local.run([...args, "-O", "exit", target], { check: false });
  }
}
