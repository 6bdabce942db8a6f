/**
 * The OpenNebula 2.2.1 template document, as the VMM "xml" deployment file holds it
 * (`<TEMPLATE>…</TEMPLATE>`, single line, CDATA values, ASCII-sorted names) or inside a full
 * `<VM>` document (`onevm show -x`; its TEMPLATE child is used, and its ID kept).
 *
 * Names are upper-cased (oned does the same, also for vector keys); values keep their case and
 * are trimmed (the scheduler test documents pad them with blanks). No DTD, no entity
 * expansion beyond the five XML entities and numeric character references.
 */
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { InvalidInputError } from "../cli/errors.ts";

/** A vector attribute: `NAME = [ KEY = value, … ]`. Keys are upper-case. */
export type Vector = Record<string, string>;
export type AttrValue = string | Vector;

export interface TemplateDoc {
  /** Upper-case attribute name → its values, in document order (names in first-seen order). */
  attributes: Map<string, AttrValue[]>;
  /** `<VM><ID>` when the input was a full VM document. */
  vmId?: number;
}

export const MAX_TEMPLATE_BYTES = 4 * 1024 * 1024;

export function emptyDoc(): TemplateDoc {
  return { attributes: new Map() };
}

/** Append a value to a document (name upper-cased). */
export function addValue(doc: TemplateDoc, name: string, value: AttrValue): void {
  const key = name.toUpperCase();
  const list = doc.attributes.get(key);
  if (list) list.push(value);
  else doc.attributes.set(key, [value]);
}

/** All values of an attribute (empty list when absent). */
export function values(doc: TemplateDoc, name: string): AttrValue[] {
  return doc.attributes.get(name.toUpperCase()) ?? [];
}

/** The first single (string) value of an attribute, undefined when absent or a vector. */
export function single(doc: TemplateDoc, name: string): string | undefined {
  const v = values(doc, name).find((x) => typeof x === "string");
  return v as string | undefined;
}

/** The vector values of an attribute, in document order. */
export function vectors(doc: TemplateDoc, name: string): Vector[] {
  return values(doc, name).filter((x): x is Vector => typeof x !== "string");
}

/** Deep copy (vectors are copied too). */
export function cloneDoc(doc: TemplateDoc): TemplateDoc {
  const out: TemplateDoc = { attributes: new Map(), vmId: doc.vmId };
  for (const [k, list] of doc.attributes) {
    out.attributes.set(k, list.map((v) => (typeof v === "string" ? v : { ...v })));
  }
  return out;
}

type Node = Record<string, unknown>;

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: false,
  processEntities: false,
  cdataPropName: "#cdata",
  ignoreDeclaration: true,
  ignorePiTags: true,
  commentPropName: "#comment",
});

const XML_ENTITIES: Record<string, string> = {
  lt: "<",
  gt: ">",
  amp: "&",
  quot: '"',
  apos: "'",
};

function decodeEntities(text: string): string {
  return text.replace(/&([^;&\s]{0,12});?/g, (whole, name: string) => {
    if (!whole.endsWith(";")) throw new InvalidInputError(`template XML: bare '&' in text`);
    if (name in XML_ENTITIES) return XML_ENTITIES[name];
    const num = /^#(?:x([0-9A-Fa-f]{1,6})|([0-9]{1,7}))$/.exec(name);
    if (num) {
      const cp = num[1] !== undefined ? parseInt(num[1], 16) : parseInt(num[2], 10);
      if (cp === 0 || cp > 0x10ffff) {
        throw new InvalidInputError(`template XML: bad character reference &${name};`);
      }
      return String.fromCodePoint(cp);
    }
    throw new InvalidInputError(
      `template XML: unknown entity &${name}; (only XML's own are allowed)`,
    );
  });
}

function tagOf(node: Node): string | undefined {
  return Object.keys(node).find((k) => !k.startsWith("#") && k !== ":@");
}

function children(node: Node, tag: string): Node[] {
  return (node[tag] as Node[]) ?? [];
}

