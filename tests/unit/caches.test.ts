// The node's image caches: which entries pruning removes (pure), the placed template names
// (unique per content, still found by vzctl's distribution lookup), the bounds' settings, the
// file facts' parsing and the path-safety rules, and the tar stream tm-context writes.
import assert from "node:assert/strict";
import {
  type CacheItem,
  chooseEvictions,
  formatBytes,
  PLACED_TEMPLATE,
  placedTemplateName,
} from "../../src/ovz/caches.ts";
import { parseDriverConfig } from "../../src/one/config.ts";
import {
  dirProblem,
  fileProblem,
  type FileStat,
  parseStatLine,
  type PathFacts,
} from "../../src/host/files.ts";
import { contextPolicy, contextSources, tarHeader } from "../../src/actions/tm/context.ts";
import { makeSimNode, makeTemplateTarball, run } from "../helpers/simnode.ts";

const item = (name: string, size: number, lastUse: number, inUse = false): CacheItem => ({
  name,
  size,
  ino: name,
  lastUse,
  inUse,
  paths: [`/c/${name}`],
});
const NOW = 100 * 86400;
const names = (xs: CacheItem[]) => xs.map((x) => x.name);

Deno.test("caches: least recently used first, by age, never in use, never just used", () => {
  const items = [
    item("new", 10, NOW - 60), // used a minute ago: within the grace period
    item("old", 10, NOW - 40 * 86400),
    item("mid", 10, NOW - 5 * 86400),
    item("recent", 10, NOW - 2 * 86400),
    item("linked", 10, NOW - 90 * 86400, true),
  ];
  const l = { items, now: NOW };
  assert.deepEqual(names(chooseEvictions(l, {})), [], "no bounds: nothing removed");
  assert.deepEqual(names(chooseEvictions(l, { maxAgeDays: 30 })), ["old"]);
  // 50 bytes, room for 25: oldest unused first, until the bound holds.
  assert.deepEqual(names(chooseEvictions(l, { maxBytes: 25 })), ["old", "mid", "recent"]);
  assert.deepEqual(names(chooseEvictions(l, { maxBytes: 40 })), ["old"]);
  // In use and just used stay even when the bound cannot be met.
  assert.deepEqual(names(chooseEvictions(l, { maxBytes: 0 })), ["old", "mid", "recent"]);
  assert.deepEqual(
    names(chooseEvictions(l, { maxBytes: 0, graceSeconds: 0 })),
    ["old", "mid", "recent", "new"],
  );
  assert.deepEqual(names(chooseEvictions(l, { maxBytes: 0 }, new Set(["mid"]))), [
    "old",
    "recent",
  ]);
  assert.deepEqual(names(chooseEvictions(l, { maxAgeDays: 3, maxBytes: 25 })), [
    "old",
    "mid",
    "recent",
  ]);
  assert.equal(formatBytes(20 * 2 ** 30), "20 GB");
  assert.equal(formatBytes(1536), "1.5 KB");
});

