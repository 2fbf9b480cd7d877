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
  /** Items are the fields of each element of an algorithm's objects or list output, as its contract declares them. */
  Items?: Port[] | null;
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
  data: { origin: "next" | "edges" | "input" | "output"; field?: string; input?: string };
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

/**
 * moreInputName names the input a wire to MORE adds: the source's field;
 * when the node has an input of that name, the source's id and the field
 * (cropImage beside image), then a number.
 */
export function moreInputName(node: FlowNode, field: string, source = ""): string {
  const base = field.replace(/[^A-Za-z0-9_]/g, "") || "value";
  const taken = new Set(Object.keys(node.inputs ?? {}));
  if (!taken.has(base)) return base;
  const qualified = source.replace(/[^A-Za-z0-9_]/g, "") + base.charAt(0).toUpperCase() + base.slice(1);
  if (source && source !== INPUT && !taken.has(qualified)) return qualified;
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
 * ITEM is drawn on a foreach body's canvas beside its Input node (the
 * foreach's other mapped inputs): the element the body runs for ($item, a
 * wire from one of its fields maps $item.<field>; its INDEX port maps
 * $index, the element's position). OUTPUT is the output mapping of the
 * flow (what InvokeFlow returns) or of the body (each element's result),
 * one port per field (a wire to its "+ output" adds one). Neither is a
 * node of the document.
 */
export const ITEM = "item";
export const ITEM_KIND = "(item)";
export const OUTPUT = "(output)";
export const OUTPUT_KIND = "(output)";
/** INDEX is the Item node's port for $index (a name no field has: fields are letters, digits, _ and -). */
export const INDEX = "$index";

/** BodyPorts are the ports of a body canvas' Input and Item nodes (scope.ts bodyPorts). */
export interface BodyPorts {
  input: Port[];
  item: Port[];
}

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
  return withRead(out, read);
}

/**
 * docToGraph draws the document; positions are those given, others are
 * laid out by depth. input is the Input node (above the others), absent
 * only when a node of the document is (wrongly) called "input"; output is
 * the Output node (below them). Given body (the document is a foreach
 * body), the Input node has the foreach's inputs, and item is drawn too.
 */
export function docToGraph(doc: FlowDoc, kinds: NodeKinds | undefined, positions: Record<string, XY> = {}, body?: BodyPorts):
  { nodes: GraphNode[]; edges: GraphEdge[]; input?: GraphNode; item?: GraphNode; output: GraphNode } {
  const list = doc.nodes ?? [];
  const ids = new Set(list.map((n) => n.id));
  const withInput = !ids.has(INPUT);
  if (withInput) ids.add(INPUT);
  const withItem = !!body && !ids.has(ITEM);
  if (withItem) ids.add(ITEM);
  const withIndex = withItem && !ids.has("index");
  if (withIndex) ids.add("index"); // $index: the Item node's INDEX port
  const edges: GraphEdge[] = [];
  const read = new Map<string, Set<string>>();
  const reads = (value: unknown) => {
    const r = pathOf(value);
    if (!r) return undefined;
    if (!read.has(r.node)) read.set(r.node, new Set());
    read.get(r.node)?.add(r.field);
    return r;
  };
  for (const n of list) {
    for (const to of n.next ?? []) edges.push(control(n.id, to, "next"));
  }
  for (const e of doc.edges ?? []) edges.push(control(e.from, e.to, "edges"));
  // $index is drawn from the Item node's INDEX port.
  const pathOf = (value: unknown) => {
    const r = readsFrom(value, ids);
    return withIndex && r?.node === "index" ? (r.field ? undefined : { node: ITEM, field: INDEX }) : r;
  };
  for (const n of list) {
    for (const [input, value] of Object.entries(n.inputs ?? {})) {
      const r = pathOf(value);
      if (!r || r.node === n.id) continue;
      reads(value);
      edges.push({
        id: `d:${r.node}.${r.field}>${n.id}.${input}`, source: r.node, target: n.id,
        sourceHandle: r.field ? `out:${r.field}` : NEXT, targetHandle: `in:${input}`,
        data: { origin: "input", field: r.field, input },
      });
    }
  }
  const mapping = outputOf(doc);
  for (const [name, value] of Object.entries(mapping)) {
    const r = reads(value);
    if (!r) continue;
    edges.push({
      id: `o:${r.node}.${r.field}>${name}`, source: r.node, target: OUTPUT,
      sourceHandle: r.field ? `out:${r.field}` : NEXT, targetHandle: `in:${name}`,
      data: { origin: "output", field: r.field, input: name },
    });
  }
  const laid = layout(list.map((n) => n.id), edges.filter((e) => e.source !== INPUT && e.source !== ITEM && e.target !== OUTPUT));
  const nodes = list.map((n) => ({ id: n.id, position: positions[n.id] ?? laid[n.id] ?? { x: 0, y: 0 },
    data: { node: n, ...portsOf(n, kinds, read.get(n.id)), more: takesMore(n, kinds) } }));
  const out: { nodes: GraphNode[]; edges: GraphEdge[]; input?: GraphNode; item?: GraphNode } = { nodes, edges };
  if (withInput) {
    const ports = body ? withRead(body.input, read.get(INPUT)) : inputPorts(doc, read.get(INPUT));
    const node: FlowNode = body ? { id: INPUT, kind: INPUT_KIND, description: "the foreach's inputs" } : { id: INPUT, kind: INPUT_KIND };
    out.input = { id: INPUT, position: positions[INPUT] ?? { x: 0, y: -190 }, data: { node, inputs: [], outputs: ports } };
  }
  if (body && withItem) {
    const index: Port = { Name: INDEX, Type: "integer", Doc: "the element's position in items, from 0" };
    out.item = { id: ITEM, position: positions[ITEM] ?? { x: 280, y: -190 },
      data: { node: { id: ITEM, kind: ITEM_KIND }, inputs: [], outputs: [...withRead(body.item, read.get(ITEM)).filter((p) => p.Name !== INDEX), index] } };
  }
  // The output mapping: the flow's result, or each element's in a body.
  const bottom = Math.max(0, ...nodes.map((n) => n.position.y)) + 190;
  const description = body ? "each element's result" : "what the flow returns";
  const output: GraphNode = { id: OUTPUT, position: positions[OUTPUT] ?? { x: 0, y: bottom },
    data: { node: { id: OUTPUT, kind: OUTPUT_KIND, inputs: mapping, description }, inputs: Object.keys(mapping).map((name) => ({ Name: name, Type: "any" })), outputs: [], more: true } };
  return { ...out, output };
}

/** outputOf answers the document's output mapping ({} when it has none). */
export function outputOf(doc: FlowDoc): Record<string, unknown> {
  const o = doc.output;
  return o && typeof o === "object" && !Array.isArray(o) ? (o as Record<string, unknown>) : {};
}

function withRead(ports: readonly Port[], read: ReadonlySet<string> = new Set()): Port[] {
  const out = [...ports];
  for (const name of read) if (name && !out.some((p) => p.Name === name)) out.push({ Name: name, Type: "any" });
  return out;
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
  if (target === INPUT || target === ITEM) return doc; // nothing feeds the message or the element
  const given = source === INPUT || source === ITEM; // there before every node runs
  if (targetHandle.startsWith("in:")) {
    const field = sourceHandle.startsWith("out:") ? sourceHandle.slice(4) : "";
    const path = source === ITEM && field === INDEX ? INDEX : field ? `$${source}.${field}` : `$${source}`;
    if (target === OUTPUT) return { ...doc, output: { ...outputOf(doc), [targetHandle.slice(3)]: path } };
    const mapped = updateNode(doc, target, (n) => ({ ...n, inputs: { ...n.inputs, [targetHandle.slice(3)]: path } }));
    // The engine reads only the outputs of a node's ancestors: a wire from a node that does not yet run before the target adds that edge too.
    if (given || runsBefore(doc, source, target)) return mapped;
    return { ...mapped, edges: [...(doc.edges ?? []), { from: source, to: target }] };
  }
  if (given || target === OUTPUT || (doc.edges ?? []).some((e) => e.from === source && e.to === target)) return doc; // every node runs after the message arrives
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
    case "output":
      return { ...doc, output: Object.fromEntries(Object.entries(outputOf(doc)).filter(([k]) => k !== e.data.input)) };
  }
}

