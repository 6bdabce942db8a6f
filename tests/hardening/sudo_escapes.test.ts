/**
 * What the rules `onevz install --sudoers` prints really grant (issue 11 §6). As the
 * unprivileged driver user with ONLY those rules (the test bed's own account, with the bed's
 * private sudoers.d: tests/hardening/least_privilege.ts), on this machine in the bed's
 * front-end namespace, the classic escapes are tried through every program the rules name,
 * against files of the test's own that only root may read or write; then the README's table
 * of what each program
 * gives must say exactly what the test found, and the README and the printed rules must say
 * that the group is root-equivalent. Also shown: a rule "narrowed" with sudo's argument
 * wildcard (`find <dir>/*`, `tar -cf /dev/null <dir>/*`) still runs any command as root,
 * because `*` matches blanks and extra options; and what the list still refuses (sudo sh,
 * bash, su, -i, env, id).
 *
 * Nothing of this machine's accounts or sudoers.d changes: the narrowed rules replace the
 * printed ones in the bed's private front-end sudoers.d only.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { SUDO_FILE_HELPERS, SUDO_OVZ_TOOLS } from "../../src/admin/layout.ts";
import { REPO, run } from "../helpers/simnode.ts";
import type { Bed, BedDriver } from "../testbed/mod.ts";
import { canRunPrivilegeTests, leastPrivilegeBed } from "./least_privilege.ts";

/** What a program can be made to do as root. */
const CAPS = {
  exec: "runs any command as root",
  read: "reads any file",
  hash: "hashes any file",
  write: "writes any file",
  replace: "replaces any file",
  mode: "changes any file's mode",
  owner: "changes any file's owner",
  remove: "removes any file",
  mkdir: "creates directories anywhere",
  exists: "tells whether any path exists",
} as const;
type Cap = keyof typeof CAPS;

interface Paths {
  /** A root-only directory (0700) holding `secret` (0600). */
  locked: string;
  secret: string;
  secretText: string;
  /** A root-owned directory the driver user may enter but not write (0755). */
  pub: string;
  /** The driver user's own directory. */
  mine: string;
}

interface Attempt {
  program: string;
  cap: Cap;
  /** The shell command the driver user runs. */
  command: (p: Paths) => string;
  /** Did it work? Checked by the test as root. */
  worked: (p: Paths, out: string) => boolean | Promise<boolean>;
}

const sha = (t: string | Uint8Array) => createHash("sha256").update(t).digest("hex");
const exists = (p: string) => Deno.lstat(p).then(() => true, () => false);
const has = (out: string, p: Paths) => out.includes(p.secretText);
const uid0 = (out: string) => /^0$/m.test(out);
async function rootOwned(path: string, text?: string) {
  const st = await Deno.lstat(path).catch(() => null);
  if (!st || st.uid !== 0) return false;
  return text === undefined || (await Deno.readTextFile(path)) === text;
}

