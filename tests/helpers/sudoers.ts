/**
 * For privilege tests that take sudo rights away to see what breaks: no sudoers.d file but
 * the test's own may grant rules, or another privilege test running at the same time (the
 * driver account is shared) would mask the breakage. Fails with what to do instead.
 */
import assert from "node:assert/strict";

export async function assertOnlyOurGrants(user: string, ours: string[]): Promise<void> {
  const others: string[] = [];
  for await (const e of Deno.readDir("/etc/sudoers.d")) {
    const path = `/etc/sudoers.d/${e.name}`;
    // sudo skips names with a dot (and README holds only comments).
    if (ours.includes(path) || e.name === "README" || e.name.includes(".")) continue;
    const text = await Deno.readTextFile(path).catch(() => "");
    if (new RegExp(`^\\s*(${user}|%\\S+)\\s+ALL\\s*=`, "m").test(text)) others.push(path);
  }
  assert.deepEqual(
    others,
    [],
    "other sudoers.d files grant rules (a concurrent privilege test?): rerun this test alone",
  );
}
