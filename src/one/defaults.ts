/**
 * vmm_ssh_ovz.conf (the VMM driver's defaults file): the rule that merges its defaults into a
 * VM template. The file is written in OpenNebula template syntax (src/one/template_syntax.ts).
 */
import { cloneDoc, type TemplateDoc } from "./template.ts";

// The parser lives with the template syntax; the defaults file is written in it.
export { parseTemplateText } from "./template_syntax.ts";

/**
 * Merge driver defaults into a template (returns a new document; inputs are not modified).
 * - An attribute absent from the template is taken from the defaults (all its values).
 * - When both hold the attribute as a vector (e.g. CONTEXT, MEMORY), keys missing from the
 *   template's first vector are filled in from the defaults' first vector.
 * - Otherwise the template's values win, unchanged.
 */
export function applyDefaults(template: TemplateDoc, defaults: TemplateDoc): TemplateDoc {
  const out = cloneDoc(template);
  for (const [name, defValues] of defaults.attributes) {
    const mine = out.attributes.get(name);
    if (!mine || mine.length === 0) {
      out.attributes.set(name, defValues.map((v) => (typeof v === "string" ? v : { ...v })));
      continue;
    }
    const first = mine[0];
    const defFirst = defValues[0];
    if (typeof first !== "string" && defFirst !== undefined && typeof defFirst !== "string") {
      for (const [k, v] of Object.entries(defFirst)) {
        if (!Object.hasOwn(first, k)) first[k] = v;
      }
    }
  }
  return out;
}
