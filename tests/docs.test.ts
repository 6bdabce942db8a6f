/**
 * The documents keep telling the truth where that is cheap to check:
 *  - every relative link in the tracked Markdown files resolves to a file of the repository,
 *    and every `#anchor` to a heading of its target (GitHub's heading ids);
 *  - every ```mermaid block starts with a diagram type mermaid knows, and a flowchart's
 *    subgraphs are closed;
 *  - no tracked document names a path of the machine it was written on;
 *  - the failed deploy shown in docs/TROUBLESHOOTING.md is what the oned emulation
 *    (fixtures/oned/driver.ts) and onevz produce for it, run on the demo's simulated node;
 *  - each message the troubleshooting table quotes is one onevz prints (it is in src/ or
 *    remotes/).
 */
import assert from "node:assert/strict";
import { dirname, join, normalize, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { vmLogLines, vmmSsh } from "../fixtures/oned/driver.ts";
import { oneTm } from "../fixtures/oned/tm.ts";
import { prepareFrontEnd, VMID } from "../fixtures/demo/frontend.ts";
import { createWorld, initNodes, installOnevz, onNode } from "../fixtures/demo/world.ts";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const TROUBLESHOOTING = join(REPO, "docs/TROUBLESHOOTING.md");

/** The Markdown files git tracks (every .md outside node_modules when git is not there). */
async function trackedDocs(): Promise<string[]> {
  try {
    const out = await new Deno.Command("git", {
      args: ["ls-files", "-z", "--", "*.md"],
      cwd: REPO,
      stdout: "piped",
      stderr: "null",
    }).output();
    if (out.code === 0) {
      const names = new TextDecoder().decode(out.stdout).split("\0").filter((n) => n);
      // New documents not yet added count too.
      const untracked = await new Deno.Command("git", {
        args: ["ls-files", "-z", "--others", "--exclude-standard", "--", "*.md"],
        cwd: REPO,
        stdout: "piped",
        stderr: "null",
      }).output();
      names.push(...new TextDecoder().decode(untracked.stdout).split("\0").filter((n) => n));
      return [...new Set(names)].sort();
    }
  } catch { /* no git */ }
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of Deno.readDirSync(d)) {
      if (e.name === "node_modules" || e.name === ".git") continue;
      const p = join(d, e.name);
      if (e.isDirectory) walk(p);
      else if (e.name.endsWith(".md")) found.push(relative(REPO, p));
    }
  };
  walk(REPO);
  return found.sort();
}

/** Markdown without its fenced code blocks and inline code spans (links there are text). */
function prose(md: string): string {
  return md.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "").replace(/`[^`\n]*`/g, "");
}

/** GitHub's heading ids: lower case, punctuation dropped, blanks to hyphens, -1 … on repeats. */
export function headingIds(md: string): Set<string> {
  const ids = new Set<string>();
  const seen = new Map<string, number>();
  const text = md.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "");
  for (const m of text.matchAll(/^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$/gm)) {
    const base = m[1].replace(/`/g, "").replace(/<[^>]+>/g, "").replace(
      /\[([^\]]*)\]\([^)]*\)/g,
      "$1",
    )
      .toLowerCase().replace(/[^\p{L}\p{N}\p{M} _-]/gu, "").replace(/ /g, "-");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    ids.add(n === 0 ? base : `${base}-${n}`);
  }
  return ids;
}

Deno.test("headingIds: GitHub's ids for the README's kinds of headings", () => {
  const ids = headingIds(
    "# onevz — OpenVZ containers\n## 4. The defaults file (vmm_ssh_ovz.conf)\n" +
      "## 6. Check everything: `onevz doctor`\n## Notes\n## Notes\n```\n# not a heading\n```\n",
  );
  assert.deepEqual([...ids], [
    "onevz--openvz-containers",
    "4-the-defaults-file-vmm_ssh_ovzconf",
    "6-check-everything-onevz-doctor",
    "notes",
    "notes-1",
  ]);
});

