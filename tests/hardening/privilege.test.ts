/**
 * Least privilege, for real: the ssh test bed's driver account (a non-root user of the bed's
 * own, standing in for oneadmin, see least_privilege.ts) holding ONLY the rules
 * `onevz install --sudoers` prints (checked with visudo), and the whole VMM lifecycle
 * (deploy → poll → save → restore → shutdown) run through one_vmm_ssh's calling convention on
 * a bed node, logged in as that user. The simulator's tools are at /usr/sbin/vzctl … (the
 * paths the rules name) inside the bed only. Also checks the owners and modes of the files
 * onevz writes, and that no reply, log or stderr holds the template.
 *
 * Test-only addition to sudoers (not a privilege): env_keep of the simulator's root variables,
 * which a real node does not have.
 */
import { canRunPrivilegeTests, leastPrivilegeBed, must } from "./least_privilege.ts";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import * as one from "../../fixtures/oned/driver.ts";
import { bedSite, installDevRemotes, run } from "../testbed/mod.ts";
import { makeTemplateTarball } from "../helpers/simnode.ts";
import { TEMPLATES } from "./fault_node.ts";
import { epilog } from "../e2e/helpers.ts";

const VPS145 = await Deno.readTextFile(`${TEMPLATES}/vps145.xml`);

Deno.test({
  name: "privilege: whole lifecycle as a non-root driver with only the `install --sudoers` rules",
  ignore: !canRunPrivilegeTests,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const cleanups: (() => Promise<unknown>)[] = [];
    try {
      const bed = await leastPrivilegeBed({
        nodes: [{ name: "cn1", templates: ["centos-6-x86_64"] }],
      });
      cleanups.push(() => bed.stop());
      const { uid, gid, user } = bed.driver;
      await installDevRemotes(bed, "cn1");
      // The front-end logs in as the driver account (oned's oneadmin).
      const cfg = bed.driver.sshConfig;
      const site = { ...bedSite(bed), ssh: `ssh -F ${one.sq(cfg)}` };
      const fs = bed.nodes.cn1.fsDir;
      // VM_DIR belongs to the driver (the TM creates it as oneadmin); the TM prolog's files too.
      const R = `${fs}/vm/45/images`;
      await Deno.mkdir(`${R}/disk.2`, { recursive: true });
      await Deno.writeFile(`${R}/disk.0`, await makeTemplateTarball("bz2"));
      await Deno.writeTextFile(`${R}/disk.2/context.sh`, 'HOSTNAME="vps145.example.org"\n');
      await Deno.writeTextFile(`${R}/disk.2/init.sh`, "echo init\n");
      await Deno.writeTextFile(`${R}/disk.2/id_rsa.pub`, "ssh-rsa AAAA priv\n");
      await must("chown", ["-R", `${uid}:${gid}`, `${fs}/vm`]);

      const who = await run("ssh", ["-F", cfg, "-n", "cn1", "id -un; sudo -n -l | tail -3"]);
      assert.equal(who.code, 0, who.stderr);
      assert.equal(who.stdout.split("\n")[0], user);
      assert.notEqual(uid, 0);

      // oned's paths: VM_DIR ends in "/", then "/<vid>/images" (…/vm//45/images/…).
      const node = (p: string) => `${bed.vmDir}/45/images${p}`;
      const replies: one.DriverReply[] = [];
      const step = async (action: string, args: string[], stdin?: string) => {
        const r = await one.vmmSsh(site, "cn1", action, args, stdin, { vid: 45 });
        replies.push(r);
        assert.equal(r.result, "SUCCESS", `${action}: ${r.reply}\n${r.stderr}`);
        return r;
      };
      const dep = await step("deploy", [node("/deployment.0")], VPS145);
      assert.equal(dep.info, "1045");
      const poll = await step("poll", ["1045"]);
      assert.match(poll.info, /STATE=a /);
      await step("save", ["1045", node("/checkpoint")]);
      await step("restore", [node("/checkpoint")]);
      assert.match((await step("poll", ["1045"])).info, /STATE=a /);

      // Owners and modes of what onevz wrote.
      const st = async (p: string) => {
        const s = await Deno.stat(`${R}${p}`);
        return `${(s.mode! & 0o7777).toString(8)} ${s.uid}:${s.gid}`;
      };
      assert.equal((await st("/deployment.0")).split(" ")[0], "640", "deployment copy 0640");
      assert.equal(await st("/checkpoint"), `600 ${uid}:${gid}`, "checkpoint 0600, the driver's");
      assert.equal((await st("/private/etc/rc.d/rc.local")).split(" ")[0], "755");
      const conf = await Deno.stat(`${fs}/sim/etc/vz/conf/1045.conf`);
      assert.equal(conf.mode! & 0o777, 0o644);
      assert.equal(conf.uid, 0, "the CT config stays root's");

      // shutdown, then the epilog through one_tm logged in as the driver account: the MV of the saved
      // disk archives the private area (tar and od through sudo), DELETE destroys the CT
      // (vzctl through sudo) and removes R (rm through sudo: root's files in it).
      await step("shutdown", ["1045"]);
      assert.ok(existsSync(`${fs}/sim/etc/vz/conf/1045.conf`), "kept for the epilog");
      const feDir = `${bed.dir}/fe-var/45`;
      const ep = await epilog(
        { ...bed.env, ONEVZ_SSH_CONFIG: cfg },
        "cn1",
        45,
        `${bed.vmDir}/45/images`,
        { diskId: 0, feDir },
      );
      assert.equal(ep.result, "SUCCESS", ep.reply + ep.steps.map((x) => x.out.stderr).join(""));
      const saved = await Deno.stat(`${feDir}/disk.0`);
      assert.equal(saved.mode! & 0o777, 0o600, "the saved disk is readable by its owner only");
      assert.ok(!existsSync(`${fs}/sim/etc/vz/conf/1045.conf`));
      assert.ok(!existsSync(R), "R removed");

      // No reply, stderr or log holds the template (its context files or its XML).
      const logs = [
        ...replies.map((r) => `${r.reply}\n${r.stderr}`),
        await Deno.readTextFile(bed.nodes.cn1.log).catch(() => ""),
      ].join("\n");
      for (const secret of ["<TEMPLATE>", "111.111.111.0/24", "ssh-rsa", "<CONTEXT>"]) {
        assert.ok(!logs.includes(secret), `"${secret}" appears in a reply or log`);
      }
      // Every privileged call went through sudo as the driver, not root logins.
      const calls = (await Deno.readTextFile(`${fs}/sim/sim/calls.jsonl`)).split("\n")
        .filter((l) => l.trim()).map((l) =>
          (JSON.parse(l).argv as string[]).find((a) => !a.startsWith("-"))
        );
      assert.ok(calls.includes("create") && calls.includes("chkpnt") && calls.includes("destroy"));
    } finally {
      for (const c of cleanups.reverse()) await c().catch(() => {});
    }
  },
});
