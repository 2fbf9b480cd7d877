// Nested canvases: the editor can show the body of a foreach node (and the
// body of a foreach inside it) as its own canvas. A scope is the path of
// foreach node ids from the document down to the body shown; an edit of
// the body is an edit of the document.
import { updateNode } from "./graph";
import type { FlowDoc, XY } from "./graph";
import type { ValidationError } from "./validation";

export type Scope = readonly string[];

export function parseScope(s: string | null): Scope {
  return (s ?? "").split("/").filter(Boolean);
}

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);

/** bodyAt answers the flow the scope names (a foreach without a body yet has an empty one), or undefined when the path is not there. */
export function bodyAt(doc: FlowDoc, scope: Scope): FlowDoc | undefined {
  let d: FlowDoc = doc;
  for (const id of scope) {
    const n = d.nodes?.find((x) => x.id === id);
    if (!n || n.kind !== "foreach") return undefined;
    const b = n.config?.body;
    if (b !== undefined && !isObject(b)) return undefined;
    d = (b as FlowDoc | undefined) ?? { nodes: [] };
  }
  return d;
}

/** editBody applies f to the body the scope names and answers the whole document. */
export function editBody(doc: FlowDoc, scope: Scope, f: (body: FlowDoc) => FlowDoc): FlowDoc {
  const [id, ...rest] = scope;
  if (id === undefined) return f(doc);
  return updateNode(doc, id, (n) => {
    const body = isObject(n.config?.body) ? (n.config.body as FlowDoc) : { nodes: [] };
    return { ...n, config: { ...n.config, body: editBody(body, rest, f) } };
  });
}

/** posKey is where a node's position is kept: body nodes under their scope, so ids may repeat across bodies. */
export function posKey(scope: Scope, id: string): string {
  return scope.length ? `${scope.join("/")}/${id}` : id;
}

/** positionsIn answers the positions of the nodes of one scope, by node id. */
export function positionsIn(all: Record<string, XY>, scope: Scope): Record<string, XY> {
  if (scope.length === 0) return all;
  const prefix = scope.join("/") + "/";
  const out: Record<string, XY> = {};
  for (const [k, v] of Object.entries(all)) if (k.startsWith(prefix) && !k.slice(prefix.length).includes("/")) out[k.slice(prefix.length)] = v;
  return out;
}

/** errorsIn answers ValidateFlow's errors as the scope's canvas shows them: its nodes' paths made relative; the rest on the document. */
export function errorsIn(errors: readonly ValidationError[], scope: Scope): ValidationError[] {
  if (scope.length === 0) return [...errors];
  const prefix = scope.join("/") + "/";
  const rel = (p: string) => (p.startsWith(prefix) ? p.slice(prefix.length) : "");
  return errors.map((e) => {
    const node = rel(e.NodeId);
    if (!node) return { ...e, NodeId: "", Edge: null, Field: e.NodeId ? `${e.NodeId}${e.Field ? "." + e.Field : ""}` : e.Field };
    return { ...e, NodeId: node, Edge: e.Edge ? { From: rel(e.Edge.From), To: rel(e.Edge.To) } : e.Edge };
  });
}
