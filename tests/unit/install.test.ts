// onevz install / uninstall into an empty temporary $ONE_LOCATION (and a "system" root).
import assert from "node:assert/strict";
import { dirname } from "node:path";
import { type BackupRecord, install, readManifest, sha256 } from "../../src/admin/install.ts";
import { uninstall } from "../../src/admin/uninstall.ts";
import {
  installPaths,
  ONED_BEGIN,
  onedSnippet,
  VMM_ACTIONS,
  withOnedBlock,
  withoutOnedBlock,
} from "../../src/admin/layout.ts";
import { namedVector, parseOnedConf } from "../../src/admin/checks/oned.ts";
import { COMMANDS } from "../../src/cli/commands.ts";
import { oneTm, parseTmConf } from "../../fixtures/oned/tm.ts";
import {
  seedState,
  snapshot,
  STOCK_TM_SSH_CONF as STOCK_TM_SSH_TEXT,
  stockOneLocation,
} from "../helpers/one_tree.ts";

const root = new URL("../..", import.meta.url).pathname;
const deno = `${root}node_modules/.bin/deno`;
const quiet = () => {};

async function lstat(p: string) {
  try {
    return await Deno.lstat(p);
  } catch {
    return undefined;
  }
}

async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string) {
    for await (const e of Deno.readDir(d)) {
      const p = `${d}/${e.name}`;
      out.push(p.slice(dir.length + 1) + (e.isDirectory ? "/" : ""));
      if (e.isDirectory) await walk(p);
    }
  }
  await walk(dir);
  return out.sort();
}

const ORIGINAL_TM = "CLONE   = ssh/tm_clone.sh\nLN      = ssh/tm_ln.sh\n";
const ORIGINAL_ONED = "SCRIPTS_REMOTE_DIR=/vz/one/scripts\nVM_DIR=/vz/one/vm\n\n" +
  'TM_MAD = [\n    name       = "tm_ssh",\n    executable = "one_tm",\n' +
  '    arguments  = "tm_ssh/tm_ssh.conf" ]\n';

async function oneLocation() {
  const dir = await Deno.makeTempDir({ prefix: "onevz-install-" });
  const loc = `${dir}/one`;
  await Deno.mkdir(`${loc}/etc/tm_ssh`, { recursive: true });
  await Deno.writeTextFile(`${loc}/etc/tm_ssh/tm_ssh.conf`, ORIGINAL_TM);
  await Deno.writeTextFile(`${loc}/etc/oned.conf`, ORIGINAL_ONED);
  return { dir, loc, paths: installPaths({ oneLocation: loc }) };
}

