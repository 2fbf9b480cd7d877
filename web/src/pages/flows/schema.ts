// Forms generated from a node kind's config JSON Schema (docs/flows.md):
// one field per property, its widget chosen from the property's type. What
// has no widget of its own (arrays, objects, mixed types) is edited as JSON.
import type { JsonSchema } from "./graph";

/** script: a code editor (format "script", a Starlark source); the others are plain inputs. */
export type Widget = "text" | "number" | "integer" | "bool" | "enum" | "json" | "script";

export interface SchemaField {
  name: string;
  widget: Widget;
  required: boolean;
  doc: string;
  options: string[];
  default: unknown;
  format: string;
  min: number | undefined;
  max: number | undefined;
}

function typeOf(s: JsonSchema): string {
  return Array.isArray(s.type) ? (s.type.length === 1 ? (s.type[0] ?? "") : "") : (s.type ?? "");
}

/** schemaFields answers the form's fields for a config schema, in the schema's order. */
export function schemaFields(schema: JsonSchema | null | undefined): SchemaField[] {
  const required = new Set(schema?.required ?? []);
  return Object.entries(schema?.properties ?? {}).map(([name, p]) => {
    const t = typeOf(p);
    let widget: Widget = "json";
    if (p.enum && p.enum.every((v) => typeof v === "string")) widget = "enum";
    else if (t === "string") widget = p.format === "script" ? "script" : "text";
    else if (t === "number") widget = "number";
    else if (t === "integer") widget = "integer";
    else if (t === "boolean") widget = "bool";
    return {
      name, widget, required: required.has(name), doc: p.description ?? "", options: widget === "enum" ? (p.enum as string[]) : [],
      default: p.default, format: p.format ?? "", min: p.minimum, max: p.maximum,
    };
  });
}

/** showValue is what a field's input shows for the config's value ("" when unset). */
export function showValue(f: SchemaField, v: unknown): string {
  if (v === undefined || v === null) return "";
  if (f.widget === "json") return JSON.stringify(v, null, 1);
  return String(v);
}

/**
 * readValue turns what a person typed into the config's value: undefined
 * removes the field (so the kind's default applies); a number that does not
 * parse or JSON that does not parse is kept as the text, for ValidateFlow to
 * name the field.
 */
export function readValue(f: SchemaField, text: string): unknown {
  if (f.widget === "bool") return text === "true" ? true : text === "false" ? false : undefined;
  if (text.trim() === "") return undefined;
  if (f.widget === "number" || f.widget === "integer") {
    const n = Number(text);
    return Number.isFinite(n) ? n : text;
  }
  if (f.widget === "json") {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  return text;
}
