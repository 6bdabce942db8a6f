/**
 * Files a template ships are never read or written as root unless they are regular files
 * (issue 11 §5). An OS template whose rc.local was a FIFO hung deploy while it held the
 * container's lock; as /dev/zero it grew deploy to gigabytes; as a block device it copied host
 * disk bytes into the container. Here every path deploy touches in the private area — rc.local
 * (the init.sh hook), the veth ifcfg file, the context directory /mnt and the files deploy puts
 * in it (context.sh, a FILES entry) — is shipped as a FIFO, a character device (/dev/zero's
 * numbers), a block device node, a symbolic link out of the container and a directory, and
 * deploy must fail at once with the path and what it is, leave nothing behind, and hang on
 * nothing. Locally (deploy as root, open(O_NOFOLLOW|O_NONBLOCK)) and over the ssh test bed as
 * the unprivileged driver user with only the printed sudo rules (find, dd iflag=nofollow,
 * nonblock), with the OS image and context files placed by the real tm-clone and tm-context.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { makeSimNode, makeTemplateTarball, REPO, run, type SimNode } from "../helpers/simnode.ts";
import { figure } from "./figures.ts";
import { canRunPrivilegeTests, leastPrivilegeBed, must } from "./least_privilege.ts";
import * as one from "../../fixtures/oned/driver.ts";
import { bedSite, DENO, installDevRemotes } from "../testbed/mod.ts";

const VPS145 = await Deno.readTextFile(`${REPO}/fixtures/templates/vps145.xml`);
const VETH = await Deno.readTextFile(`${REPO}/fixtures/templates/veth.xml`);

type Kind = "fifo" | "char-device" | "block-device" | "symlink" | "directory";
const KINDS: Kind[] = ["fifo", "char-device", "block-device", "symlink", "directory"];
const SAYS: Record<Kind, RegExp> = {
  fifo: /is a FIFO \(named pipe\)/,
  "char-device": /is a character device/,
  "block-device": /is a block device/,
  symlink: /is a symbolic link/,
  directory: /is a directory/,
};

/** A path deploy touches, and the template that makes it touch it. */
interface Target {
  path: string;
  vm: "vps145" | "veth";
  /** The context directory itself: a directory there is the normal case. */
  isDir?: boolean;
}
const TARGETS: Target[] = [
  { path: "etc/rc.d/rc.local", vm: "vps145" },
  { path: "etc/sysconfig/network-scripts/ifcfg-eth0", vm: "veth" },
  { path: "mnt/context.sh", vm: "veth" },
  { path: "mnt/init.sh", vm: "vps145" },
  { path: "mnt", vm: "vps145", isDir: true },
];

/** A real OS template (as makeTemplateTarball) with `kind` at `rel`, as .tar.bz2 bytes. */
async function hostileTemplate(rel: string, kind: Kind, outside: string): Promise<Uint8Array> {
  const d = await Deno.makeTempDir({ prefix: "onevz-special-" });
  try {
    const t = `${d}/t`;
    await Deno.mkdir(t);
    const r0 = await run("tar", ["-xjf", "-", "-C", t], {
      stdin: await makeTemplateTarball("bz2"),
    });
    assert.equal(r0.code, 0, r0.stderr);
    const p = `${t}/${rel}`;
    await Deno.mkdir(join(p, ".."), { recursive: true });
    await Deno.remove(p, { recursive: true }).catch(() => {});
    if (kind === "fifo") await must("mkfifo", [p]);
    if (kind === "char-device") await must("mknod", [p, "c", "1", "5"]); // /dev/zero
    if (kind === "block-device") await must("mknod", [p, "b", "7", "0"]); // a loop device
    if (kind === "symlink") await Deno.symlink(rel === "mnt" ? outside : `${outside}/passwd`, p);
    if (kind === "directory") await Deno.mkdir(p);
    const r = await run("tar", ["--numeric-owner", "-cjf", `${d}/t.tar.bz2`, "-C", t, "."]);
    assert.equal(r.code, 0, r.stderr);
    return await Deno.readFile(`${d}/t.tar.bz2`);
  } finally {
    await Deno.remove(d, { recursive: true });
  }
}

