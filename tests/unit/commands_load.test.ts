/**
 * Every command loads its implementation (src/cli/commands.ts imports them through specifiers
 * made at run time, so that Deno does not pull the whole program into each start). The static
 * imports below also keep every implementation module under `deno check`.
 */
import assert from "node:assert/strict";
import { COMMANDS } from "../../src/cli/commands.ts";
import * as probe from "../../src/actions/im/probe.ts";
import * as clone from "../../src/actions/tm/clone.ts";
import * as context from "../../src/actions/tm/context.ts";
import * as tmDelete from "../../src/actions/tm/delete.ts";
import * as ln from "../../src/actions/tm/ln.ts";
import * as mkimage from "../../src/actions/tm/mkimage.ts";
import * as mkswap from "../../src/actions/tm/mkswap.ts";
import * as mv from "../../src/actions/tm/mv.ts";
import * as cancel from "../../src/actions/vmm/cancel.ts";
import * as deploy from "../../src/actions/vmm/deploy.ts";
import * as migrate from "../../src/actions/vmm/migrate.ts";
import * as poll from "../../src/actions/vmm/poll.ts";
import * as reboot from "../../src/actions/vmm/reboot.ts";
import * as restore from "../../src/actions/vmm/restore.ts";
import * as save from "../../src/actions/vmm/save.ts";
import * as shutdown from "../../src/actions/vmm/shutdown.ts";
import * as doctor from "../../src/admin/doctor.ts";
import * as install from "../../src/admin/install.ts";
import * as plan from "../../src/admin/plan.ts";
import * as uninstall from "../../src/admin/uninstall.ts";

const MODULES: Record<string, unknown> = {
  deploy,
  shutdown,
  cancel,
  save,
  restore,
  migrate,
  poll,
  reboot,
  "im-probe": probe,
  "tm-clone": clone,
  "tm-ln": ln,
  "tm-mv": mv,
  "tm-delete": tmDelete,
  "tm-mkswap": mkswap,
  "tm-mkimage": mkimage,
  "tm-context": context,
  install,
  uninstall,
  doctor,
  plan,
};

Deno.test("commands: each one loads its own implementation module", async () => {
  assert.deepEqual(COMMANDS.map((c) => c.name).sort(), Object.keys(MODULES).sort());
  for (const c of COMMANDS) {
    const loaded = await c.load();
    assert.equal(loaded, MODULES[c.name], `${c.name} loads its module`);
    assert.equal(typeof loaded.default, "function", `${c.name} has a default export`);
  }
});
