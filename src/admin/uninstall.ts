/**
 * onevz uninstall [--one-location DIR | --system]: removes what the install manifest lists,
 * restores the files install had moved aside (tm_ssh.conf.orig), takes the onevz block out of
 * oned.conf, and removes the directories install created when they are empty. Files the
 * operator edited since (vmm_ssh_ovz.conf) are left in place and named.
 */
import { createHash } from "node:crypto";
import type { CommandContext } from "../cli/context.ts";
import { OnevzError, UsageError } from "../cli/errors.ts";
import { readManifest } from "./install.ts";
import { type InstallPaths, installPaths, withoutOnedBlock } from "./layout.ts";

async function lexists(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.lstat(path);
  } catch {
    return undefined;
  }
}

export async function uninstall(paths: InstallPaths, say: (line: string) => void) {
  const manifest = await readManifest(paths.manifest);
  if (!manifest) throw new OnevzError(`no onevz install manifest at ${paths.manifest}`);
  const kept: string[] = [];
  for (const f of manifest.files) {
    const st = await lexists(f.path);
    if (!st) continue;
    if (f.kind === "symlink") {
      if (st.isSymlink) await Deno.remove(f.path);
      continue;
    }
    const digest = createHash("sha256").update(await Deno.readFile(f.path)).digest("hex");
    if (digest === f.sha256) await Deno.remove(f.path);
    else kept.push(f.path);
  }
  for (const b of manifest.backups) {
    if (!(await lexists(b.backup))) continue;
    if (await lexists(b.original)) {
      if (kept.includes(b.original)) {
        say(`${b.original} was edited: left it, the original remains at ${b.backup}`);
        continue;
      }
      await Deno.remove(b.original);
    }
    await Deno.rename(b.backup, b.original);
    say(`restored ${b.original}`);
  }
  if (manifest.onedConf && (await lexists(manifest.onedConf))) {
    const text = await Deno.readTextFile(manifest.onedConf);
    const next = withoutOnedBlock(text).replace(/\n\n$/, "\n");
    if (next !== text) {
      await Deno.writeTextFile(manifest.onedConf, next);
      say(`removed the onevz block from ${manifest.onedConf} (restart oned)`);
    }
  }
  await Deno.remove(paths.manifest).catch(() => {});
  // Deepest first; only directories left empty.
  for (const d of [...manifest.dirs].sort((a, b) => b.length - a.length)) {
    try {
      await Deno.remove(d);
    } catch { /* not empty or gone */ }
  }
  for (const k of kept) say(`kept ${k}: edited since install`);
  return { kept };
}

export default async function (ctx: CommandContext): Promise<number> {
  const system = ctx.flags.system === true;
  const flagLoc = ctx.flags["one-location"];
  const loc = typeof flagLoc === "string" ? flagLoc : ctx.env("ONE_LOCATION");
  if (!system && !loc) {
    throw new UsageError("uninstall: --one-location DIR (or $ONE_LOCATION) or --system");
  }
  const paths = installPaths({ system, oneLocation: loc });
  await uninstall(paths, (l) => ctx.io.out(l + "\n"));
  ctx.io.out(`onevz removed from ${system ? "the system" : loc}\n`);
  return 0;
}
