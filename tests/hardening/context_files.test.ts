/**
 * CONTEXT FILES cannot read the front-end (issue 11 §2). tm-context runs on the front-end as
 * oneadmin, who can read one_auth, oned.db and the ssh key that logs into every node; the
 * FILES list comes from the VM template. Over the ssh test bed (node login: the unprivileged
 * driver user), with a front-end of the test's own (HOME and ONE_LOCATION point into a
 * temporary directory; the defaults file is the installed $ONE_LOCATION/etc/vmm_ssh/ one):
 *   - files of oneadmin's home, $ONE_LOCATION/etc and /var, any .ssh, files outside the listed
 *     directories, `..` and symbolic-link ways out, FIFOs: refused with the attribute and what
 *     the operator can allow, and nothing reaches the node;
 *   - files in the listed directories and oned's own context.sh arrive; a FILES entry that is
 *     a symbolic link to an allowed file arrives as that file under the entry's name, and
 *     deploy then puts it in the container and runs it from rc.local.
 */
import assert from "node:assert/strict";
import * as one from "../../fixtures/oned/driver.ts";
import { makeTemplateTarball, REPO } from "../helpers/simnode.ts";
import { bedSite, DENO, installDevRemotes } from "../testbed/mod.ts";
import { canRunPrivilegeTests, leastPrivilegeBed, must } from "./least_privilege.ts";
import { figure } from "./figures.ts";

const dec = new TextDecoder();
const VPS145 = await Deno.readTextFile(`${REPO}/fixtures/templates/vps145.xml`);

