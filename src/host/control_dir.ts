/**
 * The front-end's private per-user runtime directory (ssh control sockets, agentless poll
 * snapshots) and the host names onevz passes to ssh. Kept apart from ssh.ts so that a poll
 * answered from its host's snapshot loads neither the ssh host nor the local one.
 */

/** A host name onevz hands to ssh: no option (leading "-"), no shell or ssh metacharacters. */
export function isValidHostName(name: string): boolean {
  return /^[A-Za-z0-9_.:\[\]-]+$/.test(name) && !name.startsWith("-");
}

/**
 * The per-user directory holding shared control sockets, created 0700. Undefined when it
 * cannot be trusted (a symlink, another owner, open to others): a socket there could be
 * someone else's master.
 */
export function sharedControlDir(): string | undefined {
  const runtime = Deno.env.get("XDG_RUNTIME_DIR");
  // A unix socket path must fit in 108 bytes: %C is 40 characters.
  const base = runtime && runtime.length <= 40 ? runtime : "/tmp";
  const dir = `${base}/onevz-ssh-${Deno.uid()}`;
  // Looked at before it is made: an exception (AlreadyExists) costs a poll ~0.5 ms.
  let st = lstatOrNull(dir);
  if (st === null) {
    try {
      Deno.mkdirSync(dir, { mode: 0o700 });
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) return undefined;
    }
    st = lstatOrNull(dir);
  }
  const private_ = st !== null && st.isDirectory && st.uid === Deno.uid() &&
    ((st.mode ?? 0) & 0o077) === 0;
  return private_ ? dir : undefined;
}

function lstatOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch {
    return null;
  }
}
