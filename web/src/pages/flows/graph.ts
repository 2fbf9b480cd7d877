// The flow document seen as a graph, for the editor. The document stays the
// source of truth: the graph is derived from it (docToGraph) and written back
// (graphToDoc) without losing a field, and every edit in the editor is a
// change of the document (the helpers at the end).
//
// Edges come from two places. Control edges are the document's own `next`
// lists and `edges` pairs. Data edges are the input mappings that read another
// node's output ("$detect.faces" into the input "items" of faces): the wire an
// editor draws for the mapping, and the one ValidateFlow's Edge names.

/** FlowNode is one node of a flow document; unknown fields are kept as they are. */
export interface FlowNode {
  id: string;
  kind: string;
  inputs?: Record<string, unknown>;
  config?: Record<string, unknown>;
  next?: string[];
  [field: string]: unknown;
}

/** FlowDoc is a flow document (internal/flow/doc.go); fields the editor does not know are kept. */
export interface FlowDoc {
  name?: string;
  nodes?: FlowNode[];
  edges?: { from: string; to: string }[];
  [field: string]: unknown;
}

export interface Port {
  Name: string;
  Type: string;
  Required?: boolean;
  Doc?: string;
}

/** NodeKind is one entry of DescribeFlowNodeKinds' KindSet. */
export interface NodeKind {
  Name: string;
  Doc: string;
  Category: string;
  Inputs: Port[] | null;
  MoreInputs: boolean;
  Outputs: Port[] | null;
  OutputsOpen: boolean;
  FromContract: boolean;
  ConfigSchema: JsonSchema | null;
}

/** PaletteAlgorithm is one entry of DescribeFlowNodeKinds' AlgorithmSet. */
export interface PaletteAlgorithm {
  AlgorithmId: string;
  Name: string;
  Description: string;
  Version: string;
  Kind: string;
  Config: Record<string, unknown>;
  Inputs: Port[] | null;
  Outputs: Port[] | null;
  OutputsOpen: boolean;
}

export interface PortType {
  Name: string;
  CompatibleWith: string[] | null;
}

export interface NodeKinds {
  KindSet: NodeKind[];
  AlgorithmSet: PaletteAlgorithm[];
  PortTypeSet: PortType[];
}

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  default?: unknown;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  items?: JsonSchema;
  description?: string;
  format?: string;
  examples?: unknown[];
}

export interface XY {
  x: number;
  y: number;
}

/** GraphNode is what the editor draws for one node. */
export interface GraphNode {
  id: string;
  position: XY;
  data: { node: FlowNode; inputs: Port[]; outputs: Port[]; more?: boolean };
}

/** GraphEdge is a control edge (from next or edges) or a data edge (an input reading another node's output). */
export interface GraphEdge {
  id: string;
  source: string;
  target: string;
  sourceHandle: string;
  targetHandle: string;
  data: { origin: "next" | "edges" | "input"; field?: string; input?: string };
}

/** NEXT and FLOW are the handles of control edges: a node's successors leave from NEXT and enter at FLOW. */
export const NEXT = "next";
export const FLOW = "flow";

const PATH = /^\$([A-Za-z_][A-Za-z0-9_-]*)(?:\.([A-Za-z0-9_-]+))?/;

/** readsFrom answers the node and output field an input value reads, when it is a path to another node. */
export function readsFrom(value: unknown, ids: ReadonlySet<string>): { node: string; field: string } | undefined {
  if (typeof value !== "string" || value.startsWith("$$")) return undefined;
  const m = PATH.exec(value);
  if (!m?.[1] || !ids.has(m[1])) return undefined;
  return { node: m[1], field: m[2] ?? "" };
}

/** portsOf answers a node's input and output ports: the kind's, the algorithm's contract, and any the document maps or reads. */
export function portsOf(node: FlowNode, kinds: NodeKinds | undefined, read: ReadonlySet<string> = new Set()): { inputs: Port[]; outputs: Port[] } {
  const kind = kinds?.KindSet.find((k) => k.Name === node.kind);
  let ins = kind?.Inputs ?? [];
  let outs = kind?.Outputs ?? [];
  if (kind?.FromContract) {
    const alg = kinds?.AlgorithmSet.find((a) => a.AlgorithmId === node.config?.algorithm);
    ins = alg?.Inputs ?? [];
    outs = alg?.Outputs ?? [];
  }
  const inputs = [...ins];
  for (const name of Object.keys(node.inputs ?? {})) if (!inputs.some((p) => p.Name === name)) inputs.push({ Name: name, Type: "any" });
  const outputs = [...outs];
  for (const name of read) if (name && !outputs.some((p) => p.Name === name)) outputs.push({ Name: name, Type: "any" });
  return { inputs, outputs };
}

