// Import and export of the flow document as JSON or YAML. The editor only
// checks the shape it draws (an object whose nodes have an id and a kind);
// ValidateFlow checks the rest, as it does for every edit.
// The YAML library is its own chunk, loaded the first time YAML is read or written.
import type { FlowDoc } from "./graph";

/** MAX_BYTES is the engine's limit on a document (flow.Limits.MaxDocumentBytes). */
export const MAX_BYTES = 1 << 20;

export type Format = "json" | "yaml";

export async function exportDoc(doc: FlowDoc, format: Format): Promise<string> {
  if (format === "json") return JSON.stringify(doc, null, 2) + "\n";
  const { stringify } = await import("yaml");
  return stringify(doc, { aliasDuplicateObjects: false });
}

/** fileName is where a download of doc goes: the flow's name with the format's extension. */
export function fileName(doc: FlowDoc, format: Format): string {
  const base = (doc.name ?? "").replace(/[^A-Za-z0-9_.-]+/g, "-").replace(/^[-.]+|-+$/g, "") || "flow";
  return `${base}.${format}`;
}

/** parseDoc reads a JSON or YAML document; it throws an Error that says what is wrong. */
export async function parseDoc(text: string): Promise<FlowDoc> {
  if (new TextEncoder().encode(text).length > MAX_BYTES) throw new Error(`the document is over ${MAX_BYTES >> 10} KiB`);
  if (text.trim() === "") throw new Error("the document is empty");
  let v: unknown;
  try {
    v = text.trimStart().startsWith("{") ? JSON.parse(text) : (await import("yaml")).parse(text, { maxAliasCount: 100 });
  } catch (e) {
    throw new Error(`not JSON or YAML: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`, { cause: e });
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error("want an object with the flow's nodes");
  const doc = v as FlowDoc;
  if (doc.nodes !== undefined) {
    if (!Array.isArray(doc.nodes)) throw new Error("nodes: want a list");
    doc.nodes.forEach((n: unknown, i) => {
      const o = n as Record<string, unknown> | null;
      if (!o || typeof o !== "object" || Array.isArray(o)) throw new Error(`nodes[${i}]: want an object`);
      if (typeof o.id !== "string" || o.id === "") throw new Error(`nodes[${i}].id: want a string`);
      if (typeof o.kind !== "string" || o.kind === "") throw new Error(`nodes[${i}].kind: want a string`);
    });
  }
  return doc;
}

/** download saves text as a file of the browser's downloads. */
export function download(text: string, name: string, type: string) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
