/**
 * A tolerant reader for oned.conf (and $ONE_LOCATION/var/config): `NAME = value`,
 * `NAME = "text"` and `NAME = [ k = v, … ]`, `#` comments outside quotes. Pure. Unlike the
 * strict template parser it never throws: doctor must report on broken files, not crash.
 */

export interface OnedConf {
  /** Upper-case name → single values, in order. */
  attrs: Map<string, string[]>;
  /** Upper-case name → vectors (keys lower-cased, values as written). */
  vectors: Map<string, Record<string, string>[]>;
}

type Tok = { kind: "word" | "string" | "=" | "[" | "]" | ","; text: string };

function lex(text: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (/\s/.test(c)) i++;
    else if (c === "#") {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (c === "=" || c === "[" || c === "]" || c === ",") {
      toks.push({ kind: c, text: c });
      i++;
    } else if (c === '"') {
      let s = "";
      i++;
      while (i < text.length && text[i] !== '"') {
        if (text[i] === "\\" && (text[i + 1] === '"' || text[i + 1] === "\\")) i++;
        s += text[i++];
      }
      i++;
      toks.push({ kind: "string", text: s });
    } else {
      let s = "";
      while (i < text.length && !/[\s=\[\],"#]/.test(text[i])) s += text[i++];
      toks.push({ kind: "word", text: s });
    }
  }
  return toks;
}

export function parseOnedConf(text: string): OnedConf {
  const conf: OnedConf = { attrs: new Map(), vectors: new Map() };
  const toks = lex(text);
  let p = 0;
  const isValue = (t?: Tok) => t !== undefined && (t.kind === "word" || t.kind === "string");
  while (p < toks.length) {
    const name = toks[p];
    if (name.kind !== "word" || toks[p + 1]?.kind !== "=") {
      p++;
      continue;
    }
    const key = name.text.toUpperCase();
    p += 2;
    if (toks[p]?.kind === "[") {
      p++;
      const vec: Record<string, string> = {};
      while (p < toks.length && toks[p].kind !== "]") {
        const k = toks[p];
        if (k.kind === "word" && toks[p + 1]?.kind === "=") {
          const v = toks[p + 2];
          if (isValue(v)) {
            vec[k.text.toLowerCase()] = v.text.trim();
            p += 3;
            continue;
          }
          vec[k.text.toLowerCase()] = "";
          p += 2;
          continue;
        }
        p++;
      }
      p++;
      const list = conf.vectors.get(key) ?? [];
      list.push(vec);
      conf.vectors.set(key, list);
    } else if (isValue(toks[p])) {
      const list = conf.attrs.get(key) ?? [];
      list.push(toks[p].text.trim());
      conf.attrs.set(key, list);
      p++;
    }
  }
  return conf;
}

/** The last value of a single attribute (oned keeps the last one). */
export function attr(conf: OnedConf, name: string): string | undefined {
  const list = conf.attrs.get(name.toUpperCase());
  return list?.[list.length - 1];
}

/** The vector of a section with the given `name` key (e.g. VM_MAD named vmm_ovz). */
export function namedVector(
  conf: OnedConf,
  section: string,
  name: string,
): Record<string, string> | undefined {
  return (conf.vectors.get(section.toUpperCase()) ?? []).find((v) => v.name === name);
}