/** MORE is the handle of a node that takes inputs of any name (store, publish, function): a wire to it adds one. */
export const MORE = "in:+";

/** takesMore reports whether a node takes inputs of any name beside its kind's (not an algorithm: its contract names them). */
export function takesMore(node: FlowNode, kinds: NodeKinds | undefined): boolean {
  const kind = kinds?.KindSet.find((k) => k.Name === node.kind);
  return !!kind?.MoreInputs && !kind.FromContract;
}

/** moreInputName names the input a wire to MORE adds: the source's field, made unique among the node's inputs. */
export function moreInputName(node: FlowNode, field: string): string {
  const base = field.replace(/[^A-Za-z0-9_]/g, "") || "value";
  const taken = new Set(Object.keys(node.inputs ?? {}));
  if (!taken.has(base)) return base;
  for (let i = 2; ; i++) if (!taken.has(`${base}${i}`)) return `${base}${i}`;
}

/**
 * INPUT is the flow's input drawn as a node of its own: not part of the
 * document (no node may be called "input": $input is the message), its
 * output ports are the message's fields, and a wire from it is an input
 * mapping that reads $input.<field>.
 */
export const INPUT = "input";
/** INPUT_KIND is the kind the Input node is drawn with; no node kind has that name. */
export const INPUT_KIND = "(input)";

/**
 * MESSAGE_FIELDS are the fields of the message a task's device source
 * hands a flow (internal/devicecenter/source.go): the frame, its device
 * and the device's group, its sequence number and size; an event of the
 * device brings event and data (and image when it has a snapshot).
 */
export const MESSAGE_FIELDS: readonly Port[] = [
  { Name: "image", Type: "image", Doc: "the frame (or an event's snapshot), an encoded picture" },
  { Name: "device", Type: "string", Doc: "the device's id" },
  { Name: "group", Type: "string", Doc: "the device's group" },
  { Name: "frame", Type: "integer", Doc: "the frame's sequence number" },
  { Name: "width", Type: "integer", Doc: "the frame's width in pixels" },
  { Name: "height", Type: "integer", Doc: "the frame's height in pixels" },
  { Name: "event", Type: "string", Doc: "an event's type" },
  { Name: "data", Type: "object", Doc: "an event's data" },
];

/** inputPorts answers the Input node's ports: the inputs the document declares, else the message's fields, and every other field it reads. */
export function inputPorts(doc: FlowDoc, read: ReadonlySet<string> = new Set()): Port[] {
  const declared = doc.inputs as Record<string, { type?: string; description?: string }> | undefined;
  const out: Port[] = declared && typeof declared === "object" && Object.keys(declared).length > 0
    ? Object.entries(declared).map(([name, spec]) => ({ Name: name, Type: spec.type || "any", Doc: spec.description ?? "" }))
    : [...MESSAGE_FIELDS];
  for (const name of read) if (name && !out.some((p) => p.Name === name)) out.push({ Name: name, Type: "any" });
  return out;
}

/**
 * docToGraph draws the document; positions are those given, others are
 * laid out by depth. input is the Input node (above the others), absent
 * only when a node of the document is (wrongly) called "input".
 */
export function docToGraph(doc: FlowDoc, kinds: NodeKinds | undefined, positions: Record<string, XY> = {}): { nodes: GraphNode[]; edges: GraphEdge[]; input?: GraphNode } {
  const list = doc.nodes ?? [];
  const ids = new Set(list.map((n) => n.id));
  const withInput = !ids.has(INPUT);
  if (withInput) ids.add(INPUT);
  const edges: GraphEdge[] = [];
  const read = new Map<string, Set<string>>();
  for (const n of list) {
    for (const to of n.next ?? []) edges.push(control(n.id, to, "next"));
  }
  for (const e of doc.edges ?? []) edges.push(control(e.from, e.to, "edges"));
  for (const n of list) {
    for (const [input, value] of Object.entries(n.inputs ?? {})) {
      const r = readsFrom(value, ids);
      if (!r || r.node === n.id) continue;
      if (!read.has(r.node)) read.set(r.node, new Set());
      read.get(r.node)?.add(r.field);
      edges.push({
        id: `d:${r.node}.${r.field}>${n.id}.${input}`, source: r.node, target: n.id,
        sourceHandle: r.field ? `out:${r.field}` : NEXT, targetHandle: `in:${input}`,
        data: { origin: "input", field: r.field, input },
      });
    }
  }
  const laid = layout(list.map((n) => n.id), edges.filter((e) => e.source !== INPUT));
  const nodes = list.map((n) => ({ id: n.id, position: positions[n.id] ?? laid[n.id] ?? { x: 0, y: 0 },
    data: { node: n, ...portsOf(n, kinds, read.get(n.id)), more: takesMore(n, kinds) } }));
  if (!withInput) return { nodes, edges };
  const input: GraphNode = { id: INPUT, position: positions[INPUT] ?? { x: 0, y: -190 },
    data: { node: { id: INPUT, kind: INPUT_KIND }, inputs: [], outputs: inputPorts(doc, read.get(INPUT)) } };
  return { nodes, edges, input };
}

