/**
 * Front-end trees operators have, for install/uninstall tests:
 *   - `stockOneLocation`: a self-contained OpenNebula 2.2.1 ($ONE_LOCATION after its
 *     install.sh): oned.conf with the ssh TM enabled, the stock tm_ssh (tm_ssh.conf with the
 *     seven ssh/tm_*.sh commands of the reference, tm_sshrc, lib/tm_commands/ssh/*), the KVM
 *     drivers in var/remotes and their lib/remotes copy, run_probes;
 *   - `seedState`: the same after the seed's own steps for openvz4opennebula 1.0.0
 *     (`mv tm_ssh.conf{,.orig}`, the tarball extracted into $ONE_LOCATION: its remotes under
 *     var/remotes/vmm/ovz and im/ovz.d with copies in lib/remotes, its tm_ssh.conf and
 *     vmm_ssh_ovz.conf; the oned.conf sections it asks for; hooks/vzfirewall.sh; the patched
 *     one_vmm_ssh.rb).
 * The file names and the tm_ssh.conf lines come from the references; the script bodies are
 * stand-ins (the tarball's contents are not published: only their places are known), so each
 * says what it stands for. `snapshot` records every path with its type, mode and content.
 */
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";

export const STOCK_TM_SSH_CONF =
  `# ---------------------------------------------------------------------------- #
# Copyright 2002-2011, OpenNebula Project Leads (OpenNebula.org)                  #
# (stand-in header of OpenNebula 2.2.1's src/tm_mad/ssh/tm_ssh.conf)             #
# ---------------------------------------------------------------------------- #

CLONE   = ssh/tm_clone.sh
LN      = ssh/tm_ln.sh
MKSWAP  = ssh/tm_mkswap.sh
MKIMAGE = ssh/tm_mkimage.sh
DELETE  = ssh/tm_delete.sh
MV      = ssh/tm_mv.sh
CONTEXT = ssh/tm_context.sh
`;

/** openvz4opennebula's tm_ssh.conf (stand-in: the seed only says the tarball replaces it). */
export const SEED_TM_SSH_CONF = `# tm_ssh.conf from openvz4opennebula-1.0.0.tar.bz2 (stand-in)
CLONE   = ssh/tm_clone.sh
LN      = ssh/tm_ln.sh
MKSWAP  = ssh/tm_mkswap_ovz.sh
MKIMAGE = ssh/tm_mkimage.sh
DELETE  = ssh/tm_delete.sh
MV      = ssh/tm_mv.sh
CONTEXT = ssh/tm_context_ovz.sh
`;

export const STOCK_ONED_CONF =
  `#*******************************************************************************
#                       OpenNebula Configuration file (2.2.1, abridged stand-in)
#*******************************************************************************
HOST_MONITORING_INTERVAL = 600
VM_POLLING_INTERVAL      = 600
#VM_DIR=/srv/cloud/one/var
SCRIPTS_REMOTE_DIR=/var/tmp/one
PORT=2633
DB = [ backend = "sqlite" ]
VNC_BASE_PORT = 5900
DEBUG_LEVEL=3
NETWORK_SIZE = 254
MAC_PREFIX   = "02:00"
DEFAULT_IMAGE_TYPE    = "OS"
DEFAULT_DEVICE_PREFIX = "hd"

IM_MAD = [
    name       = "im_kvm",
    executable = "one_im_ssh",
    arguments  = "kvm" ]

VM_MAD = [
    name       = "vmm_kvm",
    executable = "one_vmm_ssh",
    arguments  = "kvm",
    default    = "vmm_ssh/vmm_ssh_kvm.conf",
    type       = "kvm" ]

TM_MAD = [
    name       = "tm_ssh",
    executable = "one_tm",
    arguments  = "tm_ssh/tm_ssh.conf" ]

HM_MAD = [
    executable = "one_hm" ]

VM_HOOK = [
    name      = "image",
    on        = "DONE",
    command   = "image.rb",
    arguments = "$VMID" ]
`;

/** The lines the seed adds to oned.conf (its "oned.conf example"). */
export const SEED_ONED_ADDITIONS = `
VM_DIR=/vz/one/vm
SCRIPTS_REMOTE_DIR=/vz/one/scripts
IMAGE_REPOSITORY_PATH = /srv/cloud/images
#-----------------------------------------------------
#  OpenVZ Information Driver Manager Configuration
#-----------------------------------------------------
IM_MAD = [
  name       = "im_ovz",
  executable = "one_im_ssh",
  arguments  = "ovz" ]
VM_MAD = [
name       = "vmm_ovz",
executable = "one_vmm_ssh",
arguments  = "ovz",
default    = "vmm_ssh/vmm_ssh_ovz.conf",
type       = "xml" ]
VM_HOOK = [
    name      = "vzfirewall",
    on        = "RUNNING",
    command   = "/vz/one/scripts/hooks/vzfirewall.sh",
    arguments = "",
    remote    = "yes" ]
`;

const script = (what: string) => `#!/bin/bash\n# stand-in for ${what}\nexit 0\n`;

async function put(path: string, text: string, mode = 0o644) {
  await Deno.mkdir(dirname(path), { recursive: true });
  await Deno.writeTextFile(path, text, { mode });
  await Deno.chmod(path, mode);
}

