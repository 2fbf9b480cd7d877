// Nested canvases: the editor can show the body of a foreach node (and the
// body of a foreach inside it) as its own canvas. A scope is the path of
// foreach node ids from the document down to the body shown; an edit of
// the body is an edit of the document.
import { INPUT, inputPorts, ITEM, outputOf, portsOf, readsFrom, updateNode } from "./graph";
import type { BodyPorts, FlowDoc, NodeKinds, Port, XY } from "./graph";
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

/** OBJECT_FIELDS are the fields of an element of an objects list (flow.TypeObjects). */
export const OBJECT_FIELDS: readonly Port[] = [
  { Name: "box", Type: "list", Doc: "[x, y, w, h] in the frame's pixels" },
  { Name: "score", Type: "number" },
  { Name: "label", Type: "string" },
  { Name: "trackId", Type: "integer", Doc: "from a track node" },
];

/**
 * bodyPorts answers what the body the scope names can read, for its
 * canvas' Input and Item nodes: the foreach's mapped inputs other than
 * items ($input.<name>), and the fields of an element of items ($item.<field>):
 * those the algorithm's contract declares for the list's items, else an
 * object's fields when items is a list of objects, the output fields of
 * a foreach body the list comes from, followed back through the nodes that
 * pass objects on (track, bestshot ...). undefined at the top.
 */
export function bodyPorts(doc: FlowDoc, scope: Scope, kinds: NodeKinds | undefined): BodyPorts | undefined {
  if (scope.length === 0) return undefined;
  const up = scope.slice(0, -1);
  const parent = bodyAt(doc, up);
  const each = parent?.nodes?.find((n) => n.id === scope[scope.length - 1]);
  if (!parent || each?.kind !== "foreach") return undefined;
  const outer = bodyPorts(doc, up, kinds);
  const ids = new Set([...(parent.nodes ?? []).map((n) => n.id), INPUT, ...(outer ? [ITEM] : [])]);
  const fieldOf = (value: unknown): Port | undefined => {
    const r = readsFrom(value, ids);
    if (!r) return undefined;
    if (r.node === INPUT) return (outer ? outer.input : inputPorts(parent)).find((p) => p.Name === r.field);
    if (r.node === ITEM) return outer?.item.find((p) => p.Name === r.field);
    const n = parent.nodes?.find((x) => x.id === r.node);
    return n ? portsOf(n, kinds).outputs.find((p) => p.Name === r.field) : undefined;
  };
  const elementOf = (value: unknown, depth: number): Port[] => {
    const r = readsFrom(value, ids);
    if (!r || depth > 8) return [];
    const n = parent.nodes?.find((x) => x.id === r.node);
    const body = n?.kind === "foreach" && r.field === "results" && n.config?.body && typeof n.config.body === "object" ? (n.config.body as FlowDoc) : undefined;
    if (body) {
      const mapped = Object.keys(outputOf(body));
      // Without an output mapping an element is every body node's output, by node id.
      return (mapped.length ? mapped : (body.nodes ?? []).map((b) => b.id)).map((name) => ({ Name: name, Type: "any" }));
    }
    const field = fieldOf(value);
    // The fields the algorithm's contract declares for an element (a detector's face: box, score, quality ...).
    if (field?.Items?.length) return field.Items.map((p) => ({ Name: p.Name, Type: p.Type, Doc: p.Doc ?? "" }));
    if (field?.Type !== "objects") return [];
    // A node that passes objects on (track, bestshot ...) keeps the fields of the objects it reads.
    const from = n?.inputs?.objects !== undefined ? elementOf(n.inputs.objects, depth + 1) : [];
    return [...from, ...OBJECT_FIELDS.filter((f) => !from.some((p) => p.Name === f.Name))];
  };
  const input = Object.entries(each.inputs ?? {}).filter(([k]) => k !== "items")
    .map(([k, v]) => ({ Name: k, Type: fieldOf(v)?.Type ?? "any", Doc: `the foreach's input ${k}: ${JSON.stringify(v)}` }));
  return { input, item: elementOf(each.inputs?.items, 0) };
}