/** Each escape, by program. Files are the test's own (made fresh per attempt). */
const ATTEMPTS: Attempt[] = [
  {
    program: "tar",
    cap: "exec",
    command: () =>
      "sudo -n tar -cf /dev/null /etc/hostname --checkpoint=1 --checkpoint-action=exec='id -u'",
    worked: (_p, out) => uid0(out),
  },
  {
    program: "find",
    cap: "exec",
    command: () => "sudo -n find /etc/hostname -maxdepth 0 -exec id -u ';'",
    worked: (_p, out) => uid0(out),
  },
  ...["cat", "tail", "dd", "od", "cmp", "gzip", "bzip2", "xz"].map((program): Attempt => ({
    program,
    cap: "read",
    command: (p) =>
      ({
        cat: `sudo -n cat ${p.secret}`,
        tail: `sudo -n tail -c +1 ${p.secret}`,
        dd: `sudo -n dd if=${p.secret} status=none`,
        od: `sudo -n od -An -c ${p.secret} | tr -d ' \\n'`,
        cmp: `sudo -n cmp -l ${p.secret} /dev/zero; true`,
        gzip: `sudo -n gzip -c ${p.secret} | gunzip`,
        bzip2: `sudo -n bzip2 -c ${p.secret} | bunzip2`,
        xz: `sudo -n xz -c ${p.secret} | unxz`,
      })[program]!,
    worked: (p, out) => {
      if (program !== "cmp") return has(out, p);
      // cmp -l lists "<offset> <octal byte of the secret> <octal byte of /dev/zero>".
      const bytes = out.split("\n").map((l) => l.trim().split(/\s+/)).filter((f) => f.length === 3)
        .map((f) => String.fromCharCode(parseInt(f[1], 8)));
      return bytes.join("") === p.secretText;
    },
  })),
  {
    program: "sha256sum",
    cap: "hash",
    command: (p) => `sudo -n sha256sum ${p.secret}`,
    worked: (p, out) => out.includes(sha(p.secretText)),
  },
  {
    program: "cp",
    cap: "write",
    command: (p) => `echo planted > ${p.mine}/f && sudo -n cp ${p.mine}/f ${p.locked}/by-cp`,
    worked: (p) => rootOwned(`${p.locked}/by-cp`, "planted\n"),
  },
  {
    program: "dd",
    cap: "write",
    command: (p) => `echo planted | sudo -n dd of=${p.locked}/by-dd status=none`,
    worked: (p) => rootOwned(`${p.locked}/by-dd`, "planted\n"),
  },
  {
    program: "tar",
    cap: "write",
    command: (p) =>
      `echo planted > ${p.mine}/by-tar && tar -cf ${p.mine}/t.tar -C ${p.mine} by-tar && ` +
      `sudo -n tar -xf ${p.mine}/t.tar -C ${p.locked}`,
    worked: (p) =>
      Deno.readTextFile(`${p.locked}/by-tar`).then((t) => t === "planted\n", () => false),
  },
  {
    program: "mv",
    cap: "replace",
    command: (p) => `echo mine > ${p.mine}/m && sudo -n mv -f ${p.mine}/m ${p.locked}/victim`,
    worked: (p) => Deno.readTextFile(`${p.locked}/victim`).then((t) => t === "mine\n", () => false),
  },
  {
    program: "ln",
    cap: "replace",
    command: (p) => `echo mine > ${p.mine}/l && sudo -n ln -sf ${p.mine}/l ${p.locked}/victim`,
    worked: async (p) =>
      (await Deno.readLink(`${p.locked}/victim`).catch(() => "")) === `${p.mine}/l`,
  },
  {
    program: "chmod",
    cap: "mode",
    command: (p) => `sudo -n chmod 666 ${p.pub}/rootfile && echo taken > ${p.pub}/rootfile`,
    worked: (p) => Deno.readTextFile(`${p.pub}/rootfile`).then((t) => t === "taken\n"),
  },
  {
    program: "chown",
    cap: "owner",
    command: (p) => `sudo -n chown "$(id -u)" ${p.pub}/rootfile && echo taken > ${p.pub}/rootfile`,
    worked: (p) => Deno.readTextFile(`${p.pub}/rootfile`).then((t) => t === "taken\n"),
  },
  {
    program: "rm",
    cap: "remove",
    command: (p) => `sudo -n rm -f ${p.locked}/victim`,
    worked: async (p) => !(await exists(`${p.locked}/victim`)),
  },
  {
    program: "mkdir",
    cap: "mkdir",
    command: (p) => `sudo -n mkdir ${p.locked}/newdir`,
    worked: async (p) => (await Deno.lstat(`${p.locked}/newdir`).catch(() => null))?.uid === 0,
  },
  {
    program: "test",
    cap: "exists",
    // The driver user alone cannot even tell: the directory is closed to it.
    command: (p) => `! test -e ${p.secret} && sudo -n test -e ${p.secret} && echo yes`,
    worked: (_p, out) => out.trim() === "yes",
  },
];