Deno.test({
  name: "context files: only listed front-end directories reach a VM, never secrets (ssh)",
  ignore: !canRunPrivilegeTests,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const cleanups: (() => Promise<unknown>)[] = [];
    let refused = 0;
    try {
      // Logins to cn1 as the bed's driver account, with only the printed rules.
      const bed = await leastPrivilegeBed({
        nodes: [{ name: "cn1", templates: ["centos-6-x86_64"] }],
      });
      cleanups.push(() => bed.stop());
      await installDevRemotes(bed, "cn1");
      const { uid, gid, sshConfig: cfg } = bed.driver;
      const fs = bed.nodes.cn1.fsDir;
      await must("chown", [`${uid}:${gid}`, `${fs}/vm`]);

      // The front-end: oneadmin's home, a self-contained OpenNebula, an operator's directory.
      const fe = await Deno.makeTempDir({ prefix: "onevz-ctx-fe-" });
      cleanups.push(() => Deno.remove(fe, { recursive: true }));
      const home = `${fe}/home`;
      const loc = `${fe}/one`;
      const ctx = `${fe}/ctx`;
      const w = async (p: string, text: string) => {
        await Deno.mkdir(p.slice(0, p.lastIndexOf("/")), { recursive: true });
        await Deno.writeTextFile(p, text);
      };
      await w(`${home}/.one/one_auth`, "oneadmin:SECRET-one_auth\n");
      await w(`${home}/.ssh/id_rsa`, "SECRET-private-key\n");
      await w(`${home}/notes.txt`, "SECRET-home\n");
      await w(`${loc}/var/oned.db`, "SECRET-oned.db\n");
      await w(`${loc}/var/7/deployment.0`, "SECRET-other-vm\n");
      await w(`${loc}/var/7/context.sh`, "SECRET-other-context\n");
      await w(`${loc}/etc/oned.conf`, "SECRET-oned.conf\n");
      await w(`${loc}/var/45/context.sh`, 'HOSTNAME="vps145"\n');
      await w(`${loc}/share/context/init.sh`, "echo default-dir\n");
      await w(`${ctx}/init.sh`, "echo init\n");
      await w(`${ctx}/id_rsa.pub`, "ssh-rsa AAAA ctx\n");
      await w(`${ctx}/.ssh/authorized_keys`, "SECRET-dot-ssh\n");
      await w(`${ctx}/sub/ok.txt`, "ok\n");
      await Deno.symlink(`${ctx}/sub/ok.txt`, `${ctx}/link-ok`);
      await Deno.symlink(`${home}/.one/one_auth`, `${ctx}/link-auth`);
      await Deno.symlink(`${loc}/var`, `${ctx}/var-dir`);
      await must("mkfifo", [`${ctx}/fifo`]);
      // The installed defaults file; its list even names the home (which stays forbidden).
      await w(
        `${loc}/etc/vmm_ssh/vmm_ssh_ovz.conf`,
        `ONEVZ = [ CONTEXT_FILES_DIRS = "${ctx} ${home}" ]\n`,
      );
      const env = {
        ...bed.env,
        HOME: home,
        ONE_LOCATION: loc,
        ONEVZ_SSH_CONFIG: cfg,
        ONEVZ_VM_DIR: bed.vmDir,
        ONEVZ_FE_NAMES: "fe",
        TMPDIR: fe,
      };
      const R = `${bed.vmDir}/45/images`;
      const ctxOnNode = `${fs}/vm/45/images/disk.2`;
      const tmContext = async (files: string[], contextSh = `${loc}/var/45/context.sh`) => {
        const out = await new Deno.Command(DENO, {
          args: [
            "run",
            "-A",
            "--quiet",
            `${REPO}/main.ts`,
            "tm-context",
            contextSh,
            ...files,
            `cn1:${R}/disk.2`,
          ],
          env,
          stdout: "piped",
          stderr: "piped",
        }).output();
        return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
      };
      const nodeHas = () => {
        try {
          return [...Deno.readDirSync(ctxOnNode)].map((e) => e.name).sort();
        } catch {
          return null;
        }
      };
      const secretsOnNode = async () => {
        const r = await bed.ssh("cn1", `grep -rl SECRET ${bed.nodeRoot}/vm 2>/dev/null; true`);
        return r.stdout.trim();
      };

      await t.step("secrets and ways out are refused, nothing reaches the node", async () => {
        const cases: [string, RegExp][] = [
          [`${home}/.one/one_auth`, /oneadmin's home/],
          [`${home}/notes.txt`, /oneadmin's home/],
          [`${home}/.ssh/id_rsa`, /\.ssh|oneadmin's home/],
          [`${loc}/var/oned.db`, /\$ONE_LOCATION\/var/],
          [`${loc}/var/7/deployment.0`, /\$ONE_LOCATION\/var/],
          [`${loc}/etc/oned.conf`, /\$ONE_LOCATION\/etc/],
          [`${ctx}/.ssh/authorized_keys`, /\.ssh directory/],
          [`${ctx}/link-auth`, /symbolic link to .*one_auth.*oneadmin's home/],
          [`${ctx}/var-dir/oned.db`, /\$ONE_LOCATION\/var/],
          [`${ctx}/../one/var/oned.db`, /\$ONE_LOCATION\/var/],
          ["/etc/passwd", /not in a directory the operator allows .*ONEVZ\/CONTEXT_FILES_DIRS/],
          [`${loc}/share/context/init.sh`, /not in a directory the operator allows/],
          [`${ctx}/fifo`, /FIFO|not a regular file/],
        ];
        for (const [file, why] of cases) {
          const r = await tmContext([`${ctx}/init.sh`, file]);
          assert.equal(r.code, 1, `${file} was copied: ${r.stdout}`);
          assert.match(r.stderr, /^ERROR MESSAGE --8<------\ntm-context: CONTEXT\/FILES: /);
          assert.match(r.stderr, why, file);
          assert.equal(nodeHas(), null, `${file}: something reached the node`);
          refused++;
        }
        // Another VM's context.sh is not this VM's (the first argument is checked too).
        const other = await tmContext([], `${loc}/var/7/context.sh`);
        assert.equal(other.code, 1);
        assert.match(other.stderr, /\$ONE_LOCATION\/var/);
        refused++;
        assert.equal(await secretsOnNode(), "");
      });

      await t.step(
        "listed files arrive; a link to an allowed file arrives as that file",
        async () => {
          const r = await tmContext([`${ctx}/init.sh`, `${ctx}/id_rsa.pub`, `${ctx}/link-ok`]);
          assert.equal(r.code, 0, r.stderr);
          assert.deepEqual(nodeHas(), ["context.sh", "id_rsa.pub", "init.sh", "link-ok"]);
          const link = await Deno.lstat(`${ctxOnNode}/link-ok`);
          assert.ok(link.isFile, "the link arrived as a regular file");
          assert.equal(await Deno.readTextFile(`${ctxOnNode}/link-ok`), "ok\n");
          assert.equal(await Deno.readTextFile(`${ctxOnNode}/context.sh`), 'HOSTNAME="vps145"\n');
          assert.equal(await secretsOnNode(), "");
        },
      );

      await t.step(
        "init.sh given as a link: deploy puts it in the container and runs it",
        async () => {
          await Deno.symlink(`${ctx}/init.sh`, `${ctx}/sub/init.sh`);
          const r = await tmContext([`${ctx}/sub/init.sh`, `${ctx}/id_rsa.pub`]);
          assert.equal(r.code, 0, r.stderr);
          await Deno.writeFile(`${fe}/image`, await makeTemplateTarball("bz2"));
          const c = await new Deno.Command(DENO, {
            args: [
              "run",
              "-A",
              "--quiet",
              `${REPO}/main.ts`,
              "tm-clone",
              `fe:${fe}/image`,
              `cn1:${R}/disk.0`,
            ],
            env,
            stdout: "piped",
            stderr: "piped",
          }).output();
          assert.equal(c.code, 0, dec.decode(c.stderr));
          const site = { ...bedSite(bed), ssh: `ssh -F ${one.sq(cfg)}` };
          const d = await one.vmmSsh(site, "cn1", "deploy", [`${R}/deployment.0`], VPS145, {
            vid: 45,
          });
          assert.equal(d.result, "SUCCESS", d.stderr);
          const priv = `${fs}/vm/45/images/private`;
          assert.equal(await Deno.readTextFile(`${priv}/mnt/init.sh`), "echo init\n");
          assert.match(await Deno.readTextFile(`${priv}/etc/rc.d/rc.local`), /\/mnt\/init\.sh/);
          await bed.ssh("cn1", "vzctl --quiet stop 1045 --fast; vzctl --quiet destroy 1045; true");
        },
      );
      figure("context-files", "front-end files refused (tm-context)", refused);
    } finally {
      for (const c of cleanups.reverse()) await c().catch(() => {});
    }
  },
});