/** Path → type, mode and (regular files only, never a FIFO or device) sha-256. */
async function state(dir: string, skip: string[] = []): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (skip.some((s) => p === s)) continue;
      const st = await Deno.lstat(p);
      const mode = ((st.mode ?? 0) & 0o7777).toString(8);
      if (st.isDirectory) {
        out.set(p, `d ${mode}`);
        await walk(p);
      } else if (st.isFile) {
        const sum = new Uint8Array(await crypto.subtle.digest("SHA-256", await Deno.readFile(p)));
        out.set(p, `f ${mode} ${Array.from(sum, (b) => b.toString(16).padStart(2, "0")).join("")}`);
      } else out.set(p, `${st.isSymlink ? "l" : "special"} ${mode}`);
    }
  };
  await walk(dir);
  return out;
}

function diff(a: Map<string, string>, b: Map<string, string>): string[] {
  const d: string[] = [];
  for (const [k, v] of a) if (b.get(k) !== v) d.push(`${b.has(k) ? "~" : "-"} ${k}`);
  for (const k of b.keys()) if (!a.has(k)) d.push(`+ ${k}`);
  return d;
}

/** Run a command, killing it (and failing the test) if it has not finished after `ms`. */
async function guarded(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; stdin?: string },
  ms = 90_000,
) {
  const child = new Deno.Command(cmd, {
    args,
    env: opts.env,
    stdin: opts.stdin !== undefined ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin)).catch(() => {});
    await w.close().catch(() => {});
  }
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, ms);
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr), hung };
}

/** What the TM leaves for each VM on a local simulated node (as deploy.test.ts's prolog). */
async function localProlog(node: SimNode, vm: Target["vm"], image: Uint8Array) {
  const vid = vm === "vps145" ? 45 : 88;
  const images = `${node.vmDir}${vid}/images`;
  await Deno.mkdir(images, { recursive: true });
  await Deno.writeFile(`${images}/disk.0`, image);
  if (vm === "vps145") {
    await Deno.mkdir(`${images}/disk.2`);
    await Deno.writeTextFile(`${images}/disk.2/context.sh`, 'HOSTNAME="vps145.example.org"\n');
    await Deno.writeTextFile(`${images}/disk.2/init.sh`, "echo init\n");
    await Deno.writeTextFile(`${images}/disk.2/id_rsa.pub`, "ssh-rsa AAAA test\n");
  }
  return { vid, images, xml: vm === "vps145" ? VPS145 : VETH };
}

