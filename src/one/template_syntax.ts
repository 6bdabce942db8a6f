/**
 * OpenNebula template syntax, as `onevm create` reads a VM template and as vmm_ssh_ovz.conf
 * (the driver's defaults file) is written, and the one entry point that reads either form of
 * a template: this syntax (an operator's `vps145.one`) or XML (a deployment file, or the
 * full `<VM>` document of `onevm show -x`).
 *
 * Syntax (what OpenNebula 2.2.1's template parser accepts):
 *   NAME = value                 an unquoted word
 *   NAME = "text"                quoted, may span lines; \" is a quote, \\ a backslash
 *   NAME = [ K = v, K2 = "v" ]   a vector; may span lines
 *   # comment                    to the end of the line, outside quotes
 * Names and vector keys are case-insensitive and upper-cased. Variables (`$NAME`,
 * `$NETWORK[DNS, NAME="Public"]`) are kept as text: oned substitutes them at `onevm create`
 * (src/one/oned.ts does the same for `onevz plan`).
 */
import { InvalidInputError } from "../cli/errors.ts";
import {
  addValue,
  emptyDoc,
  MAX_TEMPLATE_BYTES,
  parseTemplateXml,
  type TemplateDoc,
  type Vector,
} from "./template.ts";

interface Tok {
  kind: "word" | "string" | "=" | "[" | "]" | ",";
  text: string;
  line: number;
}

function lex(text: string, file: string): Tok[] {
  const toks: Tok[] = [];
  let line = 1;
  let i = 0;
  const fail = (msg: string): never => {
    throw new InvalidInputError(`${file}:${line}: ${msg}`);
  };
  while (i < text.length) {
    const c = text[i];
    if (c === "\n") {
      line++;
      i++;
    } else if (/\s/.test(c)) {
      i++;
    } else if (c === "#") {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (c === "=" || c === "[" || c === "]" || c === ",") {
      toks.push({ kind: c, text: c, line });
      i++;
    } else if (c === '"') {
      const start = line;
      let s = "";
      i++;
      for (;;) {
        if (i >= text.length) {
          line = start;
          fail("unterminated quoted value");
        }
        const d = text[i];
        if (d === "\\" && (text[i + 1] === '"' || text[i + 1] === "\\")) {
          s += text[i + 1];
          i += 2;
        } else if (d === '"') {
          i++;
          break;
        } else {
          if (d === "\n") line++;
          if (d === "\0") fail("NUL in quoted value");
          s += d;
          i++;
        }
      }
      toks.push({ kind: "string", text: s, line: start });
    } else {
      let s = "";
      while (i < text.length && !/[\s=\[\],"#]/.test(text[i])) s += text[i++];
      if (s === "") fail(`unexpected character ${JSON.stringify(c)}`);
      toks.push({ kind: "word", text: s, line });
    }
  }
  return toks;
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parse template syntax into a TemplateDoc. `file` names the source in error messages. */
export function parseTemplateText(text: string, file = "template"): TemplateDoc {
  const toks = lex(text, file);
  const doc = emptyDoc();
  let p = 0;
  const fail = (t: Tok | undefined, msg: string): never => {
    throw new InvalidInputError(`${file}:${t?.line ?? "end"}: ${msg}`);
  };
  const expect = (kind: Tok["kind"], what: string): Tok => {
    const t = toks[p];
    if (!t || t.kind !== kind) {
      fail(t, `expected ${what}, found ${t ? JSON.stringify(t.text) : "end of file"}`);
    }
    p++;
    return t;
  };
  while (p < toks.length) {
    const nameTok = expect("word", "an attribute name");
    if (!NAME_RE.test(nameTok.text)) {
      fail(nameTok, `bad attribute name ${JSON.stringify(nameTok.text)}`);
    }
    expect("=", `'=' after ${nameTok.text}`);
    const t = toks[p];
    if (t && (t.kind === "word" || t.kind === "string")) {
      p++;
      addValue(doc, nameTok.text, t.text);
    } else if (t && t.kind === "[") {
      p++;
      const vec: Vector = {};
      while (toks[p]?.kind !== "]") {
        const k = expect("word", `a key in ${nameTok.text.toUpperCase()} = [ … ]`);
        if (!NAME_RE.test(k.text)) fail(k, `bad key ${JSON.stringify(k.text)}`);
        expect("=", `'=' after ${k.text}`);
        const v = toks[p];
        if (!v || (v.kind !== "word" && v.kind !== "string")) {
          fail(v, `expected a value for ${k.text}`);
        }
        p++;
        vec[k.text.toUpperCase()] = v!.text;
        if (toks[p]?.kind === ",") p++;
        else if (toks[p]?.kind !== "]") {
          fail(toks[p], `expected ',' or ']' in ${nameTok.text.toUpperCase()}`);
        }
      }
      p++;
      addValue(doc, nameTok.text, vec);
    } else {
      fail(t, `expected a value for ${nameTok.text}`);
    }
  }
  return doc;
}

export type TemplateSyntax = "xml" | "template";

/**
 * Read a template in either syntax: a document whose first character (after blanks and a
 * byte-order mark) is `<` is XML, anything else OpenNebula template syntax.
 */
export function parseTemplate(
  text: string,
  file = "template",
): { doc: TemplateDoc; syntax: TemplateSyntax } {
  const body = text.replace(/^\uFEFF/, "");
  if (body.trimStart().startsWith("<")) return { doc: parseTemplateXml(body), syntax: "xml" };
  if (body.length > MAX_TEMPLATE_BYTES) {
    throw new InvalidInputError(`${file}: template is larger than 4 MiB`);
  }
  if (body.trim() === "") throw new InvalidInputError(`${file}: empty template`);
  return { doc: parseTemplateText(body, file), syntax: "template" };
}
