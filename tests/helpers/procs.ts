/** Processes from /proc, for tests and the bench that must find what a process started. */

/** Pids of all descendants of `roots` (one pass over /proc, by parent id); none without /proc. */
export function descendantsOf(roots: readonly number[]): number[] {
  const children = new Map<number, number[]>();
  try {
    for (const e of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(e.name)) continue;
      try {
        const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        const list = children.get(ppid) ?? [];
        list.push(Number(e.name));
        children.set(ppid, list);
      } catch { /* gone */ }
    }
  } catch { /* no /proc */ }
  const out: number[] = [];
  const todo = [...roots];
  while (todo.length) {
    for (const c of children.get(todo.pop()!) ?? []) {
      out.push(c);
      todo.push(c);
    }
  }
  return out;
}

/** Pids of all descendants of `pid`. */
export function descendants(pid: number): number[] {
  return descendantsOf([pid]);
}