function control(from: string, to: string, origin: "next" | "edges"): GraphEdge {
  return { id: `c:${origin}:${from}>${to}`, source: from, target: to, sourceHandle: NEXT, targetHandle: FLOW, data: { origin } };
}

/** graphToDoc writes the graph back as a document: meta are the document's other fields (name, inputs, output, ...). */
export function graphToDoc(meta: FlowDoc, nodes: readonly GraphNode[], edges: readonly GraphEdge[]): FlowDoc {
  const out: FlowDoc = { ...meta };
  out.nodes = nodes.map((g) => {
    const n: FlowNode = { ...g.data.node };
    const next = edges.filter((e) => e.data.origin === "next" && e.source === g.id).map((e) => e.target);
    if (next.length > 0 || "next" in g.data.node) n.next = next;
    return n;
  });
  const pairs = edges.filter((e) => e.data.origin === "edges").map((e) => ({ from: e.source, to: e.target }));
  if (pairs.length > 0 || "edges" in meta) out.edges = pairs;
  else delete out.edges;
  return out;
}

/**
 * layout places nodes in rows by their depth (longest path from a node with
 * no predecessor), in document order within a row: top to bottom, so a
 * chain fits the editor's canvas, which is taller than wide beside the
 * palette and the node panel.
 */
export function layout(ids: readonly string[], edges: readonly { source: string; target: string }[]): Record<string, XY> {
  const preds = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const e of edges) if (preds.has(e.target) && preds.has(e.source) && e.source !== e.target) preds.get(e.target)?.push(e.source);
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const depthOf = (id: string): number => {
    const known = depth.get(id);
    if (known !== undefined) return known;
    if (visiting.has(id)) return 0; // a cycle (ValidateFlow refuses it): lay it out anyway
    visiting.add(id);
    const d = Math.max(-1, ...(preds.get(id) ?? []).map(depthOf)) + 1;
    visiting.delete(id);
    depth.set(id, d);
    return d;
  };
  const rows = new Map<number, number>();
  const out: Record<string, XY> = {};
  for (const id of ids) {
    const d = depthOf(id);
    const row = rows.get(d) ?? 0;
    rows.set(d, row + 1);
    out[id] = { x: row * 260, y: d * 190 };
  }
  return out;
}

/** compatible is the engine's connection rule (flow.Compatible) as PortTypeSet tells it. */
export function compatible(types: readonly PortType[], from: string, to: string): boolean {
  if (!from || !to || from === "any" || to === "any" || from === to) return true;
  const t = types.find((p) => p.Name === from);
  return (t?.CompatibleWith ?? []).includes(to);
}

const A: Record<string, string> = { image: "an image", objects: "a list of objects", object: "an object", list: "a list",
  string: "a string", number: "a number", integer: "an integer", bool: "a bool", any: "anything" };

/** connectionRefusal answers why an output of type from cannot feed an input of type to, or "" when it can. */
export function connectionRefusal(types: readonly PortType[], src: string, from: Port, dst: string, to: Port): string {
  if (compatible(types, from.Type, to.Type)) return "";
  return `$${src}.${from.Name} is ${A[from.Type] ?? from.Type}, but input "${to.Name}" of ${dst} takes ${A[to.Type] ?? to.Type}`;
}

// Edits of the document.

/** uniqueId answers base, or base2, base3 ... the first that no node of doc has. */
export function uniqueId(doc: FlowDoc, base: string): string {
  const clean = base.replace(/[^A-Za-z0-9_-]/g, "").replace(/^[^A-Za-z_]+/, "") || "node";
  const ids = new Set((doc.nodes ?? []).map((n) => n.id));
  if (!ids.has(clean)) return clean;
  for (let i = 2; ; i++) if (!ids.has(`${clean}${i}`)) return `${clean}${i}`;
}