Deno.test("caches: placed names are unique per content and keep the distribution prefix", async () => {
  const d = "0123456789abcdef".repeat(4);
  assert.equal(placedTemplateName("centos-6-x86_64", d), "centos-6-x86_64-onevz-0123456789ab");
  assert.ok(PLACED_TEMPLATE.test("centos-6-x86_64-onevz-0123456789ab.tar.gz"));
  assert.ok(!PLACED_TEMPLATE.test("centos-6-x86_64.tar.gz"));
  // vzctl strips `-suffix` parts until dists/<prefix>.conf exists (openvz-tools.md): the
  // simulator does the same, so the placed name finds centos.conf like the plain one.
  const node = await makeSimNode({ templates: [] });
  try {
    const cache = `${node.root}/vz/template/cache`;
    await Deno.mkdir(cache, { recursive: true });
    for (
      const [ctid, name, warned] of [[201, "centos-6-x86_64-onevz-0123456789ab", false], [
        202,
        "nodist-6-onevz-0123456789ab",
        true,
      ]] as const
    ) {
      await Deno.writeFile(`${cache}/${name}.tar.gz`, await makeTemplateTarball("gz"));
      const r = await node.tool("vzctl", [
        "create",
        String(ctid),
        "--ostemplate",
        name,
        "--private",
        `${node.dir}/p${ctid}`,
        "--root",
        `${node.dir}/r${ctid}`,
        "--layout",
        "simfs",
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(/configuration file for distribution .* not found/.test(r.stdout), warned);
    }
  } finally {
    await node.cleanup();
  }
});

Deno.test("caches: bounds and context directories in the defaults file", () => {
  const c = parseDriverConfig(null);
  assert.deepEqual(c.caches.image, {
    maxBytes: 20 * 2 ** 30,
    maxAgeDays: 30,
    graceSeconds: 600,
  });
  assert.equal(c.contextFilesDirs, undefined);
  const s = parseDriverConfig(
    'ONEVZ = [ IMAGE_CACHE_MAX_SIZE = "512M", IMAGE_CACHE_MAX_AGE = "unlimited", ' +
      'TEMPLATE_CACHE_MAX_SIZE = "64K", CACHE_GRACE_MINUTES = "0", ' +
      'CONTEXT_FILES_DIRS = "/srv/one/context  /srv/more" ]',
  );
  assert.equal(s.caches.image.maxBytes, 512 * 2 ** 20);
  assert.equal(s.caches.image.maxAgeDays, undefined);
  assert.equal(s.caches.template.maxBytes, 64 * 1024);
  assert.equal(s.caches.template.graceSeconds, 0);
  assert.deepEqual(s.contextFilesDirs, ["/srv/one/context", "/srv/more"]);
  for (
    const [bad, why] of [
      ['IMAGE_CACHE_MAX_SIZE = "lots"', /ONEVZ\/IMAGE_CACHE_MAX_SIZE: must be a size/],
      ['TEMPLATE_CACHE_MAX_AGE = "-1"', /ONEVZ\/TEMPLATE_CACHE_MAX_AGE/],
      ['CONTEXT_FILES_DIRS = "relative/dir"', /ONEVZ\/CONTEXT_FILES_DIRS: must be absolute/],
    ]
  ) assert.throws(() => parseDriverConfig(`ONEVZ = [ ${bad} ]`), why as RegExp);
});

const dirStat = (path: string, mode: number, uid = 0): FileStat => ({
  path,
  type: "directory",
  mode,
  uid,
  ino: "1",
  size: 4096,
  mtime: "1",
  ctime: "1",
  nlink: 2,
});
function facts(uid: number, dirs: FileStat[], real: [string, string][] = []): PathFacts {
  return {
    uid,
    stats: new Map(dirs.map((d) => [d.path, d])),
    real: new Map(real),
    lines: new Map(),
    entries: new Map(),
  };
}

Deno.test("files: stat lines, and who could replace what lies below a directory", () => {
  const st = parseStatLine("f 444 1001 12 345 1700000000.5 1700000001.25 2 /a b/c")!;
  assert.deepEqual([st.type, st.mode, st.uid, st.size, st.nlink, st.path], [
    "file",
    0o444,
    1001,
    345,
    2,
    "/a b/c",
  ]);
  assert.equal(parseStatLine("p 644 0 1 0 1 1 1 /x")!.type, "fifo");
  const base = [dirStat("/", 0o755), dirStat("/vz", 0o755)];
  const ok = facts(500, [...base, dirStat("/vz/vm", 0o755, 500)]);
  assert.equal(dirProblem("/vz/vm", ok, "x"), undefined);
  assert.match(
    dirProblem("/vz/vm", facts(500, [...base, dirStat("/vz/vm", 0o777, 500)]), "x")!,
    /writable by every user \(mode 0777\): run chmod go-w \/vz\/vm/,
  );
  assert.match(
    dirProblem("/vz/vm", facts(500, [...base, dirStat("/vz/vm", 0o775, 500)]), "x")!,
    /writable by its group/,
  );
  assert.match(
    dirProblem("/vz/vm", facts(500, [...base, dirStat("/vz/vm", 0o755, 777)]), "x")!,
    /belongs to uid 777/,
  );
  // A sticky directory above (/tmp) is fine; the directory holding the files is not.
  const tmp = facts(0, [dirStat("/", 0o755), dirStat("/tmp", 0o1777), dirStat("/tmp/n", 0o700)]);
  assert.equal(dirProblem("/tmp/n", tmp, "x"), undefined);
  assert.match(dirProblem("/tmp", tmp, "x")!, /writable by every user/);
  assert.match(dirProblem("/vz/vm", facts(0, base), "x")!, /does not exist/);
  // Through a link: the resolved path is checked too.
  const linked = facts(0, [
    dirStat("/", 0o755),
    { ...dirStat("/vz", 0o777), type: "symlink" },
    dirStat("/vz/vm", 0o755),
    dirStat("/data", 0o777),
    dirStat("/data/vm", 0o755),
  ], [["/vz/vm", "/data/vm"]]);
  assert.match(dirProblem("/vz/vm", linked, "x")!, /\/data \(on the path of x\) is writable/);
  const file = { ...dirStat("/f", 0o644), type: "file" as const };
  assert.equal(fileProblem(file, { uid: 0 }, "f"), undefined);
  assert.match(fileProblem({ ...file, mode: 0o666 }, { uid: 0 }, "f")!, /writable by other users/);
  assert.match(fileProblem({ ...file, uid: 9 }, { uid: 0 }, "f")!, /belongs to uid 9/);
  assert.match(fileProblem({ ...file, type: "fifo" }, { uid: 0 }, "f")!, /FIFO/);
});

Deno.test("tm-context: the tar stream GNU tar reads, and the checks before it", async () => {
  const d = await Deno.makeTempDir({ prefix: "onevz-ctx-unit-" });
  try {
    const body = new TextEncoder().encode("hello\n");
    const tar = new Uint8Array(512 + 512 + 1024);
    tar.set(tarHeader("init.sh", body.length, 1700000000), 0);
    tar.set(body, 512);
    await Deno.writeFile(`${d}/t.tar`, tar);
    const list = await run("tar", ["-tvf", `${d}/t.tar`]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^-rw-r--r-- root\/root\s+6 .* \.\/init\.sh$/m);
    await Deno.mkdir(`${d}/ok`);
    await Deno.mkdir(`${d}/home/.ssh`, { recursive: true });
    await Deno.writeTextFile(`${d}/ok/a`, "a");
    await Deno.writeTextFile(`${d}/home/.ssh/id_rsa`, "k");
    await Deno.symlink(`${d}/home/.ssh/id_rsa`, `${d}/ok/key`);
    const env = (k: string) =>
      ({ HOME: `${d}/home`, ONE_LOCATION: `${d}/one` } as Record<string, string>)[k];
    const policy = contextPolicy(env, [`${d}/ok`]);
    assert.deepEqual(
      contextSources([`${d}/ok/a`], policy, "5").map((s) => s.name),
      ["a"],
    );
    assert.throws(() => contextSources([`${d}/ok/key`], policy, "5"), /symbolic link to .*\.ssh/);
    assert.throws(() => contextSources([`${d}/ok/../home/.ssh/id_rsa`], policy, "5"), /\.ssh/);
    assert.throws(
      () => contextSources([`${d}/ok/a`, `${d}/ok/../ok/a`], policy, "5"),
      /share the name 'a'/,
    );
    assert.throws(() => contextSources(["relative"], policy, "5"), /not an absolute path/);
    assert.deepEqual(contextPolicy(() => undefined, undefined).allowed, ["/usr/share/one/context"]);
    assert.deepEqual(contextPolicy(env, undefined).allowed, [`${d}/one/share/context`]);
  } finally {
    await Deno.remove(d, { recursive: true });
  }
});