Deno.test("docs: every relative link and anchor in the tracked Markdown files resolves", async () => {
  const docs = await trackedDocs();
  assert.ok(docs.includes("README.md") && docs.includes("docs/ARCHITECTURE.md"), docs.join(" "));
  const broken: string[] = [];
  let checked = 0;
  for (const doc of docs) {
    const md = await Deno.readTextFile(join(REPO, doc));
    for (const m of prose(md).matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      const target = m[1];
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:, …
      checked++;
      const [path, anchor] = target.split("#", 2) as [string, string | undefined];
      const file = path === "" ? join(REPO, doc) : normalize(join(REPO, dirname(doc), path));
      const inRepo = relative(REPO, file);
      if (inRepo.startsWith("..")) {
        broken.push(`${doc}: ${target} leaves the repository`);
        continue;
      }
      let st: Deno.FileInfo;
      try {
        st = await Deno.stat(file);
      } catch {
        broken.push(`${doc}: ${target} (no ${inRepo})`);
        continue;
      }
      if (anchor !== undefined) {
        if (!st.isFile || !file.endsWith(".md")) {
          broken.push(`${doc}: ${target} (an anchor in a file that is not Markdown)`);
        } else if (!headingIds(await Deno.readTextFile(file)).has(anchor)) {
          broken.push(`${doc}: ${target} (no heading #${anchor} in ${inRepo})`);
        }
      }
    }
  }
  assert.ok(checked > 20, `only ${checked} links found`);
  assert.deepEqual(broken, []);
});

const MERMAID_TYPES = [
  "flowchart",
  "graph",
  "sequenceDiagram",
  "classDiagram",
  "stateDiagram",
  "stateDiagram-v2",
  "erDiagram",
  "journey",
  "gantt",
  "pie",
  "gitGraph",
  "mindmap",
  "timeline",
  "quadrantChart",
  "requirementDiagram",
  "sankey-beta",
  "xychart-beta",
  "block-beta",
];

/** Problems of one mermaid block: its type header, and for flowcharts subgraph/end balance. */
export function mermaidProblems(block: string): string[] {
  const lines = block.split("\n").map((l) => l.trim());
  let i = 0;
  if (lines[0] === "---") { // front matter (title, config)
    i = lines.indexOf("---", 1) + 1;
    if (i === 0) return ["front matter without its closing ---"];
  }
  while (i < lines.length && (lines[i] === "" || lines[i].startsWith("%%"))) i++;
  const header = lines[i] ?? "";
  const type = header.split(/\s+/)[0];
  if (!MERMAID_TYPES.includes(type)) return [`unknown diagram type in "${header}"`];
  if (type !== "flowchart" && type !== "graph") return [];
  const problems: string[] = [];
  const dir = header.split(/\s+/)[1];
  if (dir !== undefined && !["TB", "TD", "BT", "RL", "LR"].includes(dir)) {
    problems.push(`unknown flowchart direction ${dir}`);
  }
  let depth = 0;
  for (const l of lines.slice(i + 1)) {
    if (/^subgraph\b/.test(l)) depth++;
    else if (l === "end") depth--;
    if (depth < 0) problems.push("an `end` without its subgraph");
    if ((l.match(/"/g) ?? []).length % 2 !== 0) problems.push(`unbalanced quotes: ${l}`);
  }
  if (depth > 0) problems.push(`${depth} subgraph(s) not closed`);
  return problems;
}

Deno.test("mermaidProblems: headers and subgraphs", () => {
  assert.deepEqual(mermaidProblems("flowchart LR\n  subgraph A\n  x --> y\n  end\n"), []);
  assert.deepEqual(mermaidProblems("%% c\nsequenceDiagram\n  a->>b: hi\n"), []);
  assert.equal(mermaidProblems("flowhcart LR\n").length, 1);
  assert.equal(mermaidProblems("flowchart LR\n subgraph A\n x\n").length, 1);
  assert.equal(mermaidProblems("flowchart XY\n").length, 1);
  assert.equal(mermaidProblems('flowchart LR\n a["x]\n').length, 1);
});

Deno.test("docs: every mermaid block is a diagram mermaid knows; the README shows the flow", async () => {
  let blocks = 0;
  const problems: string[] = [];
  for (const doc of await trackedDocs()) {
    const md = await Deno.readTextFile(join(REPO, doc));
    for (const m of md.matchAll(/^```mermaid[ \t]*\n([\s\S]*?)^```[ \t]*$/gm)) {
      blocks++;
      for (const p of mermaidProblems(m[1])) problems.push(`${doc}: ${p}`);
    }
  }
  assert.deepEqual(problems, []);
  const readme = await Deno.readTextFile(join(REPO, "README.md"));
  assert.ok(/^```mermaid/m.test(readme), "README.md has the flow diagram");
  assert.ok(blocks >= 2, `${blocks} mermaid blocks`);
});

Deno.test("docs: no tracked document names a path of the machine it was written on", async () => {
  const found: string[] = [];
  for (const doc of await trackedDocs()) {
    const md = await Deno.readTextFile(join(REPO, doc));
    md.split("\n").forEach((line, i) => {
      if (/(^|[\s(`'"=:])\/work\//.test(line) || /\]\(\.\.\/shared\//.test(line)) {
        found.push(`${doc}:${i + 1}: ${line.trim()}`);
      }
    });
  }
  assert.deepEqual(found, []);
});

