// onevz install / uninstall into an empty temporary $ONE_LOCATION (and a "system" root).
import assert from "node:assert/strict";
import { install, readManifest } from "../../src/admin/install.ts";
import { uninstall } from "../../src/admin/uninstall.ts";
import {
  installPaths,
  ONED_BEGIN,
  onedSnippet,
  VMM_ACTIONS,
  withOnedBlock,
  withoutOnedBlock,
} from "../../src/admin/layout.ts";

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

Deno.test("install: tree shape, executable once, shims, symlinked defaults, tm_ssh backup", async () => {
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
    // tm_ssh.conf: ours, the original kept once.
    assert.equal(await Deno.readTextFile(`${loc}/etc/tm_ssh/tm_ssh.conf.orig`), ORIGINAL_TM);
    const tm = await Deno.readTextFile(`${loc}/etc/tm_ssh/tm_ssh.conf`);
    assert.match(tm, new RegExp(`^CLONE=${loc}/lib/onevz/tm/tm-clone$`, "m"));
    for (const k of ["LN", "MV", "DELETE", "MKSWAP", "MKIMAGE", "CONTEXT"]) {
      const m = new RegExp(`^${k}=(\\S+)$`, "m").exec(tm);
      assert.ok(m, k);
      const shim = await Deno.readTextFile(m[1]);
      assert.match(shim, /exec -a tm-\w+ .*\/var\/remotes\/bin\/onevz "\$@"/);
    }
    // Snippet: the hook's absolute path from SCRIPTS_REMOTE_DIR; tm_ssh already defined.
    assert.match(r.snippet, /command\s+= "\/vz\/one\/scripts\/hooks\/vzfirewall\.sh"/);
    assert.doesNotMatch(r.snippet, /TM_MAD/);
    assert.match(r.snippet, /name\s+= "im_ovz_fe",\n\s+executable = "one_im_sh"/);

    // Second run: nothing new backed up, the original backup untouched.
    const r2 = await install({ paths, binary: { kind: "copy", from: fakeBin }, say: quiet });
    assert.equal(r2.manifest.backups.length, 1);
    assert.equal(await Deno.readTextFile(`${loc}/etc/tm_ssh/tm_ssh.conf.orig`), ORIGINAL_TM);
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
    // Uninstall: edited file stays, tm_ssh.conf restored, tree gone.
    const { kept } = await uninstall(paths, quiet);
    assert.deepEqual(kept, [conf]);
    assert.equal(await Deno.readTextFile(`${paths.etc}/tm_ssh/tm_ssh.conf`), ORIGINAL_TM);
    assert.equal(await lstat(`${paths.etc}/tm_ssh/tm_ssh.conf.orig`), undefined);
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
        "etc/one/tm_ssh/tm_ssh.conf",
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

Deno.test("install --sudoers --group G: the same rules for %G; a name that is no group is refused", async () => {
  const sudoers = async (...args: string[]) => {
    const r = await new Deno.Command(deno, {
      args: ["run", "-A", "--quiet", `${root}main.ts`, "install", "--sudoers", ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return {
      code: r.code,
      out: new TextDecoder().decode(r.stdout),
      err: new TextDecoder().decode(r.stderr),
    };
  };
  const cloud = await sudoers();
  const other = await sudoers("--group", "onevzt-cloud");
  assert.equal(other.code, 0, other.err);
  assert.equal(other.out, cloud.out.replaceAll("%cloud", "%onevzt-cloud"));
  assert.match(other.out, /^%onevzt-cloud ALL=\(root\) NOPASSWD: /m);
  const bad = await sudoers("--group", "cloud ALL=(ALL) NOPASSWD: ALL\n%x");
  assert.equal(bad.code, 2);
  assert.equal(bad.out, "");
  assert.match(bad.err, /--group .* is not a group name/);
});