export function addNode(doc: FlowDoc, node: FlowNode): FlowDoc {
  return { ...doc, nodes: [...(doc.nodes ?? []), node] };
}

export function updateNode(doc: FlowDoc, id: string, f: (n: FlowNode) => FlowNode): FlowDoc {
  return { ...doc, nodes: (doc.nodes ?? []).map((n) => (n.id === id ? f(n) : n)) };
}

/** removeNode deletes a node and the control edges that name it; inputs that read it stay, for ValidateFlow to point at. */
export function removeNode(doc: FlowDoc, id: string): FlowDoc {
  const out: FlowDoc = { ...doc, nodes: (doc.nodes ?? []).filter((n) => n.id !== id).map((n) => (n.next ? { ...n, next: n.next.filter((t) => t !== id) } : n)) };
  if (doc.edges) out.edges = doc.edges.filter((e) => e.from !== id && e.to !== id);
  return out;
}

/**
 * connect maps the target's input to the source's output field (adding the
 * edge source -> target when source does not already run before target),
 * or adds a control edge between the NEXT and FLOW handles.
 */
export function connect(doc: FlowDoc, source: string, sourceHandle: string, target: string, targetHandle: string): FlowDoc {
  if (target === INPUT) return doc; // nothing feeds the message
  if (targetHandle.startsWith("in:")) {
    const field = sourceHandle.startsWith("out:") ? sourceHandle.slice(4) : "";
    const path = field ? `$${source}.${field}` : `$${source}`;
    const mapped = updateNode(doc, target, (n) => ({ ...n, inputs: { ...n.inputs, [targetHandle.slice(3)]: path } }));
    // The engine reads only the outputs of a node's ancestors: a wire from a node that does not yet run before the target adds that edge too.
    if (source === INPUT || runsBefore(doc, source, target)) return mapped;
    return { ...mapped, edges: [...(doc.edges ?? []), { from: source, to: target }] };
  }
  if (source === INPUT || (doc.edges ?? []).some((e) => e.from === source && e.to === target)) return doc; // every node runs after the message arrives
  return { ...doc, edges: [...(doc.edges ?? []), { from: source, to: target }] };
}

/**
 * orderInputs adds the edge from every node that target's inputs read (at any
 * depth of a mapped object or list) and that does not yet run before target,
 * as drawing the wire does: a mapping typed in the panel works like one drawn.
 */
export function orderInputs(doc: FlowDoc, target: string): FlowDoc {
  const node = (doc.nodes ?? []).find((n) => n.id === target);
  if (!node?.inputs) return doc;
  const ids = new Set((doc.nodes ?? []).map((n) => n.id));
  const sources = new Set<string>();
  const walk = (v: unknown) => {
    const r = readsFrom(v, ids);
    if (r) sources.add(r.node);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object") Object.values(v).forEach(walk);
  };
  walk(node.inputs);
  let out = doc;
  for (const source of sources) {
    if (source !== target && !runsBefore(out, source, target)) out = { ...out, edges: [...(out.edges ?? []), { from: source, to: target }] };
  }
  return out;
}

/** runsBefore reports whether a is an ancestor of b through next lists and edges. */
export function runsBefore(doc: FlowDoc, a: string, b: string): boolean {
  const succ = new Map<string, string[]>();
  const add = (f: string, t: string) => succ.set(f, [...(succ.get(f) ?? []), t]);
  for (const n of doc.nodes ?? []) for (const t of n.next ?? []) add(n.id, t);
  for (const e of doc.edges ?? []) add(e.from, e.to);
  const seen = new Set<string>();
  const todo = [...(succ.get(a) ?? [])];
  while (todo.length > 0) {
    const id = todo.pop() ?? "";
    if (id === b) return true;
    if (seen.has(id)) continue;
    seen.add(id);
    todo.push(...(succ.get(id) ?? []));
  }
  return false;
}

/** disconnect removes what an edge stands for: the input mapping, the next entry or the edges pair. */
export function disconnect(doc: FlowDoc, e: GraphEdge): FlowDoc {
  switch (e.data.origin) {
    case "input":
      return updateNode(doc, e.target, (n) => ({ ...n, inputs: Object.fromEntries(Object.entries(n.inputs ?? {}).filter(([k]) => k !== e.data.input)) }));
    case "next":
      return updateNode(doc, e.source, (n) => ({ ...n, next: (n.next ?? []).filter((t) => t !== e.target) }));
    case "edges":
      return { ...doc, edges: (doc.edges ?? []).filter((p) => !(p.from === e.source && p.to === e.target)) };
  }
}