/** renamePaths answers v with every path that reads a node of ids ($old, $old.field...) reading ids[old] instead, at any depth of an object or list. */
export function renamePaths(v: unknown, ids: Readonly<Record<string, string>>): unknown {
  if (typeof v === "string") {
    const r = readsFrom(v, new Set(Object.keys(ids)));
    return r ? `$${ids[r.node]}${v.slice(r.node.length + 1)}` : v;
  }
  if (Array.isArray(v)) return v.map((x) => renamePaths(x, ids));
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, renamePaths(x, ids)]));
  return v;
}

/** idProblem answers why id cannot name a node of doc (ValidateFlow's rules), or "" when it can. */
export function idProblem(doc: FlowDoc, id: string, except = ""): string {
  if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(id)) return "ids are letters, digits, _ and -, starting with a letter or _";
  if (id.length > 64) return "at most 64 characters";
  if (["input", "params", "item", "index"].includes(id)) return `"${id}" is reserved for paths ($${id})`;
  if (id !== except && (doc.nodes ?? []).some((n) => n.id === id)) return `there is already a node ${id}`;
  return "";
}

/**
 * renameNode calls node from `to` instead: the other nodes' inputs that read
 * it, next lists, edges, a switch's case and default targets, errorNext and
 * the output mapping follow. A foreach body does not see its flow's nodes,
 * so bodies are left as they are.
 */
export function renameNode(doc: FlowDoc, from: string, to: string): FlowDoc {
  if (from === to) return doc;
  const ids = { [from]: to };
  const name = (t: unknown) => (t === from ? to : t);
  const out: FlowDoc = {
    ...doc,
    nodes: (doc.nodes ?? []).map((n) => {
      const c: FlowNode = { ...n, id: name(n.id) as string };
      if (n.inputs) c.inputs = renamePaths(n.inputs, ids) as Record<string, unknown>;
      if (n.next) c.next = n.next.map((t) => name(t) as string);
      if (n.errorNext === from) c.errorNext = to;
      if (n.kind === "switch" && n.config) {
        const cfg = { ...n.config };
        if (Array.isArray(cfg.cases)) cfg.cases = cfg.cases.map((k: unknown) => (k && typeof k === "object" ? { ...k, next: name((k as { next?: unknown }).next) } : k));
        if (cfg.default === from) cfg.default = to;
        c.config = cfg;
      }
      return c;
    }),
  };
  if (doc.edges) out.edges = doc.edges.map((e) => ({ from: name(e.from) as string, to: name(e.to) as string }));
  if (doc.output !== undefined) out.output = renamePaths(doc.output, ids);
  return out;
}
