/**
 * One defaults file for every reader: deploy, the TM and plan look for vmm_ssh_ovz.conf in the
 * same order (ONEVZ_DEFAULTS; the remotes tree's copy; the installed file), and a file that is
 * named but missing, or there but unreadable, is an error, never a silent switch to the built-in
 * defaults (other CTIDs, other limits than the operator wrote).
 */
import assert from "node:assert/strict";
import { makeSimNode, makeTemplateTarball, REPO, run, type SimNode } from "./helpers/simnode.ts";
import { loadFrontEndConfig } from "../src/actions/tm/common.ts";
import type { CommandContext } from "../src/cli/context.ts";

// The seed's vps145 without its CONTEXT (no tm-context step in these tests).
const VPS145 = (await Deno.readTextFile(`${REPO}/fixtures/templates/vps145.xml`))
  .replace(/<CONTEXT>.*<\/CONTEXT>/s, "");

async function prolog(node: SimNode, vmid: number) {
  const images = `${node.vmDir}${vmid}/images`;
  await Deno.mkdir(images, { recursive: true });
  await Deno.writeFile(`${images}/disk.0`, await makeTemplateTarball("bz2"));
  return images;
}

/** `onevz plan` with exactly this environment (nothing of the machine's ONE settings). */
async function plan(env: Record<string, string>, file: string) {
  return await run(
    `${REPO}/node_modules/.bin/deno`,
    ["run", "-A", "--quiet", `${REPO}/main.ts`, "plan", file],
    { env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", NO_COLOR: "1", ...env } },
  );
}

/** A node whose env has no ONEVZ_DEFAULTS and a ONE_LOCATION of its own. */
async function nodeWithoutExplicitDefaults() {
  const node = await makeSimNode({ flavour: "ubc" });
  delete node.env.ONEVZ_DEFAULTS;
  node.env.ONE_LOCATION = `${node.dir}/one`;
  return node;
}

Deno.test("defaults: ONEVZ_DEFAULTS naming a missing file stops deploy and plan, nothing changed", async () => {
  const node = await makeSimNode({ flavour: "ubc" });
  try {
    const images = await prolog(node, 45);
    const missing = `${node.dir}/typo/vmm_ssh_ovz.conf`;
    node.env.ONEVZ_DEFAULTS = missing;
    const before = await node.snapshot();
    const r = await node.action("deploy", [`${images}/deployment.0`], VPS145);
    assert.equal(r.code, 1, r.stdout);
    assert.equal(r.stdout, "", "no CTID on stdout");
    assert.match(r.stderr.split("\n")[0], new RegExp(`defaults file ${missing}.*ONEVZ_DEFAULTS`));
    assert.deepEqual(await node.snapshot(), before);
    // plan says the same instead of showing another file's settings.
    const p = await plan(
      { ONEVZ_DEFAULTS: missing, ONE_LOCATION: `${node.dir}/one` },
      `${REPO}/fixtures/templates/vps145.xml`,
    );
    assert.equal(p.code, 1, p.stdout);
    assert.match(p.stderr, new RegExp(`defaults file ${missing}.*ONEVZ_DEFAULTS`));
  } finally {
    await node.cleanup();
  }
});

Deno.test("defaults: a defaults file that cannot be read stops deploy instead of built-in defaults", async () => {
  const node = await makeSimNode({ flavour: "ubc" });
  try {
    const images = await prolog(node, 45);
    // A directory in its place: unreadable for root too (the suite runs as root).
    const unreadable = `${node.dir}/vmm_ssh_ovz.conf`;
    await Deno.mkdir(unreadable);
    node.env.ONEVZ_DEFAULTS = unreadable;
    const before = await node.snapshot();
    const r = await node.action("deploy", [`${images}/deployment.0`], VPS145);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr.split("\n")[0], /cannot read the defaults file/);
    assert.deepEqual(await node.snapshot(), before);
  } finally {
    await node.cleanup();
  }
});

Deno.test("defaults: plan shows the file deploy uses when the remotes copy and the installed file differ", async () => {
  const node = await nodeWithoutExplicitDefaults();
  try {
    const remotes = `${node.dir}/remotes`;
    await Deno.mkdir(`${remotes}/vmm/ovz`, { recursive: true });
    await Deno.writeTextFile(
      `${remotes}/vmm/ovz/vmm_ssh_ovz.conf`,
      "ONEVZ = [ CTID_OFFSET = 3000 ]\n",
    );
    await Deno.mkdir(`${node.dir}/one/etc/vmm_ssh`, { recursive: true });
    await Deno.writeTextFile(
      `${node.dir}/one/etc/vmm_ssh/vmm_ssh_ovz.conf`,
      "ONEVZ = [ CTID_OFFSET = 5000 ]\n",
    );
    node.env.ONEVZ_REMOTES = remotes;
    const images = await prolog(node, 45);
    const r = await node.action("deploy", [`${images}/deployment.0`], VPS145);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), "3045", "deploy reads the remotes copy (what scp brought)");
    const p = await plan(
      { ONEVZ_REMOTES: remotes, ONE_LOCATION: `${node.dir}/one` },
      `${REPO}/fixtures/templates/vps145.xml`,
    );
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, new RegExp(`^# defaults: ${remotes}/vmm/ovz/vmm_ssh_ovz\\.conf$`, "m"));
    assert.match(p.stdout, /^vzctl --quiet create 3045 /m);
    // Without the remotes copy both fall back to the installed file.
    await Deno.remove(`${remotes}/vmm/ovz/vmm_ssh_ovz.conf`);
    const p2 = await plan(
      { ONEVZ_REMOTES: remotes, ONE_LOCATION: `${node.dir}/one` },
      `${REPO}/fixtures/templates/vps145.xml`,
    );
    assert.match(p2.stdout, /^vzctl --quiet create 5045 /m);
    await node.tool("vzctl", ["--quiet", "stop", "3045", "--fast"]);
    await node.tool("vzctl", ["--quiet", "destroy", "3045"]);
  } finally {
    await node.cleanup();
  }
});

Deno.test("defaults: the TM refuses a missing ONEVZ_DEFAULTS file instead of the built-in limits", async () => {
  const dir = await Deno.makeTempDir({ prefix: "onevz-defaults-" });
  try {
    const env: Record<string, string> = {
      ONEVZ_DEFAULTS: `${dir}/missing.conf`,
      ONE_LOCATION: dir,
    };
    const ctx = { env: (k: string) => env[k], remotesDir: undefined } as unknown as CommandContext;
    await assert.rejects(loadFrontEndConfig(ctx), /defaults file .*missing\.conf.*ONEVZ_DEFAULTS/);
    // The installed file applies when nothing is named, and names itself.
    delete env.ONEVZ_DEFAULTS;
    await Deno.mkdir(`${dir}/etc/vmm_ssh`, { recursive: true });
    await Deno.writeTextFile(
      `${dir}/etc/vmm_ssh/vmm_ssh_ovz.conf`,
      'ONEVZ = [ CONTEXT_FILES_DIRS = "/srv/ctx" ]\n',
    );
    const { file } = await loadFrontEndConfig(ctx);
    assert.equal(file, `${dir}/etc/vmm_ssh/vmm_ssh_ovz.conf`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
