/**
 * The image path from the front-end to `vzctl create` is tamper-proof (issue 11 §4), over the
 * ssh test bed: the TM (tm-clone, tm-delete) runs on the front-end and reaches cn1 as the
 * unprivileged driver user (the bed's own account, standing in for oneadmin) with only the sudo
 * rules `install --sudoers` prints; deploy runs on cn1 under one_vmm_ssh as that user.
 *   1. A hostile local account on the node (an unprivileged user of the bed's own) tries to
 *      rewrite the cache entry, R/disk.N, the OS template deploy placed, or to add a template
 *      to $TEMPLATE/cache: every attempt fails and the next containers never carry its file.
 *   2. A cache entry changed in place (root stands in for the entry's owner, or for an older
 *      onevz that left entries world-writable) is checked again and never used as it is.
 *   3. A tenant's image named like the administrator's cached template, and two tenants'
 *      images of one NAME, deploy side by side: the administrator's own `vzctl create` still
 *      unpacks the administrator's template, and each container gets its own image.
 *   4. Both caches stay within the defaults file's bounds: least recently used first, by age,
 *      never an entry a VM directory links, never the administrator's own templates.
 *   5. Clones racing each other and the pruning all place the right bytes.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import * as one from "../../fixtures/oned/driver.ts";
import { makeTemplateTarball, REPO, run } from "../helpers/simnode.ts";
import { bedSite, DENO, installDevRemotes } from "../testbed/mod.ts";
import { canRunPrivilegeTests, leastPrivilegeBed, must } from "./least_privilege.ts";
import { figure } from "./figures.ts";

const dec = new TextDecoder();

function vmXml(vid: number, image: string, source: string): string {
  const c = (v: string | number) => `<![CDATA[${v}]]>`;
  return `<TEMPLATE><VMID>${c(vid)}</VMID><NAME>${c(`vm${vid}`)}</NAME><MEMORY>${c(256)}</MEMORY>` +
    `<DISK><DISK_ID>${c(0)}</DISK_ID><IMAGE>${c(image)}</IMAGE><SOURCE>${c(source)}</SOURCE>` +
    `</DISK><NIC><IP>${c(`10.9.${Math.floor(vid / 250)}.${(vid % 250) + 1}`)}</IP></NIC>` +
    `</TEMPLATE>`;
}

/** An OS template tarball (gz, or plain tar) with an extra file `etc/<name>` holding `text`. */
async function templateWith(name: string | undefined, compress: "gz" | "none" = "gz") {
  const d = await Deno.makeTempDir({ prefix: "onevz-img-" });
  try {
    await Deno.mkdir(`${d}/t`);
    const r0 = await run("tar", ["-xjf", "-", "-C", `${d}/t`], {
      stdin: await makeTemplateTarball("bz2"),
    });
    assert.equal(r0.code, 0, r0.stderr);
    if (name) await Deno.writeTextFile(`${d}/t/etc/${name}`, `${name}\n`);
    const flag = compress === "gz" ? ["-z"] : [];
    const r = await run("tar", [
      "--numeric-owner",
      "-c",
      ...flag,
      "-f",
      `${d}/x`,
      "-C",
      `${d}/t`,
      ".",
    ]);
    assert.equal(r.code, 0, r.stderr);
    return await Deno.readFile(`${d}/x`);
  } finally {
    await Deno.remove(d, { recursive: true });
  }
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test({
  name: "images: the image path from the front-end to vzctl create is tamper-proof (ssh, sudo)",
  ignore: !canRunPrivilegeTests,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const cleanups: (() => Promise<unknown>)[] = [];
    let attacks = 0;
    try {
      // The driver account and a hostile local account, both the bed's own (they exist only
      // in its namespaces and go with it).
      const evil = "onevzt-evil";
      const bed = await leastPrivilegeBed({ nodes: [{ name: "cn1" }], localUsers: [evil] });
      cleanups.push(() => bed.stop());
      await installDevRemotes(bed, "cn1");
      const lp = bed.driver;
      const cfg = lp.sshConfig;
      const fs = bed.nodes.cn1.fsDir; // what cn1 sees as /srv/onevz-node
      await must("chown", [`${lp.uid}:${lp.gid}`, `${fs}/vm`]);
      const site = { ...bedSite(bed), ssh: `ssh -F ${one.sq(cfg)}` };
      const fe = await Deno.makeTempDir({ prefix: "onevz-images-fe-" });
      cleanups.push(() => Deno.remove(fe, { recursive: true }));
      await Deno.mkdir(`${fe}/images`);
      const feDefaults = `${fe}/vmm_ssh_ovz.conf`;
      const nodeDefaults = `${fs}/scripts/vmm/ovz/vmm_ssh_ovz.conf`;
      await Deno.writeTextFile(feDefaults, "");
      const tmEnv = {
        ...bed.env,
        ONEVZ_SSH_CONFIG: cfg,
        ONEVZ_VM_DIR: bed.vmDir,
        ONEVZ_FE_NAMES: "fe",
        ONEVZ_DEFAULTS: feDefaults,
        TMPDIR: fe,
      };
      const tm = async (action: string, args: string[]) => {
        const out = await new Deno.Command(DENO, {
          args: ["run", "-A", "--quiet", `${REPO}/main.ts`, action, ...args],
          env: tmEnv,
          stdout: "piped",
          stderr: "piped",
        }).output();
        return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
      };
      const R = (vid: number) => `${bed.vmDir}/${vid}/images`;
      const local = (vid: number) => `${fs}/vm/${vid}/images`;
      const image = async (name: string, bytes: Uint8Array) => {
        await Deno.writeFile(`${fe}/images/${name}`, bytes);
        return `${fe}/images/${name}`;
      };
      const clone = async (src: string, vid: number) => {
        const r = await tm("tm-clone", [`fe:${src}`, `cn1:${R(vid)}/disk.0`]);
        assert.equal(r.code, 0, r.stderr + r.stdout);
        return r;
      };
      const deploy = async (vid: number, name: string, src: string) => {
        const r = await one.vmmSsh(
          site,
          "cn1",
          "deploy",
          [`${R(vid)}/deployment.0`],
          vmXml(vid, name, src),
          { vid },
        );
        assert.equal(r.result, "SUCCESS", `deploy ${vid}: ${r.reply}\n${r.stderr}`);
        return r;
      };
      const destroy = async (vid: number) => {
        await bed.ssh(
          "cn1",
          `vzctl --quiet stop ${1000 + vid} --fast >/dev/null 2>&1; vzctl --quiet destroy ${
            1000 + vid
          } >/dev/null 2>&1; true`,
        );
      };
      const tmDelete = async (vid: number) => {
        await destroy(vid);
        const r = await tm("tm-delete", [`cn1:${R(vid)}`]);
        assert.equal(r.code, 0, r.stderr);
      };
      const carries = (vid: number, file: string) =>
        existsSync(`${local(vid)}/private/etc/${file}`);
      /** Run a shell command on cn1 as the hostile user; true when it succeeded. */
      const asEvil = async (cmd: string) => {
        attacks++;
        const r = await bed.ssh("cn1", `runuser -u ${evil} -- sh -c ${one.sq(cmd)}`);
        return r.code === 0;
      };
      // Control: the hostile account exists on cn1 and its commands run (a refusal below is
      // the file's protection, not a missing user).
      const ctl = await bed.ssh("cn1", `runuser -u ${evil} -- sh -c 'id -un; id -u'`);
      assert.equal(ctl.stdout, `${evil}\n${bed.localUsers[evil].uid}\n`, ctl.stderr);
      const cacheDir = `${bed.vmDir}.onevz-cache`;
      const tcache = `${bed.simRoot}/vz/template/cache`;
      const placed = (prefix: string) =>
        [...Deno.readDirSync(`${fs}/sim/vz/template/cache`)].map((e) => e.name)
          .filter((n) => n.startsWith(`${prefix}-onevz-`));

      // The hostile user's tarball, readable on the node.
      await Deno.mkdir(`${fs}/evil`, { mode: 0o755 });
      await Deno.chmod(`${fs}/evil`, 0o755);
      await Deno.writeFile(`${fs}/evil/planted.tar.gz`, await templateWith("planted"), {
        mode: 0o644,
      });
      const planted = `${bed.nodeRoot}/evil/planted.tar.gz`;

      const A = await image("A", await templateWith(undefined));
      const aSum = await sha256(await Deno.readFile(A));
      const entry = `${cacheDir}/${aSum}`;

      await t.step(
        "1. a local account cannot rewrite the cache, R/disk.N or $TEMPLATE/cache",
        async () => {
          await clone(A, 11);
          const attempts = (vid: number) => [
            `cat ${planted} > ${entry}`,
            `cat ${planted} > ${R(vid)}/disk.0`,
            `cp ${planted} ${cacheDir}/x && mv -f ${cacheDir}/x ${entry}`,
            `cp ${planted} ${R(vid)}/x && mv -f ${R(vid)}/x ${R(vid)}/disk.0`,
            `chmod 666 ${entry}`,
          ];
          for (const a of attempts(11)) assert.equal(await asEvil(a), false, `succeeded: ${a}`);
          await deploy(11, "centos-6-x86_64", A);
          assert.ok(!carries(11, "planted"), "VM 11 carries the planted file");
          // A cache hit, and the OS template deploy placed.
          await clone(A, 12);
          for (const a of attempts(12)) assert.equal(await asEvil(a), false, `succeeded: ${a}`);
          const [tname] = placed("centos-6-x86_64");
          assert.ok(tname, "deploy placed an OS template");
          for (
            const a of [
              `cat ${planted} > ${tcache}/${tname}`,
              `cp ${planted} ${tcache}/centos-6-x86_64.tar`, // shadows the admin's .tar.gz
              `cp ${planted} ${tcache}/x && mv -f ${tcache}/x ${tcache}/${tname}`,
            ]
          ) assert.equal(await asEvil(a), false, `succeeded: ${a}`);
          await deploy(12, "centos-6-x86_64", A);
          await clone(A, 13);
          await deploy(13, "centos-6-x86_64", A);
          for (const vid of [11, 12, 13]) {
            assert.ok(!carries(vid, "planted"), `VM ${vid} carries it`);
          }
          // What the cache and R hold: read-only to everyone, the driver's, no world-writable dir.
          const st = await Deno.stat(`${fs}/vm/.onevz-cache/${aSum}`);
          assert.equal(st.mode! & 0o7777, 0o444);
          assert.equal(st.uid, lp.uid);
          assert.equal((await Deno.stat(`${local(12)}/disk.0`)).ino, st.ino);
          assert.equal((await Deno.stat(`${fs}/vm/.onevz-cache`)).mode! & 0o022, 0);
        },
      );

      await t.step(
        "2. an entry changed in place is checked again, never used as it is",
        async () => {
          // Root stands in for whoever could still write the entry (its owner; an older onevz
          // left entries 0666): same size, same mtime, only the ctime tells.
          const path = `${fs}/vm/.onevz-cache/${aSum}`;
          const before = await Deno.stat(path);
          const f = await Deno.open(path, { write: true });
          await f.seek(Math.floor(before.size / 2), Deno.SeekMode.Start);
          await f.write(new Uint8Array(16).fill(0x55));
          f.close();
          await Deno.utime(path, before.atime!, before.mtime!);
          const r = await clone(A, 14);
          assert.deepEqual(await Deno.readFile(`${local(14)}/disk.0`), await Deno.readFile(A));
          assert.match(r.stdout, /no longer matches its digest: dropped/);
          assert.match(r.stdout, /sent \d+ bytes/);
          // An entry others can write (left by an older onevz) is dropped and sent again.
          await Deno.chmod(path, 0o666);
          await Deno.remove(`${path}.verified`);
          const legacy = await clone(A, 15);
          assert.match(legacy.stdout, /writable by other users/);
          assert.match(legacy.stdout, /sent \d+ bytes/);
          assert.equal((await Deno.stat(path)).mode! & 0o7777, 0o444);
          assert.deepEqual(await Deno.readFile(`${local(15)}/disk.0`), await Deno.readFile(A));
          // And an unchanged entry is used without hashing again.
          const hit = await clone(A, 16);
          assert.match(hit.stdout, /unchanged since verified; 0 image bytes sent/);
          attacks += 2;
        },
      );

      await t.step("3. a tenant's image named like another's never takes its place", async () => {
        // A plain .tar named like the administrator's cached centos-6-x86_64.tar.gz: vzctl
        // would pick the .tar first if it landed under that name.
        const B = await image("B", await templateWith("planted", "none"));
        await clone(B, 21);
        await deploy(21, "centos-6-x86_64", B);
        assert.ok(carries(21, "planted"), "the tenant's own container has its own image");
        // (--layout simfs: a stock vz.conf says ploop, which the simulated kernel lacks.)
        const adm = await bed.ssh(
          "cn1",
          `vzctl --quiet create 990 --ostemplate centos-6-x86_64 --private ${bed.nodeRoot}/adm990/private --root ${bed.nodeRoot}/adm990/root --layout simfs`,
        );
        assert.equal(adm.code, 0, adm.stderr);
        assert.ok(
          !existsSync(`${fs}/adm990/private/etc/planted`),
          "the administrator got the tenant's tarball",
        );
        assert.match(
          await Deno.readTextFile(`${fs}/adm990/private/etc/redhat-release`),
          /\[centos-6-x86_64\]/,
        );
        await bed.ssh("cn1", `vzctl --quiet destroy 990; rm -rf ${bed.nodeRoot}/adm990`);
        // Two tenants, one NAME, different images; then a new version under the same NAME
        // for a VM deployed before (a saved image deployed again on the same node).
        const W1 = await image("W1", await templateWith("w1"));
        const W2 = await image("W2", await templateWith("w2"));
        await clone(W1, 22);
        await clone(W2, 23);
        await deploy(22, "web", W1);
        await deploy(23, "web", W2);
        assert.ok(carries(22, "w1") && !carries(22, "w2"));
        assert.ok(carries(23, "w2") && !carries(23, "w1"));
        await destroy(22);
        const W3 = await image("W3", await templateWith("w3"));
        await clone(W3, 22);
        await deploy(22, "web", W3);
        assert.ok(carries(22, "w3") && !carries(22, "w1"));
        assert.equal(placed("web").length, 3);
        attacks += 3;
      });

      await t.step(
        "4. both caches stay bounded: LRU first, by age, never what a VM links",
        async () => {
          for (const vid of [11, 12, 13, 14, 15, 16, 21, 22, 23]) await tmDelete(vid);
          const bounds = (size: string, age = "30") =>
            `ONEVZ = [ IMAGE_CACHE_MAX_SIZE = "${size}", IMAGE_CACHE_MAX_AGE = "${age}", ` +
            `TEMPLATE_CACHE_MAX_SIZE = "${size}", CACHE_GRACE_MINUTES = "0" ]\n`;
          await Deno.writeTextFile(feDefaults, bounds("1K"));
          await Deno.writeTextFile(nodeDefaults, bounds("1K"));
          const X: string[] = [];
          // Plain tarballs: 10 KB each (tar's blocking), so that "1K" is exceeded by any one.
          for (let i = 1; i <= 7; i++) {
            X.push(await image(`X${i}`, await templateWith(`x${i}`, "none")));
          }
          const sum = async (i: number) => await sha256(await Deno.readFile(X[i - 1]));
          const entries = () =>
            [...Deno.readDirSync(`${fs}/vm/.onevz-cache`)].map((e) => e.name)
              .filter((n) => /^[0-9a-f]{64}$/.test(n)).sort();
          for (const [i, vid] of [[1, 31], [2, 32], [3, 33]]) await clone(X[i - 1], vid);
          // Everything older and unused (A, B, W…) is gone; all three in use are kept although
          // they exceed the bound.
          assert.deepEqual(entries(), [await sum(1), await sum(2), await sum(3)].sort());
          await tmDelete(31);
          const c4 = await clone(X[3], 34);
          assert.match(c4.stdout, /pruned the image cache on cn1: 1 unused entry/);
          assert.deepEqual(entries(), [await sum(2), await sum(3), await sum(4)].sort());
          // Least recently used first: X3 used after X2, both unused now; room for one of them.
          await tmDelete(32);
          await clone(X[2], 35);
          await tmDelete(33);
          await tmDelete(35);
          const size = (i: number) => Deno.statSync(X[i - 1]).size;
          await Deno.writeTextFile(
            feDefaults,
            bounds(`${Math.ceil((size(3) + size(4) + size(6)) / 1024)}K`),
          );
          await clone(X[5], 36);
          assert.deepEqual(entries(), [await sum(3), await sum(4), await sum(6)].sort());
          // By age: X3 last used 40 days ago (its record's mtime; root moves the clock).
          const rec = `${fs}/vm/.onevz-cache/${await sum(3)}.verified`;
          const old = new Date(Date.now() - 40 * 86400_000);
          await Deno.utime(rec, old, old);
          await Deno.writeTextFile(feDefaults, bounds("unlimited"));
          await clone(X[6], 37);
          assert.deepEqual(entries(), [await sum(4), await sum(6), await sum(7)].sort());
          // The template cache: deploy 34, 36 and 37; once VM 34 is gone, its template goes too
          // at the next placement; the administrator's own templates stay.
          await deploy(34, "x", X[3]);
          await deploy(36, "x", X[5]);
          await tmDelete(34);
          await deploy(37, "x", X[6]);
          const left = placed("x").map((n) => n.replace(/\.tar$/, "").split("-onevz-")[1]).sort();
          assert.deepEqual(left, [(await sum(6)).slice(0, 12), (await sum(7)).slice(0, 12)].sort());
          assert.deepEqual(placed("centos-6-x86_64"), [], "unused onevz templates pruned");
          assert.deepEqual(placed("web"), []);
          for (const own of ["centos-6-x86_64.tar.gz", "debian-7.0-x86_64.tar.gz"]) {
            assert.ok(existsSync(`${fs}/sim/vz/template/cache/${own}`), `${own} kept`);
          }
          await destroy(36);
          await destroy(37);
        },
      );

      await t.step(
        "5. clones racing each other and the pruning place the right bytes",
        async () => {
          await Deno.writeTextFile(
            feDefaults,
            `ONEVZ = [ IMAGE_CACHE_MAX_SIZE = "1K", CACHE_GRACE_MINUTES = "0" ]\n`,
          );
          const Y: string[] = [];
          for (let i = 1; i <= 3; i++) Y.push(await image(`Y${i}`, await templateWith(`y${i}`)));
          const jobs = [41, 42, 43, 44, 45, 46].map((vid, k) => ({ vid, src: Y[k % 3] }));
          const rs = await Promise.all(
            jobs.map((j) => tm("tm-clone", [`fe:${j.src}`, `cn1:${R(j.vid)}/disk.0`])),
          );
          for (const [k, r] of rs.entries()) assert.equal(r.code, 0, `${jobs[k].vid}: ${r.stderr}`);
          for (const j of jobs) {
            assert.deepEqual(
              await Deno.readFile(`${local(j.vid)}/disk.0`),
              await Deno.readFile(j.src),
            );
          }
          const leftovers = [...Deno.readDirSync(`${fs}/vm/.onevz-cache`)].filter((e) =>
            e.name.includes("onevz-tmp")
          );
          assert.deepEqual(leftovers, []);
        },
      );
      figure("images", "hostile local account / tampered entries / tenant names", attacks);
    } finally {
      for (const c of cleanups.reverse()) await c().catch(() => {});
    }
  },
});
