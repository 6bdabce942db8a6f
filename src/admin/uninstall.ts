/**
 * onevz uninstall [--one-location DIR | --system]: removes what the install manifest lists,
 * puts back the exact bytes (and mode) of every file install replaced, edited or moved aside,
 * takes the onevz block out of oned.conf, and removes the directories install created when
 * they are empty. A file changed since install (an edited vmm_ssh_ovz.conf, say) is left in
 * place and named, with the backups that belong to it.
 */
import type { CommandContext } from "../cli/context.ts";
import { OnevzError, UsageError } from "../cli/errors.ts";
import { copyExact, lexists, moveExact, pathSha, sha256, writeAtomic } from "./files.ts";
import { type BackupRecord, readManifest } from "./install.ts";
import { type InstallPaths, installPaths, withoutOnedBlock } from "./layout.ts";

/** The onevz block out of an oned.conf text, without the blank line install put before it. */
function stripBlock(text: string): string {
  const next = withoutOnedBlock(text);
  return next === text ? text : next.replace(/\n\n$/, "\n");
}

export async function uninstall(paths: InstallPaths, say: (line: string) => void) {
  const manifest = await readManifest(paths.manifest);
  if (!manifest) throw new OnevzError(`no onevz install manifest at ${paths.manifest}`);
  const kept: string[] = [];

  // 1. What install wrote, if it is still exactly that.
  for (const f of manifest.files) {
    const current = await pathSha(f.path);
    if (current === undefined) continue;
    const wrote = f.kind === "symlink" ? sha256(`symlink:${f.target}`) : f.sha256;
    if (current === wrote) await Deno.remove(f.path);
    else kept.push(f.path);
  }

  // 2. The files install replaced or moved aside: the oldest backup of each is what was
  //    there before onevz; newer ones (an edited onevz file, replaced again) stay, named.
  const byOriginal = new Map<string, BackupRecord[]>();
  for (const b of manifest.backups) {
    if (b.original === manifest.onedConf && b.change === "edited") continue;
    byOriginal.set(b.original, [...(byOriginal.get(b.original) ?? []), b]);
  }
  for (const [original, list] of byOriginal) {
    const [first, ...later] = list;
    const laterNote = later.length
      ? ` (later versions kept: ${later.map((b) => b.backup).join(", ")})`
      : "";
    if (await lexists(original)) {
      say(
        `${original} changed since install: left it; what was there before is kept at ${
          list.map((b) => b.backup).join(", ")
        }`,
      );
      continue;
    }
    const digest = await pathSha(first.backup);
    if (digest === undefined) {
      say(`the backup ${first.backup} of ${original} is gone: nothing to put back`);
      continue;
    }
    if (first.sha256 !== undefined && digest !== first.sha256) {
      say(`the backup ${first.backup} changed since install: left it, ${original} not restored`);
      continue;
    }
    await moveExact(first.backup, original);
    say(`restored ${original}${laterNote}`);
  }

  // 3. oned.conf: the bytes from before the last --oned-conf edit, if nobody edited it since;
  //    otherwise only the onevz block comes out.
  const conf = manifest.onedConf;
  if (conf && (await lexists(conf))) {
    const text = await Deno.readTextFile(conf);
    const edits = manifest.backups.filter((b) => b.original === conf && b.change === "edited");
    const last = edits.at(-1);
    const lastOk = last !== undefined && (await pathSha(last.backup)) === last.sha256;
    if (last && lastOk && sha256(text) === manifest.onedConfSha) {
      const before = await Deno.readTextFile(last.backup);
      if (stripBlock(before) === before) await copyExact(last.backup, conf);
      else {
        // That backup was taken over an older onevz block: keep the rest of it.
        const mode = ((await Deno.stat(conf)).mode ?? 0o644) & 0o7777;
        await writeAtomic(conf, stripBlock(before), mode);
      }
      await Deno.remove(last.backup);
      const older = edits.slice(0, -1).map((b) => b.backup);
      say(
        `restored ${conf} (restart oned)${
          older.length ? `; earlier copies kept: ${older.join(", ")}` : ""
        }`,
      );
    } else if (stripBlock(text) !== text) {
      const mode = ((await Deno.stat(conf)).mode ?? 0o644) & 0o7777;
      await writeAtomic(conf, stripBlock(text), mode);
      say(
        `removed the onevz block from ${conf} (restart oned); it changed since install, so the ` +
          `rest stays as it is${
            edits.length ? ` (as it was before install: ${edits[0].backup})` : ""
          }`,
      );
    }
  }

  await Deno.remove(paths.manifest).catch(() => {});
  // Deepest first; only directories left empty.
  for (const d of [...manifest.dirs].sort((a, b) => b.length - a.length)) {
    try {
      await Deno.remove(d);
    } catch { /* not empty or gone */ }
  }
  for (const k of kept) say(`kept ${k}: changed since install`);
  return { kept };
}

export default async function (ctx: CommandContext): Promise<number> {
  const system = ctx.flags.system === true;
  const flagLoc = ctx.flags["one-location"];
  const loc = typeof flagLoc === "string" ? flagLoc : ctx.env("ONE_LOCATION");
  if (!system && !loc) {
    throw new UsageError("uninstall: --one-location DIR (or $ONE_LOCATION) or --system");
  }
  let paths: InstallPaths;
  try {
    paths = installPaths({ system, oneLocation: loc });
  } catch (e) {
    throw new UsageError(`uninstall: ${(e as Error).message}`);
  }
  await uninstall(paths, (l) => ctx.io.out(l + "\n"));
  ctx.io.out(`onevz removed from ${system ? "the system" : loc}\n`);
  return 0;
}