Deno.test("install: tree shape, executable once, shims, symlinked defaults, tm_ovz", async () => {
  const { dir, loc, paths } = await oneLocation();
  const fakeBin = `${dir}/onevz-binary`;
  await Deno.writeTextFile(fakeBin, "#!/bin/sh\necho fake onevz\n");
  try {
    const r = await install({ paths, binary: { kind: "copy", from: fakeBin }, say: quiet });
    const rem = `${loc}/var/remotes`;
    for (const a of VMM_ACTIONS) {
      for (const hyp of ["ovz", "ovz_fe"]) {
        const st = await Deno.lstat(`${rem}/vmm/${hyp}/${a}`);
        assert.ok(st.isFile && (st.mode! & 0o111) === 0o111, `${hyp}/${a} executable`);
        const text = await Deno.readTextFile(`${rem}/vmm/${hyp}/${a}`);
        assert.match(text, new RegExp(`ONEVZ_ACTION=${a}\\n`));
        assert.match(text, new RegExp(`exec -a ${a} "\\$remotes/bin/onevz" "\\$@"`));
        assert.equal(text.includes("ONEVZ_MODE=agentless"), hyp === "ovz_fe");
      }
    }
    for (const p of ["im/ovz.d/probe", "im/ovz_fe.d/probe", "hooks/vzfirewall.sh", "bin/onevz"]) {
      const st = await Deno.lstat(`${rem}/${p}`);
      assert.ok(st.isFile && (st.mode! & 0o111) === 0o111, `${p} is an executable file`);
    }
    // The executable is in the remotes tree exactly once (everything else is a small shim).
    const big = (await listTree(rem)).filter((p) => !p.endsWith("/"));
    const copies = [];
    for (const p of big) {
      const st = await Deno.lstat(`${rem}/${p}`);
      if (st.isFile && (await Deno.readTextFile(`${rem}/${p}`)).includes("fake onevz")) {
        copies.push(p);
      }
    }
    assert.deepEqual(copies, ["bin/onevz"]);
    // Defaults file: a symlink into etc (scp -r turns it into a regular copy on the nodes).
    const link = `${rem}/vmm/ovz/vmm_ssh_ovz.conf`;
    assert.ok((await Deno.lstat(link)).isSymlink);
    assert.equal(await Deno.readLink(link), `${loc}/etc/vmm_ssh/vmm_ssh_ovz.conf`);
    assert.ok((await Deno.stat(link)).isFile);
    // tm_ssh.conf stays OpenNebula's; onevz's own TM is tm_ovz.
    assert.equal(await Deno.readTextFile(`${loc}/etc/tm_ssh/tm_ssh.conf`), ORIGINAL_TM);
    assert.equal(await lstat(`${loc}/etc/tm_ssh/tm_ssh.conf.orig`), undefined);
    const tm = await Deno.readTextFile(`${loc}/etc/tm_ovz/tm_ovz.conf`);
    assert.match(tm, new RegExp(`^CLONE=${loc}/lib/onevz/tm/tm-clone$`, "m"));
    assert.ok(await lstat(`${loc}/etc/tm_ovz/tm_ovzrc`));
    for (const k of ["LN", "MV", "DELETE", "MKSWAP", "MKIMAGE", "CONTEXT"]) {
      const m = new RegExp(`^${k}=(\\S+)$`, "m").exec(tm);
      assert.ok(m, k);
      const shim = await Deno.readTextFile(m[1]);
      assert.match(shim, /exec -a tm-\w+ .*\/var\/remotes\/bin\/onevz "\$@"/);
    }
    // Snippet: the hook's absolute path from SCRIPTS_REMOTE_DIR; onevz's own TM_MAD.
    assert.match(r.snippet, /command\s+= "\/vz\/one\/scripts\/hooks\/vzfirewall\.sh"/);
    assert.match(
      r.snippet,
      /name\s+= "tm_ovz",\n\s+executable = "one_tm",\n\s+arguments {2}= "tm_ovz\/tm_ovz\.conf"/,
    );
    assert.doesNotMatch(r.snippet, /"tm_ssh"/);
    assert.match(r.snippet, /name\s+= "im_ovz_fe",\n\s+executable = "one_im_sh"/);
    assert.deepEqual(r.manifest.backups, [], "nothing of the operator's was replaced");

    // Second run: nothing backed up, tm_ssh.conf still untouched.
    const r2 = await install({ paths, binary: { kind: "copy", from: fakeBin }, say: quiet });
    assert.deepEqual(r2.manifest.backups, []);
    assert.equal(await Deno.readTextFile(`${loc}/etc/tm_ssh/tm_ssh.conf`), ORIGINAL_TM);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("install: edited vmm_ssh_ovz.conf is kept, the new one goes to .new", async () => {
  const { dir, paths } = await oneLocation();
  try {
    const binary = { kind: "launcher", deno, main: `${root}main.ts` } as const;
    await install({ paths, binary, say: quiet });
    const conf = `${paths.etc}/vmm_ssh/vmm_ssh_ovz.conf`;
    await Deno.writeTextFile(conf, "# mine\nCPUUNITS=5000\n");
    const r = await install({ paths, binary, say: quiet });
    assert.equal(await Deno.readTextFile(conf), "# mine\nCPUUNITS=5000\n");
    assert.ok(await lstat(`${conf}.new`));
    assert.ok(r.notes.some((n) => n.includes(".new")));
    // Uninstall: edited file stays, tm_ssh.conf as it always was, tree gone.
    const { kept } = await uninstall(paths, quiet);
    assert.deepEqual(kept, [conf]);
    assert.equal(await Deno.readTextFile(`${paths.etc}/tm_ssh/tm_ssh.conf`), ORIGINAL_TM);
    assert.equal(await lstat(paths.remotes), undefined);
    assert.equal(await lstat(paths.tmDir), undefined);
    assert.equal(await lstat(paths.manifest), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("install --oned-conf: idempotent block, replaced on re-run, removed by uninstall", async () => {
  const { dir, loc, paths } = await oneLocation();
  try {
    const binary = { kind: "launcher", deno, main: `${root}main.ts` } as const;
    await install({ paths, binary, onedConf: true, say: quiet });
    const once = await Deno.readTextFile(paths.onedConf);
    assert.ok(once.startsWith(ORIGINAL_ONED));
    assert.equal(once.split(ONED_BEGIN).length, 2);
    assert.match(once, /# END onevz\n$/);
    await install({ paths, binary, onedConf: true, say: quiet });
    assert.equal(await Deno.readTextFile(paths.onedConf), once);
    await install({ paths, binary, onedConf: true, scriptsRemoteDir: "/srv/one", say: quiet });
    const changed = await Deno.readTextFile(paths.onedConf);
    assert.equal(changed.split(ONED_BEGIN).length, 2);
    assert.match(changed, /"\/srv\/one\/hooks\/vzfirewall\.sh"/);
    assert.doesNotMatch(changed, /\/vz\/one\/scripts\/hooks/);
    assert.equal((await readManifest(paths.manifest))?.onedConf, paths.onedConf);
    await uninstall(paths, quiet);
    assert.equal(await Deno.readTextFile(paths.onedConf), ORIGINAL_ONED);
    assert.deepEqual(await listTree(loc), [
      "etc/",
      "etc/oned.conf",
      "etc/tm_ssh/",
      "etc/tm_ssh/tm_ssh.conf",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("oned block helpers", () => {
  const s = 'IM_MAD = [ name = "im_ovz" ]\n';
  const a = withOnedBlock("X=1", s);
  assert.equal(withOnedBlock(a, s), a);
  assert.equal(withoutOnedBlock(a).trimEnd(), "X=1");
  const middle = withOnedBlock(a + "Y=2\n", "NEW\n");
  assert.ok(middle.indexOf("NEW") < middle.indexOf("Y=2"));
  const snip = onedSnippet(
    'VM_HOOK = [\n  name = "image" ]\n\n# b\nB = [\n  name = "other" ]\n',
    "/x/",
    'VM_HOOK = [ name = "image", on = "DONE" ]\n',
  );
  assert.equal(snip, '# b\nB = [\n  name = "other" ]\n');
});

Deno.test("install --system lays out /var/lib/one, /usr/lib/one and /etc/one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "onevz-system-" });
  try {
    const paths = installPaths({ system: true, root: dir });
    const binary = { kind: "launcher", deno, main: `${root}main.ts` } as const;
    await install({ paths, binary, say: quiet });
    for (
      const p of [
        "var/lib/one/remotes/bin/onevz",
        "var/lib/one/remotes/vmm/ovz/deploy",
        "usr/lib/one/remotes/vmm/ovz/poll",
        "usr/lib/one/onevz/tm/tm-clone",
        "etc/one/tm_ovz/tm_ovz.conf",
        "etc/one/vmm_ssh/vmm_ssh_ovz.conf",
      ]
    ) assert.ok(await lstat(`${dir}/${p}`), p);
    await uninstall(paths, quiet);
    assert.deepEqual(await listTree(dir), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("installed dev launcher runs onevz under the shim's action name", async () => {
  const { dir, paths } = await oneLocation();
  try {
    const binary = { kind: "launcher", deno, main: `${root}main.ts` } as const;
    await install({ paths, binary, say: quiet });
    const r = await new Deno.Command(`${paths.tmDir}/tm-mkimage`, {
      args: ["10", "ext3", "cn1:/vz/one/vm/1/images/disk.1"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(r.code, 1);
    const err = new TextDecoder().decode(r.stderr);
    assert.match(
      err,
      /ERROR MESSAGE --8<------\n.*MKIMAGE is not supported\nERROR MESSAGE ------>8--/,
    );
    const p = await new Deno.Command(`${paths.remotes}/im/ovz.d/probe`, {
      args: ["ovz", "cn1"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(p.code, 0, new TextDecoder().decode(p.stderr));
    assert.match(new TextDecoder().decode(p.stdout), /^HYPERVISOR=ovz$/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("vzfirewall hook: 'Nothing is changed.' (255) is success, other failures pass", async () => {
  const dir = await Deno.makeTempDir({ prefix: "onevz-fw-" });
  try {
    const hook = `${root}remotes/hooks/vzfirewall.sh`;
    const run = async (body: string) => {
      await Deno.writeTextFile(`${dir}/vzfirewall`, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
      await Deno.writeTextFile(`${dir}/sudo`, '#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n', {
        mode: 0o755,
      });
      const r = await new Deno.Command(hook, {
        args: ["-"],
        env: { PATH: `${dir}:/usr/bin:/bin` },
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: r.code, out: new TextDecoder().decode(r.stdout) };
    };
    assert.equal((await run('echo "Nothing is changed." >&2; exit 255')).code, 0);
    assert.equal((await run("echo applied; exit 0")).code, 0);
    assert.equal((await run("echo boom >&2; exit 255")).code, 255);
    assert.equal((await run("exit 42")).code, 1);
    assert.equal((await run("echo 'Test failed. Apply nothing.' >&2; exit 3")).code, 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// Nothing lost: from the trees operators have (tests/helpers/one_tree.ts), every file install
// replaces or edits is backed up under a name that overwrote nothing, listed in the manifest,
// and uninstall puts the exact bytes and modes back.

/** A stand-in for the compiled onevz (an ELF header; install copies it, nothing runs it). */
async function fakeElf(dir: string): Promise<string> {
  const p = `${dir}/onevz-elf`;
  await Deno.writeFile(p, new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0, 0]), {
    mode: 0o755,
  });
  return p;
}

async function tree(kind: "stock" | "seed") {
  const dir = await Deno.makeTempDir({ prefix: `onevz-keep-${kind}-` });
  const loc = `${dir}/one`;
  await (kind === "stock" ? stockOneLocation(loc) : seedState(loc));
  return { dir, loc, paths: installPaths({ oneLocation: loc }), binary: await fakeElf(dir) };
}

/** Every path of `before` that install changed or removed has its bytes in a backup. */
async function assertBackedUp(
  loc: string,
  before: Record<string, string>,
  after: Record<string, string>,
  manifestPath: string,
) {
  const m = await readManifest(manifestPath);
  if (!m) throw new Error(`no manifest at ${manifestPath}`);
  const changed = Object.keys(before).filter((p) =>
    before[p] !== after[p] && !before[p].startsWith("dir")
  );
  for (const p of changed) {
    const rec: BackupRecord | undefined = m.backups.find((b) => b.original === `${loc}/${p}`);
    assert.ok(rec, `${p} changed by install without a backup in the manifest`);
    assert.equal(rec.sha256, before[p].split(" ")[2], `${p}: the backup holds other bytes`);
    const kept = await snapshot(dirname(rec.backup));
    assert.equal(kept[rec.backup.slice(dirname(rec.backup).length + 1)], before[p], p);
  }
  // No backup took the name of a file that existed before install.
  for (const b of m.backups) {
    assert.ok(!(b.backup.slice(loc.length + 1) in before), `${b.backup} overwrote a file`);
  }
  return { manifest: m, changed };
}

Deno.test("keeps: stock 2.2.1 ONE_LOCATION: tm_ssh untouched, oned.conf backed up, uninstall restores every byte", async () => {
  const { dir, loc, paths, binary } = await tree("stock");
  try {
    const before = await snapshot(loc);
    await install({ paths, binary: { kind: "copy", from: binary }, onedConf: true, say: quiet });
    const after = await snapshot(loc);
    for (const p of Object.keys(before).filter((p) => p.startsWith("etc/tm_ssh/"))) {
      assert.equal(after[p], before[p], `${p} changed`);
    }
    assert.deepEqual(Object.keys(after).filter((p) => p.startsWith("etc/tm_ssh/")).sort(), [
      "etc/tm_ssh/tm_ssh.conf",
      "etc/tm_ssh/tm_sshrc",
    ]);
    const { changed } = await assertBackedUp(loc, before, after, paths.manifest);
    assert.deepEqual(changed, ["etc/oned.conf"]);
    const conf = await Deno.readTextFile(paths.onedConf);
    assert.match(conf, /name\s+= "tm_ovz"/);
    assert.equal(conf.match(/name\s+= "tm_ssh"/g)?.length, 1, "tm_ssh stays defined once");
    await uninstall(paths, quiet);
    assert.deepEqual(await snapshot(loc), before);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("keeps: the seed's state after openvz4opennebula's steps: its files backed up, uninstall restores every byte", async () => {
  const { dir, loc, paths, binary } = await tree("seed");
  try {
    const before = await snapshot(loc);
    const r = await install({
      paths,
      binary: { kind: "copy", from: binary },
      onedConf: true,
      say: quiet,
    });
    const after = await snapshot(loc);
    // tm_ssh: the tarball's file and the operator's .orig stay exactly as they were.
    for (const p of ["etc/tm_ssh/tm_ssh.conf", "etc/tm_ssh/tm_ssh.conf.orig"]) {
      assert.equal(after[p], before[p], p);
    }
    const { changed } = await assertBackedUp(loc, before, after, paths.manifest);
    // Replaced: the tarball's actions and hook (both trees), oned.conf; moved aside: its
    // probes, which run_probes would run beside onevz's.
    for (
      const p of [
        "var/remotes/vmm/ovz/deploy",
        "lib/remotes/vmm/ovz/poll",
        "var/remotes/hooks/vzfirewall.sh",
        "var/remotes/im/ovz.d/ovz.sh",
        "lib/remotes/im/ovz.d/cpu.sh",
        "etc/oned.conf",
      ]
    ) assert.ok(changed.includes(p), `${p} not among the changed files: ${changed}`);
    assert.deepEqual(
      Object.keys(after).filter((p) => p.startsWith("var/remotes/im/ovz.d/")),
      ["var/remotes/im/ovz.d/probe"],
    );
    // The tarball's defaults file is the operator's: left, onevz's beside it.
    assert.equal(after["etc/vmm_ssh/vmm_ssh_ovz.conf"], before["etc/vmm_ssh/vmm_ssh_ovz.conf"]);
    assert.ok(after["etc/vmm_ssh/vmm_ssh_ovz.conf.new"]);
    // oned.conf: the seed's own im_ovz/vmm_ovz/hook stay; the block adds tm_ovz and agentless.
    const conf = await Deno.readTextFile(paths.onedConf);
    assert.equal(conf.match(/name\s+= "im_ovz"/g)?.length, 1);
    assert.match(r.snippet, /"tm_ovz"/);
    assert.doesNotMatch(r.snippet, /name\s+= "vzfirewall"/);
    await uninstall(paths, quiet);
    assert.deepEqual(await snapshot(loc), before);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("keeps: a second install over the first (stock and seed) adds no backup; uninstall restores every byte", async () => {
  for (const kind of ["stock", "seed"] as const) {
    const { dir, loc, paths, binary } = await tree(kind);
    try {
      const before = await snapshot(loc);
      const b = { kind: "copy", from: binary } as const;
      const first = await install({ paths, binary: b, onedConf: true, say: quiet });
      const second = await install({
        paths,
        binary: b,
        onedConf: true,
        scriptsRemoteDir: "/srv/elsewhere",
        say: quiet,
      });
      assert.deepEqual(second.manifest.backups, first.manifest.backups, kind);
      if (kind === "stock") {
        // (The seed's oned.conf has its own vzfirewall hook, which install leaves alone.)
        assert.match(await Deno.readTextFile(paths.onedConf), /"\/srv\/elsewhere\/hooks\//);
      }
      await uninstall(paths, quiet);
      assert.deepEqual(await snapshot(loc), before, kind);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("keeps: an onevz file edited between installs is backed up too; uninstall restores the original and names the edit", async () => {
  const { dir, loc, paths, binary } = await tree("seed");
  try {
    const before = await snapshot(loc);
    const b = { kind: "copy", from: binary } as const;
    await install({ paths, binary: b, say: quiet });
    const shim = `${paths.remotes}/vmm/ovz/poll`;
    await Deno.writeTextFile(shim, "#!/bin/bash\n# my local change\n", { append: true });
    const edited = await Deno.readTextFile(shim);
    const r = await install({ paths, binary: b, say: quiet });
    const recs = r.manifest.backups.filter((x) => x.original === shim);
    assert.equal(recs.length, 2, "the tarball's poll, then the operator's edit of onevz's");
    assert.equal(await Deno.readTextFile(recs[1].backup), edited);
    const said: string[] = [];
    await uninstall(paths, (l) => said.push(l));
    const now = await snapshot(loc);
    assert.equal(now["var/remotes/vmm/ovz/poll"], before["var/remotes/vmm/ovz/poll"]);
    assert.equal(await Deno.readTextFile(recs[1].backup), edited, "the edit is not lost");
    assert.ok(said.some((l) => l.includes(recs[1].backup)), said.join("\n"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * What onevz 0.1.0 (before tm_ovz) did to tm_ssh.conf: pointed it at onevz's tm entries,
 * after renaming the original to tm_ssh.conf.orig when that name was free (else without a
 * backup), and listed both in its manifest (no `change`, no `sha256`).
 */
async function earlierOnevzEditedTmSsh(paths: ReturnType<typeof installPaths>) {
  const tm = paths.tmSshConf;
  const m = JSON.parse(await Deno.readTextFile(paths.manifest));
  m.backups = [];
  if (!(await lstat(`${tm}.orig`))) {
    await Deno.rename(tm, `${tm}.orig`);
    m.backups.push({ original: tm, backup: `${tm}.orig` });
  }
  const text =
    "# Transfer manager commands for OpenVZ nodes (onevz), installed by `onevz install`.\n" +
    ["CLONE", "LN", "MKSWAP", "MKIMAGE", "DELETE", "MV", "CONTEXT"]
      .map((k) => `${k}=${paths.tmDir}/tm-${k.toLowerCase()}`).join("\n") +
    "\n";
  await Deno.writeTextFile(tm, text);
  m.files.push({ path: tm, kind: "file", sha256: sha256(text) });
  m.version = "0.0.9";
  await Deno.writeTextFile(paths.manifest, JSON.stringify(m));
}

Deno.test("upgrade from an onevz that pointed tm_ssh at itself puts OpenNebula's tm_ssh.conf back", async () => {
  // Stock: the original was kept as .orig by that onevz: moved back.
  const s = await tree("stock");
  try {
    const b = { kind: "copy", from: s.binary } as const;
    await install({ paths: s.paths, binary: b, say: quiet });
    await earlierOnevzEditedTmSsh(s.paths);
    const r = await install({ paths: s.paths, binary: b, say: quiet });
    assert.equal(await Deno.readTextFile(s.paths.tmSshConf), STOCK_TM_SSH_TEXT);
    assert.equal(await lstat(`${s.paths.tmSshConf}.orig`), undefined);
    assert.ok(r.notes.some((n) => /tm_ssh is OpenNebula's again/.test(n)), r.notes.join("\n"));
    assert.ok(r.notes.some((n) => /registered with tm_ovz/.test(n)));
    assert.ok(!r.manifest.files.some((f) => f.path === s.paths.tmSshConf));
    await uninstall(s.paths, quiet);
    assert.equal(await Deno.readTextFile(s.paths.tmSshConf), STOCK_TM_SSH_TEXT);
  } finally {
    await Deno.remove(s.dir, { recursive: true });
  }
  // Seed: .orig was the operator's (stock) and that onevz lost the tarball's file: tm_ssh.conf
  // gets .orig's bytes, .orig stays.
  const t = await tree("seed");
  try {
    const b = { kind: "copy", from: t.binary } as const;
    await install({ paths: t.paths, binary: b, say: quiet });
    await earlierOnevzEditedTmSsh(t.paths);
    await install({ paths: t.paths, binary: b, say: quiet });
    assert.equal(await Deno.readTextFile(t.paths.tmSshConf), STOCK_TM_SSH_TEXT);
    assert.equal(await Deno.readTextFile(`${t.paths.tmSshConf}.orig`), STOCK_TM_SSH_TEXT);
  } finally {
    await Deno.remove(t.dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// The command line: --sudoers, the development launcher, --help, the oned.conf snippet.

async function cli(args: string[], env: Record<string, string> = {}) {
  const r = await new Deno.Command(deno, {
    args: ["run", "-A", "--quiet", `${root}main.ts`, ...args],
    env: { ONEVZ_DEV_LAUNCHER: "", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

Deno.test("install --sudoers with ONE_LOCATION set prints only the rules, changes nothing, passes visudo -cf", async () => {
  const { dir, loc } = await tree("seed");
  try {
    const before = await snapshot(dir);
    const r = await cli(["install", "--sudoers"], { ONE_LOCATION: loc });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await snapshot(dir), before, "nothing on disk changed");
    assert.doesNotMatch(r.stdout, /installed|remotes|oned\.conf|^note:/m);
    const file = await Deno.makeTempFile({ prefix: "onevz-sudoers-" });
    await Deno.writeTextFile(file, r.stdout);
    const v = await new Deno.Command("visudo", { args: ["-cf", file], stdout: "piped" }).output();
    await Deno.remove(file);
    assert.equal(v.code, 0, new TextDecoder().decode(v.stdout));
    assert.match(r.stdout, /^%cloud ALL=\(root\) NOPASSWD: \/usr\/sbin\/vzctl, /m);
    // Installed twice (two names in sudoers.d) the rules still parse: no alias to redefine.
    const twice = await Deno.makeTempFile({ prefix: "onevz-sudoers-" });
    await Deno.writeTextFile(twice, r.stdout + r.stdout);
    const v2 = await new Deno.Command("visudo", { args: ["-cf", twice], stdout: "piped" }).output();
    await Deno.remove(twice);
    assert.equal(v2.code, 0, new TextDecoder().decode(v2.stdout));
    assert.match(r.stdout, /ROOT-EQUIVALENT/);
    const g = await cli(["install", "--sudoers", "--group", "ovzadm"], { ONE_LOCATION: loc });
    assert.match(g.stdout, /^%ovzadm ALL=\(root\) NOPASSWD:/m);
    assert.doesNotMatch(g.stdout, /%cloud/);
    for (const bad of ["a b", "%wheel", "x,ALL", "ALL!"]) {
      const b = await cli(["install", "--sudoers", "--group", bad]);
      assert.equal(b.code, 2, bad);
      assert.equal(b.stdout, "");
    }
    const mixed = await cli(["install", "--sudoers", "--oned-conf"], { ONE_LOCATION: loc });
    assert.equal(mixed.code, 2);
    assert.match(mixed.stderr, /only prints the sudo rules and changes nothing/);
    assert.deepEqual(await snapshot(dir), before);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("install from a source checkout refuses the development launcher unless asked; a script as --binary too", async () => {
  const { dir, loc, paths } = await tree("stock");
  try {
    const before = await snapshot(loc);
    const r = await cli(["install", "--one-location", loc]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /source checkout.*no node can run it.*README §10.*--dev-launcher/);
    const script = `${dir}/onevz-script`;
    await Deno.writeTextFile(script, `#!/bin/sh\nexec deno run -A main.ts "$@"\n`, { mode: 0o755 });
    const s = await cli(["install", "--one-location", loc, "--binary", script]);
    assert.equal(s.code, 2);
    assert.match(s.stderr, /is a script, not the compiled onevz/);
    assert.deepEqual(await snapshot(loc), before, "nothing written");
    const ok = await cli(["install", "--one-location", loc, "--dev-launcher"]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /executable {3}DEVELOPMENT LAUNCHER.*no node can run it/);
    assert.match(await Deno.readTextFile(`${paths.remotes}/bin/onevz`), /development launcher/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("install: a merged block is not printed again; a changed one shows only the difference", async () => {
  const { dir, loc, paths } = await tree("stock");
  try {
    const first = await cli(["install", "--one-location", loc, "--dev-launcher", "--oned-conf"]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /merged the onevz block into/);
    const again = await cli(["install", "--one-location", loc, "--dev-launcher"]);
    assert.match(again.stdout, /already holds this version's onevz block: nothing to add/);
    assert.doesNotMatch(again.stdout, /IM_MAD|VM_MAD|TM_MAD/);
    const moved = await cli([
      "install",
      "--one-location",
      loc,
      "--dev-launcher",
      "--scripts-remote-dir",
      "/srv/scripts",
    ]);
    assert.match(moved.stdout, /differs from this version's \(re-run with --oned-conf\)/);
    const diff = moved.stdout.split("\n").filter((l) => /^ {2}[-+] /.test(l));
    assert.deepEqual(diff, [
      '  -     command   = "/var/tmp/one/hooks/vzfirewall.sh",',
      '  +     command   = "/srv/scripts/hooks/vzfirewall.sh",',
    ]);
    assert.doesNotMatch(moved.stdout, /IM_MAD/);
    await uninstall(paths, quiet);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("install: without SCRIPTS_REMOTE_DIR (or oned.conf) it says which hook path it assumed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "onevz-srd-" });
  try {
    const r = await cli(["install", "--one-location", `${dir}/one`, "--dev-launcher"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^note: .*oned\.conf does not exist: the vzfirewall hook's path assumes SCRIPTS_REMOTE_DIR=\/var\/tmp\/one; re-run with --scripts-remote-dir DIR/m,
    );
    assert.match(r.stdout, /"\/var\/tmp\/one\/hooks\/vzfirewall\.sh"/);
    const given = await cli([
      "install",
      "--one-location",
      `${dir}/one`,
      "--dev-launcher",
      "--scripts-remote-dir",
      "/vz/one/scripts",
    ]);
    assert.doesNotMatch(given.stdout, /assumes SCRIPTS_REMOTE_DIR/);
    const noConf = await cli([
      "install",
      "--one-location",
      `${dir}/one`,
      "--oned-conf",
      "--dev-launcher",
    ]);
    assert.equal(noConf.code, 1);
    assert.match(noConf.stderr, /does not exist, so --oned-conf has nothing to merge into/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--help: every option of every command says what it does", async () => {
  for (const c of COMMANDS) {
    if (!c.options) continue;
    const r = await cli([c.name, "--help"]);
    assert.equal(r.code, 0);
    const lines = r.stdout.split("\n");
    const start = lines.indexOf("Options:");
    assert.ok(start > 0, c.name);
    const opts = lines.slice(start + 1).filter((l) => l.startsWith("  --"));
    assert.equal(opts.length, Object.keys(c.options).length, c.name);
    for (const l of opts) assert.match(l, /^ {2}--\S+(?: <\w+>)? {2,}\S.{8,}/, `${c.name}: ${l}`);
  }
});

Deno.test("one_tm after install: a KVM host's tm_ssh runs OpenNebula's scripts, an OpenVZ host's tm_ovz onevz's", async () => {
  const { dir, loc, paths } = await tree("stock");
  try {
    await install({
      paths,
      binary: { kind: "launcher", deno, main: `${root}main.ts` },
      onedConf: true,
      say: quiet,
    });
    // The stand-in stock scripts say who ran them.
    const mkswap = `${loc}/lib/tm_commands/ssh/tm_mkswap.sh`;
    await Deno.writeTextFile(mkswap, `#!/bin/sh\necho "stock tm_mkswap.sh $*"\n`, { mode: 0o755 });
    const commands = `${loc}/lib/tm_commands`;
    const ssh = parseTmConf(await Deno.readTextFile(paths.tmSshConf), commands);
    const ovz = parseTmConf(await Deno.readTextFile(paths.tmOvzConf), commands);
    const kvm = await oneTm(3, "MKSWAP 64 kvm1:/var/lib/one/3/images/disk.1\n", ssh);
    assert.equal(kvm.reply, "TRANSFER SUCCESS 3 -");
    assert.match(kvm.steps[0].out.stdout, /^stock tm_mkswap\.sh 64 kvm1:/);
    const vz = await oneTm(4, "MKSWAP 64 cn1:/vz/one/vm/4/images/disk.1\n", ovz);
    assert.equal(vz.reply, "TRANSFER SUCCESS 4 -", vz.steps[0]?.out.stderr);
    assert.equal(vz.steps[0].command.split(" ")[0], `${paths.tmDir}/tm-mkswap`);
    // oned.conf names both TMs: tm_ssh as shipped, tm_ovz for OpenVZ hosts.
    const conf = parseOnedConf(await Deno.readTextFile(paths.onedConf));
    assert.equal(namedVector(conf, "TM_MAD", "tm_ssh")?.arguments, "tm_ssh/tm_ssh.conf");
    assert.equal(namedVector(conf, "TM_MAD", "tm_ovz")?.arguments, "tm_ovz/tm_ovz.conf");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("install --sudoers --group G: the same rules for %G; a name that is no group is refused", async () => {
  const cloud = await cli(["install", "--sudoers"]);
  const other = await cli(["install", "--sudoers", "--group", "onevzt-cloud"]);
  assert.equal(other.code, 0, other.stderr);
  assert.equal(other.stdout, cloud.stdout.replaceAll("%cloud", "%onevzt-cloud"));
  assert.match(other.stdout, /^%onevzt-cloud ALL=\(root\) NOPASSWD: /m);
  const bad = await cli(["install", "--sudoers", "--group", "cloud ALL=(ALL) NOPASSWD: ALL\n%x"]);
  assert.equal(bad.code, 2);
  assert.equal(bad.stdout, "");
  assert.match(bad.stderr, /--group.* is not a group name/);
});