/** Text of an element without child elements: text and CDATA concatenated, then trimmed. */
function textOf(kids: Node[], where: string): string | undefined {
  let text = "";
  for (const k of kids) {
    if ("#text" in k) text += decodeEntities(String(k["#text"]));
    else if ("#cdata" in k) {
      for (const c of k["#cdata"] as Node[]) text += String(c["#text"] ?? "");
    } else if ("#comment" in k) continue;
    else if (tagOf(k) !== undefined) return undefined;
  }
  if (text.includes("\0")) throw new InvalidInputError(`template XML: ${where} contains NUL`);
  return text.trim();
}

function elementKids(kids: Node[]): Node[] {
  return kids.filter((k) => tagOf(k) !== undefined);
}

/**
 * Parse a deployment file: a `<TEMPLATE>` document or a full `<VM>` document.
 * Throws InvalidInputError (one line) on empty, oversized, malformed, or wrong-root input.
 */
export function parseTemplateXml(xml: string): TemplateDoc {
  if (
    xml.length > MAX_TEMPLATE_BYTES || new TextEncoder().encode(xml).length > MAX_TEMPLATE_BYTES
  ) {
    throw new InvalidInputError(`template XML: document is larger than 4 MiB`);
  }
  const text = xml.replace(/^\uFEFF/, "");
  if (text.trim() === "") throw new InvalidInputError("template XML: empty input");
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) {
    throw new InvalidInputError("template XML: DOCTYPE/ENTITY declarations are not accepted");
  }
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    const e = valid.err;
    throw new InvalidInputError(
      `template XML: malformed at line ${e.line}: ${String(e.msg).replaceAll("\n", " ")}`,
    );
  }
  let parsed: Node[];
  try {
    parsed = parser.parse(text) as Node[];
  } catch (e) {
    throw new InvalidInputError(`template XML: ${(e as Error).message.split("\n")[0]}`);
  }
  const roots = elementKids(parsed);
  if (roots.length !== 1) {
    throw new InvalidInputError(`template XML: expected one root element, found ${roots.length}`);
  }
  const root = roots[0];
  const rootTag = tagOf(root)!;
  let templateKids: Node[];
  let vmId: number | undefined;
  if (rootTag === "TEMPLATE") {
    templateKids = children(root, rootTag);
  } else if (rootTag === "VM") {
    const vmKids = elementKids(children(root, "VM"));
    const tpl = vmKids.filter((k) => tagOf(k) === "TEMPLATE");
    if (tpl.length !== 1) {
      throw new InvalidInputError(
        `template XML: <VM> document has ${tpl.length} TEMPLATE elements, expected 1`,
      );
    }
    templateKids = children(tpl[0], "TEMPLATE");
    const idNode = vmKids.find((k) => tagOf(k) === "ID");
    if (idNode) {
      const id = textOf(children(idNode, "ID"), "VM/ID");
      if (id !== undefined && /^[0-9]{1,10}$/.test(id)) vmId = Number(id);
    }
  } else {
    throw new InvalidInputError(
      `template XML: root element is <${rootTag}>, expected <TEMPLATE> or <VM>`,
    );
  }
  const doc: TemplateDoc = { attributes: new Map(), vmId };
  for (const el of elementKids(templateKids)) {
    const name = tagOf(el)!;
    const kids = children(el, name);
    const t = textOf(kids, name);
    if (t !== undefined) {
      addValue(doc, name, t);
      continue;
    }
    const vec: Vector = {};
    for (const sub of elementKids(kids)) {
      const key = tagOf(sub)!;
      const v = textOf(children(sub, key), `${name}/${key}`);
      if (v === undefined) {
        throw new InvalidInputError(
          `template XML: ${name.toUpperCase()}/${key.toUpperCase()} has nested elements (vectors hold only values)`,
        );
      }
      const k = key.toUpperCase();
      if (!Object.hasOwn(vec, k)) vec[k] = v;
    }
    addValue(doc, name, vec);
  }
  return doc;
}