/** Programs the rules do not name: refused, whatever the arguments. */
const REFUSED = [
  "sudo -n sh -c id",
  "sudo -n bash -c id",
  "sudo -n su -c id",
  "sudo -n -i id",
  "sudo -n env id",
  "sudo -n id",
];

/** A shell command as the bed's driver account on this machine (the bed's namespace). */
async function asDriverOn(bed: Bed & { driver: BedDriver }, command: string) {
  const [cmd, ...args] = bed.asFrontEnd(["sh", "-c", command], { user: bed.driver.user });
  return await run(cmd, args, {
    env: { PATH: "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", HOME: "/" },
  });
}

/** Fresh files for one attempt: the secret, a root file, the driver's own directory. */
async function freshPaths(base: string, uid: number, gid: number, i: number): Promise<Paths> {
  const dir = join(base, `a${i}`);
  const locked = join(dir, "locked");
  const pub = join(dir, "pub");
  const mine = join(dir, "mine");
  for (const d of [dir, locked, pub, mine]) await Deno.mkdir(d, { recursive: true });
  await Deno.chmod(dir, 0o755);
  await Deno.chmod(locked, 0o700);
  await Deno.chmod(pub, 0o755);
  await Deno.chown(mine, uid, gid);
  const secretText = `onevz-secret-${crypto.randomUUID().replaceAll("-", "")}`;
  const secret = join(locked, "secret");
  await Deno.writeTextFile(secret, secretText, { mode: 0o600 });
  await Deno.chmod(secret, 0o600);
  await Deno.writeTextFile(join(locked, "victim"), "root's\n", { mode: 0o644 });
  await Deno.writeTextFile(join(pub, "rootfile"), "root's\n", { mode: 0o644 });
  await Deno.chmod(join(pub, "rootfile"), 0o644);
  return { locked, secret, secretText, pub, mine };
}

/** README rows `| \`prog\` | cap; cap; … |` of the table in §3 (program → capabilities). */
function readmeTable(readme: string): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const m of readme.matchAll(/^\| `([a-z0-9]+)` +\| ([^|]+)\|$/gm)) {
    rows.set(m[1], m[2].trim().split(/;\s*/).map((c) => c.replace(/ \(.*\)$/, "").trim()));
  }
  return rows;
}

