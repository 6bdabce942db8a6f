/**
 * POSIX path helpers for paths on any host (front-end or node), without loading node:path:
 * the transfer-manager actions start for every line of a transfer script, and node:path costs
 * them a few milliseconds of start-up. Same results as node:path's posix functions, where it
 * has one.
 */

/** Collapse `//`, `.` and `..` (never above the root of an absolute path). */
export function normalize(path: string): string {
  if (path === "") return ".";
  const absolute = path.startsWith("/");
  const out: string[] = [];
  for (const seg of path.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (out.length > 0 && out.at(-1) !== "..") out.pop();
      else if (!absolute) out.push("..");
    } else {
      out.push(seg);
    }
  }
  const body = out.join("/");
  const trailing = path.endsWith("/") ? "/" : "";
  if (absolute) return body === "" ? "/" : `/${body}${trailing}`;
  return (body || ".") + trailing;
}

export function join(...parts: string[]): string {
  const joined = parts.filter((p) => p !== "").join("/");
  return joined === "" ? "." : normalize(joined);
}

export function dirname(path: string): string {
  const p = path.replace(/(?<=.)\/+$/, "");
  const i = p.lastIndexOf("/");
  if (i < 0) return ".";
  if (i === 0) return "/";
  if (i === 1 && p.startsWith("/")) return "//"; // node's answer for `//x`
  return p.slice(0, i);
}

export function basename(path: string): string {
  const p = path.replace(/(?<=.)\/+$/, "");
  return p === "/" ? "" : p.slice(p.lastIndexOf("/") + 1);
}

/**
 * Collapse repeated slashes and drop a trailing one, leaving `.` and `..` alone (oned's paths
 * hold `//`): the form two paths are compared in.
 */
export function squeezeSlashes(p: string): string {
  const s = p.replace(/\/{2,}/g, "/");
  return s.length > 1 ? s.replace(/\/$/, "") : s;
}
