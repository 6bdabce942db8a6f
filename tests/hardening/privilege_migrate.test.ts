/**
 * Least privilege, live migration in NODE mode: the node login is the bed's non-root driver
 * account (see least_privilege.ts) with ONLY the rules `onevz install --sudoers` prints, on an
 * ssh test bed with cn1 and cn2. DEPLOY on cn1, MIGRATE to cn2 (R is copied by the driver's
 * own ssh from cn1 to cn2, then `sudo -n vzmigrate --online cn2 1045` reaches cn2 as root),
 * POLL and SHUTDOWN on cn2; cn1 keeps neither R nor the CT config.
 *
 * ssh between the nodes. Every node session gets ONEVZ_SSH_CONFIG = OVZ_SIM_SSH_CONFIG = the
 * bed's client config, whose leading `Match localuser <driver>` block makes ssh run by the
 * driver (the R copy) log in to cn2 as the driver with its own key, while root's (vzmigrate
 * through sudo: `ssh -F … root@cn2`) matches no block and keeps the bed's root identity.
 *
 * Test-only additions (not privileges): env_keep of the simulator's root variables, which a
 * real node does not have; the simulator's tools at /usr/sbin/vz* inside the bed.
 */
import { canRunPrivilegeTests, leastPrivilegeBed, must } from "./least_privilege.ts";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import * as one from "../../fixtures/oned/driver.ts";
import { bedSite, installDevRemotes, run } from "../testbed/mod.ts";
import { makeTemplateTarball, REPO } from "../helpers/simnode.ts";
import { epilog } from "../e2e/helpers.ts";

const VPS145 = await Deno.readTextFile(`${REPO}/fixtures/templates/vps145.xml`);

Deno.test({
  name:
    "privilege: node-mode live migration as a non-root driver with only the `install --sudoers` rules",
  ignore: !canRunPrivilegeTests,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const cleanups: (() => Promise<unknown>)[] = [];
    try {
      const bed = await leastPrivilegeBed({
        nodes: [
          { name: "cn1", templates: ["centos-6-x86_64"] },
          { name: "cn2", templates: ["centos-6-x86_64"] },
        ],
      });
      cleanups.push(() => bed.stop());
      const { uid, gid, user } = bed.driver;
      await installDevRemotes(bed, "cn1");
      await installDevRemotes(bed, "cn2");
      // The front-end logs in as the driver account (oned's oneadmin).
      const feCfg = bed.driver.sshConfig;
      const site = { ...bedSite(bed), ssh: `ssh -F ${one.sq(feCfg)}` };

      const fs1 = bed.nodes.cn1.fsDir;
      const fs2 = bed.nodes.cn2.fsDir;
      // VM_DIR belongs to the driver on both nodes (the TM creates it as oneadmin).
      const R1 = `${fs1}/vm/45/images`;
      const R2 = `${fs2}/vm/45/images`;
      await Deno.mkdir(`${R1}/disk.2`, { recursive: true });
      await Deno.writeFile(`${R1}/disk.0`, await makeTemplateTarball("bz2"));
      await Deno.writeTextFile(`${R1}/disk.2/context.sh`, 'HOSTNAME="vps145.example.org"\n');
      await Deno.writeTextFile(`${R1}/disk.2/init.sh`, "echo init\n");
      await Deno.writeTextFile(`${R1}/disk.2/id_rsa.pub`, "ssh-rsa AAAA priv\n");
      await must("chown", ["-R", `${uid}:${gid}`, `${fs1}/vm`, `${fs2}/vm`]);

      // The driver on cn1 reaches cn2 as itself through the nodes' ONEVZ_SSH_CONFIG.
      const hop = await run("ssh", [
        "-F",
        feCfg,
        "-n",
        "cn1",
        'ssh -o BatchMode=yes -F "$ONEVZ_SSH_CONFIG" -n cn2 id -un',
      ]);
      assert.equal(hop.code, 0, hop.stderr);
      assert.equal(hop.stdout.trim(), user);
      // … and root (vzmigrate through sudo) still reaches cn2 as root.
      const rootHop = await bed.ssh(
        "cn1",
        'ssh -o BatchMode=yes -F "$OVZ_SIM_SSH_CONFIG" -n root@cn2 id -un',
      );
      assert.equal(rootHop.code, 0, rootHop.stderr);
      assert.equal(rootHop.stdout.trim(), "root");

      const node = (p: string) => `${bed.vmDir}/45/images${p}`;
      const step = async (host: string, action: string, args: string[], stdin?: string) => {
        const r = await one.vmmSsh(site, host, action, args, stdin, { vid: 45 });
        assert.equal(r.result, "SUCCESS", `${action} on ${host}: ${r.reply}\n${r.stderr}`);
        return r;
      };
      const status = async (host: string) =>
        (await bed.ssh(host, "vzctl status 1045")).stdout.trim();

      const dep = await step("cn1", "deploy", [node("/deployment.0")], VPS145);
      assert.equal(dep.info, "1045");
      assert.match(await status("cn1"), /running/);

      await step("cn1", "migrate", ["1045", "cn2"]);
      const calls = (await Deno.readTextFile(`${fs1}/sim/sim/calls.jsonl`)).split("\n")
        .filter((l) => l.trim()).map((l) => JSON.parse(l) as { tool: string; argv: string[] });
      assert.deepEqual(calls.filter((c) => c.tool === "vzmigrate").map((c) => c.argv), [
        ["--online", "cn2", "1045"],
      ]);

      // On cn2: the CT runs, R arrived (copied by the driver: its files are the driver's).
      assert.match(await status("cn2"), /exist mounted running/);
      for (const f of ["deployment.0", "disk.0", "disk.2/context.sh"]) {
        assert.ok(existsSync(`${R2}/${f}`), `cn2 has R/${f}`);
      }
      const dst = await Deno.stat(`${R2}/deployment.0`);
      assert.equal(dst.uid, uid, "R/deployment.0 on cn2 was written by the driver");
      assert.equal(dst.mode! & 0o777, 0o640, "R/deployment.0 keeps mode 0640");
      assert.ok(existsSync(`${R2}/private/etc/redhat-release`), "private area on cn2");
      assert.ok(existsSync(`${fs2}/sim/etc/vz/conf/1045.conf`), "CT config on cn2");

      // cn1 keeps neither R nor the CT.
      assert.ok(!existsSync(R1), "R removed from cn1");
      assert.ok(!existsSync(`${fs1}/sim/etc/vz/conf/1045.conf`), "no CT config on cn1");
      assert.match(await status("cn1"), /deleted/);

      assert.match((await step("cn2", "poll", ["1045"])).info, /STATE=a /);
      await step("cn2", "shutdown", ["1045"]);
      assert.match(await status("cn2"), /exist unmounted down/, "kept for the epilog");
      const ep = await epilog(
        { ...bed.env, ONEVZ_SSH_CONFIG: feCfg },
        "cn2",
        45,
        `${bed.vmDir}/45/images`,
      );
      assert.equal(ep.result, "SUCCESS", ep.reply + ep.steps.map((x) => x.out.stderr).join(""));
      assert.match(await status("cn2"), /deleted/);
      assert.ok(!existsSync(`${fs2}/sim/etc/vz/conf/1045.conf`));
      assert.ok(!existsSync(R1) && !existsSync(`${fs1}/sim/etc/vz/conf/1045.conf`));
    } finally {
      for (const c of cleanups.reverse()) await c().catch(() => {});
    }
  },
});