Deno.test({
  name:
    "sudo rules: every program they name tried as the driver user; the README says what was found",
  ignore: !canRunPrivilegeTests,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const bed = await leastPrivilegeBed({ nodes: [], initSimulator: false });
    const lp = bed.driver;
    const asDriver = (command: string) => asDriverOn(bed, command);
    const base = await Deno.makeTempDir({ prefix: "onevz-escapes-" });
    // The bed's front-end sudoers.d, which sudo reads in asFrontEnd's namespace.
    const sudoersD = lp.sudoersDirs.fn;
    const wild = join(sudoersD, "onevz-sudo-escapes-wild");
    try {
      await Deno.chmod(base, 0o755);
      const user = lp.user;
      // Control: the commands below run as the driver, with exactly the printed rules.
      const who = await asDriver("id -un; sudo -n -l");
      assert.equal(who.stdout.split("\n")[0], user, who.stderr);
      assert.match(who.stdout, /\(root\) NOPASSWD: \/usr\/sbin\/vzctl, /);
      const found = new Map<string, Set<Cap>>();
      let i = 0;
      for (const a of ATTEMPTS) {
        const p = await freshPaths(base, lp.uid, lp.gid, i++);
        const r = await asDriver(a.command(p));
        if (await a.worked(p, r.stdout)) {
          found.set(a.program, new Set([...(found.get(a.program) ?? []), a.cap]));
        }
      }
      // Every file helper the rules name was tried, and each gave root something.
      for (const h of SUDO_FILE_HELPERS) {
        assert.ok(
          found.has(h),
          `${h}: no escape worked (tried: ${
            ATTEMPTS.filter((a) => a.program === h).map((a) => a.cap)
          })`,
        );
      }
      // cp + chown + chmod: a setuid-root copy of a program.
      const p = await freshPaths(base, lp.uid, lp.gid, i++);
      const suid = await asDriver(
        `sudo -n cp /usr/bin/id ${p.pub}/id-root && sudo -n chown root:root ${p.pub}/id-root && ` +
          `sudo -n chmod 4755 ${p.pub}/id-root && ${p.pub}/id-root -u`,
      );
      assert.equal(suid.stdout.trim(), "0", `setuid copy: ${suid.stdout}${suid.stderr}`);
      // What the list refuses.
      for (const c of REFUSED) {
        const r = await asDriver(c);
        assert.notEqual(r.code, 0, c);
        assert.doesNotMatch(r.stdout, /uid=0/, c);
      }

      // A rule narrowed with sudo's wildcard is no narrower: * matches blanks and options.
      const rules = join(sudoersD, "onevz");
      assert.equal(await Deno.readTextFile(rules), lp.rules);
      const aside = join(base, "rules-aside");
      await Deno.rename(rules, aside);
      try {
        const q = await freshPaths(base, lp.uid, lp.gid, i++);
        const text = [
          `${user} ALL=(root) NOPASSWD: /usr/bin/find ${q.pub}/*, /bin/find ${q.pub}/*`,
          `${user} ALL=(root) NOPASSWD: /usr/bin/tar -cf /dev/null ${q.pub}/*, ` +
          `/bin/tar -cf /dev/null ${q.pub}/*`,
          "",
        ].join("\n");
        await Deno.writeTextFile(`${wild}.tmp`, text, { mode: 0o440 });
        const [vc, ...va] = bed.asFrontEnd(["visudo", "-cf", `${wild}.tmp`]);
        const v = await run(vc, va);
        assert.equal(v.code, 0, v.stdout + v.stderr);
        await Deno.rename(`${wild}.tmp`, wild);
        const f = await asDriver(`sudo -n find ${q.pub}/rootfile -maxdepth 0 -exec id -u ';'`);
        assert.equal(f.stdout.trim(), "0", `find through ${q.pub}/*: ${f.stderr}`);
        const t = await asDriver(
          `sudo -n tar -cf /dev/null ${q.pub}/rootfile --checkpoint=1 --checkpoint-action=exec='id -u'`,
        );
        assert.match(t.stdout, /^0$/m, `tar through ${q.pub}/*: ${t.stderr}`);
        // …while what the pattern does not match is still refused.
        const other = await asDriver("sudo -n find /etc/hostname -maxdepth 0");
        assert.notEqual(other.code, 0);
      } finally {
        await Deno.remove(wild).catch(() => {});
        await Deno.remove(`${wild}.tmp`).catch(() => {});
        await Deno.rename(aside, rules);
      }

      // The README's table says, for each program, exactly what the test found.
      const readme = await Deno.readTextFile(`${REPO}/README.md`);
      const table = readmeTable(readme);
      for (const h of SUDO_FILE_HELPERS) {
        const said = new Set(table.get(h) ?? []);
        const got = new Set([...(found.get(h) ?? [])].map((c) => CAPS[c]));
        assert.deepEqual(said, got, `README row for ${h}`);
      }
      for (const t of SUDO_OVZ_TOOLS) assert.ok(table.has(t), `README row for ${t}`);
      assert.match(readme, /membership of the group is root on the node/i);
      assert.match(readme, /`sudo sh`, `sudo bash`, `sudo su`, `sudo -i`/);
      assert.doesNotMatch(readme, /least[- ]privilege/i, "the README must not call the rules that");
      assert.match(lp.rules, /ROOT-EQUIVALENT/);
    } finally {
      await Deno.remove(base, { recursive: true }).catch(() => {});
      await bed.stop();
    }
  },
});
