// `onevz doctor` reports each node's image caches (src/admin/checks/caches.ts): sizes against
// the defaults file's bounds, entries other users could have written, unsafe directories —
// and the fixes it prints work when run against the node they were printed for.
import assert from "node:assert/strict";
import { type CacheFacts, evaluateCaches } from "../src/admin/checks/caches.ts";
import { runChecks } from "../src/admin/doctor.ts";
import type { CheckResult } from "../src/admin/checks/types.ts";
import type { CacheListing } from "../src/ovz/caches.ts";
import { DENO, REPO_ROOT, startBed } from "./testbed/mod.ts";
import { canRunPrivilegeTests } from "./hardening/least_privilege.ts";

const listing = (sizes: number[], inUse: number, unsafe: string[] = []): CacheListing => ({
  dir: "/vz/one/.onevz-cache",
  now: 0,
  items: sizes.map((size, i) => ({
    name: `e${i}`,
    size,
    ino: `${i}`,
    lastUse: 0,
    inUse: i < inUse,
    paths: [`/vz/one/.onevz-cache/e${i}`],
  })),
  junk: [],
  unsafe,
});
const facts = (image: CacheListing | undefined, maxBytes?: number): CacheFacts => ({
  node: "cn1",
  image,
  imageDir: "/vz/one/.onevz-cache",
  limits: { image: { maxBytes, maxAgeDays: 30 }, template: {} },
  problems: [],
});
const byId = (rs: CheckResult[], id: string) => rs.find((r) => r.id === id)!;

Deno.test("doctor caches: sizes, bounds, entries others could write (pure)", () => {
  const good = byId(
    evaluateCaches(facts(listing([2 ** 20, 2 ** 20], 1), 2 ** 30)),
    "node.caches.image",
  );
  assert.equal(good.status, "ok");
  assert.match(good.message, /2 entries, 2\.0 MB \(1 used by VMs\); bound 1\.0 GB, 30 days/);
  const over = byId(
    evaluateCaches(facts(listing([2 ** 20, 2 ** 20], 2), 2 ** 20)),
    "node.caches.image",
  );
  assert.equal(over.status, "warning");
  assert.match(over.message, /over the bound; every entry is used by a VM/);
  const legacy = byId(
    evaluateCaches(facts(listing([10], 0, ["/vz/one/.onevz-cache/e0"]))),
    "node.caches.image",
  );
  assert.equal(legacy.status, "warning");
  assert.equal(legacy.fix, "ssh cn1 rm -f -- /vz/one/.onevz-cache/e0");
  const none = byId(evaluateCaches(facts(undefined)), "node.caches.image");
  assert.match(none.message, /none yet/);
});

Deno.test({
  name: "doctor caches: on a node, and the printed fixes work there",
  ignore: !canRunPrivilegeTests,
  sanitizeOps: false,
  sanitizeResources: false,
  // The TM, doctor and the fixes it prints log into the node as the bed's driver account
  // (oneadmin, with only the printed sudo rules), the owner of VM_DIR and so of the cache.
  fn: async () => {
    const bed = await startBed({ nodes: [{ name: "cn1" }], frontEnd: false, driverUser: true });
    const driver = bed.driver!;
    await Deno.chown(`${bed.nodes.cn1.fsDir}/vm`, driver.uid, driver.gid);
    const fe = await Deno.makeTempDir({ prefix: "onevz-doctor-caches-" });
    const env = {
      ...bed.env,
      ONEVZ_SSH_CONFIG: driver.sshConfig,
      ONEVZ_VM_DIR: bed.vmDir,
      ONEVZ_FE_NAMES: "fe",
      TMPDIR: fe,
    };
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, Deno.env.get(k)]));
    try {
      for (const [i, vid] of [[1, 5], [2, 6]]) {
        await Deno.writeFile(`${fe}/img${i}`, crypto.getRandomValues(new Uint8Array(50_000)));
        const r = await new Deno.Command(DENO, {
          args: [
            "run",
            "-A",
            "--quiet",
            `${REPO_ROOT}/main.ts`,
            "tm-clone",
            `${fe}/img${i}`,
            `cn1:${bed.vmDir}/${vid}/images/disk.0`,
          ],
          env,
        }).output();
        assert.equal(r.code, 0);
      }
      for (const [k, v] of Object.entries(env)) if (k !== "PATH") Deno.env.set(k, v);
      const check = async () => {
        const rs = await runChecks(
          {
            hosts: ["cn1"],
            frontend: "fn",
            vmDir: bed.vmDir,
            remoteDir: bed.remoteDir,
            skipFrontend: true,
          },
          (k) => Deno.env.get(k),
        );
        return byId(rs, "node.caches.image");
      };
      const fixIt = async (fix: string) => {
        const r = await new Deno.Command("sh", {
          args: ["-c", fix.replace(/^ssh /, `ssh -F '${driver.sshConfig}' `)],
        }).output();
        assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
      };
      const c = await check();
      assert.equal(c.status, "ok", c.message);
      assert.match(c.message, /2 entries, 98 KB \(2 used by VMs\)/);
      // An entry left world-writable by an older onevz: a warning whose fix removes it.
      const cache = `${bed.nodes.cn1.fsDir}/vm/.onevz-cache`;
      assert.equal((await Deno.stat(cache)).uid, driver.uid, "the cache is the driver's");
      const entry = [...Deno.readDirSync(cache)].find((e) => /^[0-9a-f]{64}$/.test(e.name))!;
      await Deno.chmod(`${cache}/${entry.name}`, 0o666);
      const w = await check();
      assert.equal(w.status, "warning", w.message);
      await fixIt(w.fix!);
      assert.equal((await check()).status, "ok");
      // A cache directory anyone can write: a failure whose fix closes it.
      await Deno.chmod(cache, 0o777);
      const f = await check();
      assert.equal(f.status, "failure", f.message);
      assert.match(f.message, /writable by every user/);
      await fixIt(f.fix!);
      assert.equal((await check()).status, "ok");
      const t = byId(
        await runChecks(
          {
            hosts: ["cn1"],
            frontend: "fn",
            vmDir: bed.vmDir,
            remoteDir: bed.remoteDir,
            skipFrontend: true,
          },
          (k) => Deno.env.get(k),
        ),
        "node.caches.template",
      );
      assert.match(t.message, /0 entries|none yet/);
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) Deno.env.delete(k);
        else Deno.env.set(k, v);
      }
      await bed.stop();
      await Deno.remove(fe, { recursive: true });
    }
  },
});
