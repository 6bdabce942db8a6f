/**
 * Which vmm_ssh_ovz.conf applies, one rule for every reader (deploy, the TM actions, plan,
 * doctor), so that plan shows what deploy does and the TM limits what deploy allows:
 *   1. ONEVZ_DEFAULTS, when set: that file only, and a missing file is an error (the operator
 *      named it; falling back would apply other settings, other CTIDs, without a word);
 *   2. the remotes tree's vmm/<hypervisor>/vmm_ssh_ovz.conf: what deploy reads on the node (scp
 *      copied it there), on the front-end a link to the installed file;
 *   3. the installed file, $ONE_LOCATION/etc/vmm_ssh/ or /etc/one/vmm_ssh/.
 * A file that exists but cannot be read is an error: it never silently means "built-in".
 */
import { OnevzError } from "../cli/errors.ts";

export type Env = (name: string) => string | undefined;

export interface DefaultsCandidates {
  files: string[];
  /** The files came from ONEVZ_DEFAULTS. */
  explicit: boolean;
}

export function defaultsFileCandidates(
  env: Env,
  remotesDir?: string,
  hypervisor: "ovz" | "ovz_fe" = "ovz",
): DefaultsCandidates {
  const explicit = env("ONEVZ_DEFAULTS");
  if (explicit) return { files: [explicit], explicit: true };
  const files: string[] = [];
  if (remotesDir) {
    files.push(`${remotesDir.replace(/\/+$/, "")}/vmm/${hypervisor}/vmm_ssh_ovz.conf`);
  }
  const loc = env("ONE_LOCATION");
  files.push(
    loc
      ? `${loc.replace(/\/+$/, "")}/etc/vmm_ssh/vmm_ssh_ovz.conf`
      : "/etc/one/vmm_ssh/vmm_ssh_ovz.conf",
  );
  return { files, explicit: false };
}

export interface DefaultsText {
  /** The file read; undefined when none exists (built-in defaults apply). */
  file?: string;
  text: string | null;
  /** Every file looked at, for messages. */
  tried: string[];
}

export async function readDefaultsFile(
  env: Env,
  remotesDir?: string,
  hypervisor: "ovz" | "ovz_fe" = "ovz",
): Promise<DefaultsText> {
  const { files, explicit } = defaultsFileCandidates(env, remotesDir, hypervisor);
  for (const file of files) {
    try {
      return { file, text: await Deno.readTextFile(file), tried: files };
    } catch (e) {
      if (e instanceof Deno.errors.NotFound && !explicit) continue;
      const why = e instanceof Deno.errors.NotFound ? "it does not exist" : (e as Error).message;
      throw new OnevzError(
        `cannot read the defaults file ${file}${
          explicit ? " (named by ONEVZ_DEFAULTS)" : ""
        }: ${why}; ${
          explicit
            ? "correct ONEVZ_DEFAULTS or unset it"
            : "make it readable by the driver's user or remove it"
        }`,
      );
    }
  }
  return { text: null, tried: files };
}