Deno.test("special files: deploy refuses FIFOs, devices, links and directories at every private-area path (local)", async () => {
  const node = await makeSimNode({ flavour: "vswap" });
  const outside = await Deno.makeTempDir({ prefix: "onevz-outside-" });
  let tried = 0;
  try {
    await Deno.writeTextFile(`${outside}/passwd`, "precious\n");
    for (const target of TARGETS) {
      for (const kind of KINDS) {
        if (target.isDir && kind === "directory") continue;
        const image = await hostileTemplate(target.path, kind, outside);
        const { vid, images, xml } = await localProlog(node, target.vm, image);
        const before = await state(node.dir, [join(node.root, "proc"), join(node.root, "sim")]);
        const r = await guarded(DENO, [
          "run",
          "-A",
          "--quiet",
          `${REPO}/main.ts`,
          "deploy",
          `${images}/deployment.0`,
        ], { env: node.env, stdin: xml });
        const what = `${kind} at ${target.path}`;
        assert.equal(r.hung, false, `${what}: deploy hung`);
        assert.equal(r.code, 1, `${what}: ${r.stdout}${r.stderr}`);
        assert.ok(r.stderr.includes(`/private/${target.path}`), `${what}: ${r.stderr}`);
        assert.match(r.stderr, SAYS[kind], what);
        assert.doesNotMatch(r.stderr, /internal error/, what);
        const after = await state(node.dir, [join(node.root, "proc"), join(node.root, "sim")]);
        assert.deepEqual(diff(before, after), [], `${what}: the node changed`);
        assert.deepEqual([...Deno.readDirSync(outside)].map((e) => e.name), ["passwd"]);
        assert.equal(await Deno.readTextFile(`${outside}/passwd`), "precious\n");
        await Deno.remove(`${node.vmDir}${vid}`, { recursive: true });
        tried++;
      }
    }
    figure("special-files", "private-area(deploy, local)", tried);
  } finally {
    await node.cleanup();
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test({
  name:
    "special files: the same over ssh as the driver user with the printed sudo rules, images from tm-clone and tm-context",
  ignore: !canRunPrivilegeTests,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const cleanups: (() => Promise<unknown>)[] = [];
    let tried = 0;
    try {
      // Logins to cn1 as the bed's driver account, with only the printed rules.
      const bed = await leastPrivilegeBed({ nodes: [{ name: "cn1", flavour: "vswap" }] });
      cleanups.push(() => bed.stop());
      await installDevRemotes(bed, "cn1");
      const { uid, gid, sshConfig: cfg } = bed.driver;
      const fs = bed.nodes.cn1.fsDir;
      await must("chown", [`${uid}:${gid}`, `${fs}/vm`]);
      const site = { ...bedSite(bed), ssh: `ssh -F ${one.sq(cfg)}` };
      // The front-end: the images, oned's context.sh and an allowed context directory.
      const fe = await Deno.makeTempDir({ prefix: "onevz-special-fe-" });
      cleanups.push(() => Deno.remove(fe, { recursive: true }));
      await Deno.mkdir(`${fe}/share/context`, { recursive: true });
      await Deno.writeTextFile(`${fe}/share/context/init.sh`, "echo init\n");
      await Deno.writeTextFile(`${fe}/share/context/id_rsa.pub`, "ssh-rsa AAAA test\n");
      const tmEnv = {
        ...bed.env,
        ONEVZ_SSH_CONFIG: cfg,
        ONEVZ_VM_DIR: bed.vmDir,
        ONEVZ_FE_NAMES: "fe",
        ONE_LOCATION: fe,
        TMPDIR: fe,
      };
      const tm = (action: string, args: string[]) =>
        guarded(DENO, ["run", "-A", "--quiet", `${REPO}/main.ts`, action, ...args], {
          env: tmEnv,
        });
      const outside = `${fs}/outside`; // what cn1 sees as /srv/onevz-node/outside
      await Deno.mkdir(outside);
      await Deno.writeTextFile(`${outside}/passwd`, "precious\n");
      const nodeOutside = `${bed.nodeRoot}/outside`;
      let n = 0;
      for (const target of TARGETS) {
        for (const kind of KINDS) {
          if (target.isDir && kind === "directory") continue;
          const vid = (target.vm === "vps145" ? 45 : 88) + 100 * n++;
          const xml = (target.vm === "vps145" ? VPS145 : VETH)
            .replace(/<VMID><!\[CDATA\[\d+\]\]><\/VMID>/, `<VMID><![CDATA[${vid}]]></VMID>`);
          const image = `${fe}/image-${vid}`;
          await Deno.writeFile(image, await hostileTemplate(target.path, kind, nodeOutside));
          const R = `${bed.vmDir}/${vid}/images`;
          const c = await tm("tm-clone", [`fe:${image}`, `cn1:${R}/disk.0`]);
          assert.equal(c.code, 0, c.stderr);
          if (target.vm === "vps145") {
            await Deno.mkdir(`${fe}/var/${vid}`, { recursive: true });
            await Deno.writeTextFile(`${fe}/var/${vid}/context.sh`, 'HOSTNAME="vps145"\n');
            const x = await tm("tm-context", [
              `${fe}/var/${vid}/context.sh`,
              `${fe}/share/context/init.sh`,
              `${fe}/share/context/id_rsa.pub`,
              `cn1:${R}/disk.2`,
            ]);
            assert.equal(x.code, 0, x.stderr);
          }
          const skip = [join(fs, "sim", "proc"), join(fs, "sim", "sim"), join(fs, "scripts")];
          const before = await state(fs, skip);
          const what = `${kind} at ${target.path}`;
          let timer: ReturnType<typeof setTimeout> | undefined;
          const r = await Promise.race([
            one.vmmSsh(site, "cn1", "deploy", [`${R}/deployment.0`], xml, { vid }),
            new Promise<never>((_, reject) => {
              timer = setTimeout(() => reject(new Error(`${what}: deploy hung`)), 90_000);
            }),
          ]).finally(() => clearTimeout(timer));
          assert.equal(r.result, "FAILURE", `${what}: ${r.reply}`);
          assert.ok(r.stderr.includes(`/private/${target.path}`), `${what}: ${r.stderr}`);
          assert.match(r.stderr, SAYS[kind], what);
          assert.deepEqual(diff(before, await state(fs, skip)), [], `${what}: the node changed`);
          assert.deepEqual([...Deno.readDirSync(outside)].map((e) => e.name), ["passwd"]);
          assert.equal(await Deno.readTextFile(`${outside}/passwd`), "precious\n");
          tried++;
        }
      }
      figure("special-files", "private-area(deploy over ssh, sudo)", tried);
    } finally {
      for (const c of cleanups.reverse()) await c().catch(() => {});
    }
  },
});
