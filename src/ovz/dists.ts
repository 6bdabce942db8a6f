/**
 * vzctl's distribution lookup, and the guest layout it implies. Pure.
 *
 * vzctl picks the scripts that set up a container's IP, hostname and DNS from
 * `/etc/vz/dists/<name>.conf`, where name is the OS template name with its last `-suffix`
 * stripped until a file exists (`centos-6-x86_64` → `centos-6` → `centos`), else
 * `dists/default` (Red Hat scripts) with a warning (vzctl src/lib/dist.c). onevz decides the
 * same way where the guest reads its boot hook and its veth network configuration.
 */

/** The dist configs a stock vzctl 4.11.1 installs (etc/dists/Makefile.am), without `.conf`. */
export const STOCK_DISTS: readonly string[] = [
  "alpine",
  "altlinux",
  "altlinux-2.4",
  "arch",
  "centos",
  "debian",
  "debian-3.0",
  "debian-3.1",
  "fedora",
  "fedora-core",
  "funtoo",
  "gentoo",
  "mandrake",
  "owl",
  "opensuse",
  "redhat",
  "redhat-7.0",
  "redhat-7.1",
  "redhat-7.2",
  "redhat-7.3",
  "rhel",
  "scientific",
  "slackware",
  "slackware-9.0",
  "slackware-9.1",
  "sles",
  "suse",
  "suse-7.3",
  "suse-8.0",
  "suse-8.1",
  "suse-8.2",
  "ubuntu",
  "ubuntu-6.06",
];

/**
 * The dist config vzctl uses for an OS template name, or undefined when it falls back to
 * `default`. `available` holds the config names (without `.conf`) of the node's dists
 * directory, or vzctl's stock set when the node is not known.
 */
export function distConfFor(
  templateName: string,
  available: Iterable<string> = STOCK_DISTS,
): string | undefined {
  const have = new Set(available);
  for (let name = templateName;;) {
    if (have.has(name)) return name;
    const i = name.lastIndexOf("-");
    if (i <= 0) return undefined;
    name = name.slice(0, i);
  }
}

/** Config names from a listing of /etc/vz/dists (`ls -1`): `*.conf` without the suffix. */
export function distNamesFromListing(listing: string): string[] {
  return listing.split("\n").map((l) => l.trim()).filter((l) => l.endsWith(".conf"))
    .map((l) => l.slice(0, -".conf".length)).filter((n) => n !== "");
}

/**
 * How a guest boots and configures its network:
 * - redhat: SysV rc / systemd rc-local run /etc/rc.d/rc.local; network-scripts read
 *   /etc/sysconfig/network-scripts/ifcfg-<dev>;
 * - debian: /etc/init.d/rc.local / systemd rc-local run /etc/rc.local when executable;
 *   ifupdown reads /etc/network/interfaces.
 */
export type GuestFamily = "redhat" | "debian";

const FAMILY_OF_DIST: Readonly<Record<string, GuestFamily>> = {
  centos: "redhat",
  redhat: "redhat",
  rhel: "redhat",
  scientific: "redhat",
  fedora: "redhat",
  "fedora-core": "redhat",
  debian: "debian",
  ubuntu: "debian",
};

export interface GuestLayout {
  family: GuestFamily;
  /** The dist config vzctl will use (undefined: `default`). */
  dist?: string;
  /** Set when the family had to be assumed: says what was assumed and why. */
  assumed?: string;
}

/**
 * The guest family for an OS template name, decided as vzctl decides its dist config. A name
 * vzctl maps to no config, or to a config of another family, falls back to the Red Hat layout
 * (what vzctl's `default` scripts write), with a message saying so.
 */
export function guestLayout(
  templateName: string,
  available?: Iterable<string>,
  where = "vzctl's stock /etc/vz/dists",
): GuestLayout {
  const list = available ? [...available] : STOCK_DISTS;
  const dist = distConfFor(templateName, list);
  // Family by the config's own name, then by its leading word (debian-3.1 → debian).
  const family = dist ? (FAMILY_OF_DIST[dist] ?? FAMILY_OF_DIST[dist.split("-")[0]]) : undefined;
  if (family) return { family, dist };
  const known = Object.keys(FAMILY_OF_DIST).join(", ");
  if (!dist) {
    return {
      family: "redhat",
      assumed: `OS template ${templateName} matches no distribution in ${where} ` +
        `(vzctl strips -suffixes: ${candidates(templateName).join(", ")}), so vzctl uses ` +
        `dists/default; onevz assumes a Red Hat guest (/etc/rc.d/rc.local, ifcfg files): name ` +
        `the template after its distribution (${known}, e.g. debian-6.0-x86_64) or set ` +
        `OSTEMPLATE = "<dist>-<version>-<arch>"`,
    };
  }
  return {
    family: "redhat",
    dist,
    assumed: `OS template ${templateName} uses dists/${dist}.conf, a distribution onevz has ` +
      `no guest layout for (it knows ${known}): it assumes a Red Hat guest ` +
      `(/etc/rc.d/rc.local, ifcfg files)`,
  };
}

function candidates(templateName: string): string[] {
  const out: string[] = [];
  for (let name = templateName;;) {
    out.push(`${name}.conf`);
    const i = name.lastIndexOf("-");
    if (i <= 0) return out;
    name = name.slice(0, i);
  }
}