/** Lay out a stock OpenNebula 2.2.1 self-contained installation at `loc`. */
export async function stockOneLocation(loc: string): Promise<void> {
  await put(`${loc}/etc/oned.conf`, STOCK_ONED_CONF);
  await put(`${loc}/etc/tm_ssh/tm_ssh.conf`, STOCK_TM_SSH_CONF);
  await put(`${loc}/etc/tm_ssh/tm_sshrc`, "SECURE_CONTEXT=0\n");
  await put(`${loc}/etc/vmm_ssh/vmm_ssh_kvm.conf`, "# stand-in: KVM defaults\n");
  await put(`${loc}/etc/vmm_ssh/vmm_sshrc`, "# stand-in: vmm_ssh rc\n");
  for (const a of ["clone", "ln", "mkswap", "mkimage", "delete", "mv", "context"]) {
    await put(`${loc}/lib/tm_commands/ssh/tm_${a}.sh`, script(`ssh/tm_${a}.sh`), 0o755);
  }
  await put(
    `${loc}/lib/mads/one_vmm_ssh.rb`,
    "# stand-in: one_vmm_ssh.rb, line 104:\n" +
      'remotes_action("#{@remote_path}/restore #{file}",\n',
  );
  for (const tree of ["var/remotes", "lib/remotes"]) {
    await put(`${loc}/${tree}/im/run_probes`, script("im/run_probes"), 0o755);
    for (const p of ["architecture.sh", "cpu.sh", "name.sh", "kvm.rb"]) {
      await put(`${loc}/${tree}/im/kvm.d/${p}`, script(`im/kvm.d/${p}`), 0o755);
    }
    for (const a of ["deploy", "shutdown", "cancel", "save", "restore", "migrate", "poll"]) {
      await put(`${loc}/${tree}/vmm/kvm/${a}`, script(`vmm/kvm/${a}`), 0o755);
    }
    await put(`${loc}/${tree}/vmm/kvm/kvmrc`, "LANG=C\n");
  }
  await Deno.mkdir(`${loc}/var/images`, { recursive: true });
}

/** The seed's state: stock 2.2.1 plus openvz4opennebula's install steps. */
export async function seedState(loc: string): Promise<void> {
  await stockOneLocation(loc);
  // mv $ONE_LOCATION/etc/tm_ssh/tm_ssh.conf{,.orig}
  await Deno.rename(`${loc}/etc/tm_ssh/tm_ssh.conf`, `${loc}/etc/tm_ssh/tm_ssh.conf.orig`);
  // tar -xjf openvz4opennebula-1.0.0.tar.bz2 -C $ONE_LOCATION/
  await put(`${loc}/etc/tm_ssh/tm_ssh.conf`, SEED_TM_SSH_CONF);
  await put(
    `${loc}/etc/vmm_ssh/vmm_ssh_ovz.conf`,
    "# openvz4opennebula's vmm_ssh_ovz.conf (stand-in)\nCPUUNITS = 1000\n",
  );
  for (const tree of ["var/remotes", "lib/remotes"]) {
    for (const a of ["deploy", "shutdown", "cancel", "save", "restore", "migrate", "poll"]) {
      await put(`${loc}/${tree}/vmm/ovz/${a}`, script(`openvz4opennebula vmm/ovz/${a}`), 0o755);
    }
    for (const p of ["architecture.sh", "cpu.sh", "name.sh", "ovz.sh"]) {
      await put(`${loc}/${tree}/im/ovz.d/${p}`, script(`openvz4opennebula im/ovz.d/${p}`), 0o755);
    }
  }
  // The oned.conf lines the seed asks for, the hook script of its step 5, the patched driver.
  await Deno.writeTextFile(`${loc}/etc/oned.conf`, SEED_ONED_ADDITIONS, { append: true });
  await put(
    `${loc}/var/remotes/hooks/vzfirewall.sh`,
    "#!/bin/bash\nsudo /usr/sbin/vzfirewall -a\n",
    0o755,
  );
  await put(
    `${loc}/lib/mads/one_vmm_ssh.rb`,
    "# stand-in: one_vmm_ssh.rb, line 104:\n" +
      'remotes_action("#{@remote_path}/restore #{file} #{deploy_id}",\n',
  );
}

/** Every path under `dir` → "<type> <mode> <sha256 or link target>". */
export async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(d: string) {
    const entries = await Array.fromAsync(Deno.readDir(d));
    entries.sort((a, b) => a.name < b.name ? -1 : 1);
    for (const e of entries) {
      const p = join(d, e.name);
      const st = await Deno.lstat(p);
      const mode = (st.mode! & 0o7777).toString(8);
      const rel = p.slice(dir.length + 1);
      if (st.isSymlink) out[rel] = `link ${await Deno.readLink(p)}`;
      else if (st.isDirectory) {
        out[rel] = `dir ${mode}`;
        await walk(p);
      } else {
        const sha = createHash("sha256").update(await Deno.readFile(p)).digest("hex");
        out[rel] = `file ${mode} ${sha}`;
      }
    }
  }
  await walk(dir);
  return out;
}