// ---------------------------------------------------------------------------------------------
// The failed deploy of docs/TROUBLESHOOTING.md

/** The fenced block that follows `<!-- generated: NAME -->` in a document. */
function generatedBlock(md: string, name: string): string | undefined {
  const at = md.indexOf(`<!-- generated: ${name} -->`);
  if (at < 0) return undefined;
  const m = /```[^\n]*\n([\s\S]*?)\n```/.exec(md.slice(at));
  return m?.[1];
}

Deno.test({
  name: "TROUBLESHOOTING: the failed deploy is what the drivers and onevz say for it",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const md = await Deno.readTextFile(TROUBLESHOOTING);
    const dir = await Deno.makeTempDir({ prefix: "onevz-docs-" });
    try {
      const w = await createWorld(dir);
      await initNodes(w);
      await installOnevz(w);
      const fe = await prepareFrontEnd(w);
      // The seed's own template has `FIREWALLl`: warnings, which follow the reason.
      const xml = fe.deploymentText.replace(/<(\/?)FIREWALL>/g, "<$1FIREWALLL>");
      assert.notEqual(xml, fe.deploymentText);
      // The host's first monitoring (one_im_ssh) copied the remotes to the node.
      await w.site.copyRemotes(w.site.frontRemotes, "cn1");
      const prolog = await oneTm(VMID, fe.prolog, w.tmConf, { env: w.env });
      assert.equal(prolog.result, "SUCCESS", prolog.message);
      // A container that already has CTID 1045 (made by hand, or by an older driver).
      const other = await onNode(
        w,
        "cn1",
        "vzctl --quiet create 1045 --ostemplate centos-6-x86_64 --layout simfs",
      );
      assert.equal(other.code, 0, other.stderr);
      const r = await vmmSsh(w.site, "cn1", "deploy", [fe.remoteDeployment], xml, { vid: VMID });
      assert.equal(r.result, "FAILURE", r.reply);

      // As the seed's oned.conf has them: VM_DIR=/vz/one/vm, SCRIPTS_REMOTE_DIR=/vz/one/scripts.
      const seedPaths = (s: string) =>
        s.replaceAll(w.remoteDir, "/vz/one/scripts").replaceAll(w.vmDir, "/vz/one/vm/")
          .replaceAll(w.simRoot, "");
      const driver = [...r.log.map((l) => `LOG - ${VMID} ${l}`), r.reply].map(seedPaths);
      const vmLog = vmLogLines("deploy", r).map(seedPaths);
      assert.match(driver.at(-1)!, /^DEPLOY FAILURE 45 onevz: CTID 1045 is already used/);
      assert.equal(
        generatedBlock(md, "failed-deploy-driver"),
        driver.join("\n"),
        `docs/TROUBLESHOOTING.md's failed-deploy-driver block should read:\n${driver.join("\n")}`,
      );
      assert.equal(
        generatedBlock(md, "failed-deploy-vmlog"),
        vmLog.join("\n"),
        `docs/TROUBLESHOOTING.md's failed-deploy-vmlog block should read:\n${vmLog.join("\n")}`,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("TROUBLESHOOTING: each message the table of common failures quotes is onevz's", async () => {
  const md = await Deno.readTextFile(TROUBLESHOOTING);
  const section = md.slice(md.indexOf("## Common failures"));
  assert.ok(section.length < md.length, "a section '## Common failures'");
  const rows = section.split("\n").filter((l) => /^\|/.test(l)).slice(2); // skip header, rule
  assert.ok(rows.length >= 10, `${rows.length} rows`);
  let source = await Deno.readTextFile(join(REPO, "main.ts"));
  for (const top of ["src", "remotes"]) {
    const walk = async (d: string) => {
      for await (const e of Deno.readDir(d)) {
        const p = join(d, e.name);
        if (e.isDirectory) await walk(p);
        else source += await Deno.readTextFile(p) + "\n";
      }
    };
    await walk(join(REPO, top));
  }
  const missing: string[] = [];
  for (const row of rows) {
    const said = row.split("|")[1];
    const quotes = [...said.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
    assert.ok(quotes.length > 0, `no quoted message in: ${row}`);
    for (const q of quotes) if (!source.includes(q)) missing.push(q);
  }
  assert.deepEqual(
    missing,
    [],
    "quoted in the table but printed nowhere in main.ts, src/ or remotes/",
  );
});
