// What changed between two versions of a flow document, computed here from
// the two documents: nodes added, removed or changed (kind, config, inputs
// and any other field, old → new), edges added and removed (control edges and
// the wires of input mappings, as the editor draws them), and the flow's
// parameters and other top-level fields. Pure, for the History panel and
// its canvas.
import { docToGraph } from "./graph";
import type { FlowDoc, FlowNode } from "./graph";

/** Change is one field's change: before absent means added, after absent removed. */
export interface Change {
  path: string;
  before?: unknown;
  after?: unknown;
}

export type Status = "added" | "removed" | "changed";

export interface NodeDiff {
  id: string;
  status: Status;
  /** kind is the node's kind in the newer version (the older one's when removed). */
  kind: string;
  changes: Change[];
}

export interface EdgeDiff {
  id: string;
  source: string;
  target: string;
  status: "added" | "removed";
  label: string;
}

export interface FlowDiff {
  nodes: NodeDiff[];
  edges: EdgeDiff[];
  parameters: Change[];
  /** other are the document's other top-level fields (name, inputs, output, …). */
  other: Change[];
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** fieldChanges compares two objects key by key, under prefix. */
function fieldChanges(prefix: string, a: Record<string, unknown> | undefined, b: Record<string, unknown> | undefined): Change[] {
  const out: Change[] = [];
  const keys = [...new Set([...Object.keys(a ?? {}), ...Object.keys(b ?? {})])].sort();
  for (const k of keys) {
    const before = a?.[k];
    const after = b?.[k];
    if (same(before, after)) continue;
    const c: Change = { path: prefix ? `${prefix}.${k}` : k };
    if (before !== undefined) c.before = before;
    if (after !== undefined) c.after = after;
    out.push(c);
  }
  return out;
}

const obj = (v: unknown): Record<string, unknown> | undefined => (v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);

/** nodeChanges lists what changed in one node; its successors (next) are edges, not fields. */
export function nodeChanges(a: FlowNode, b: FlowNode): Change[] {
  const out: Change[] = [];
  if (a.kind !== b.kind) out.push({ path: "kind", before: a.kind, after: b.kind });
  for (const group of ["config", "inputs"]) {
    const x = a[group];
    const y = b[group];
    if (obj(x) || obj(y)) out.push(...fieldChanges(group, obj(x), obj(y)));
    else if (!same(x, y)) out.push(...fieldChanges("", { [group]: x }, { [group]: y }));
  }
  const rest = (n: FlowNode) => Object.fromEntries(Object.entries(n).filter(([k]) => !["id", "kind", "config", "inputs", "next"].includes(k)));
  out.push(...fieldChanges("", rest(a), rest(b)));
  return out;
}

function edgeLabel(e: { source: string; target: string; data: { origin: string; field?: string; input?: string } }): string {
  if (e.data.origin === "input") return `$${e.source}${e.data.field ? "." + e.data.field : ""} → ${e.target}.${e.data.input ?? ""}`;
  return `${e.source} → ${e.target}`;
}

/** diffFlows answers what changed from before to after. */
export function diffFlows(before: FlowDoc, after: FlowDoc): FlowDiff {
  const olds = new Map((before.nodes ?? []).map((n) => [n.id, n]));
  const news = new Map((after.nodes ?? []).map((n) => [n.id, n]));
  const nodes: NodeDiff[] = [];
  for (const [id, n] of news) {
    const o = olds.get(id);
    if (!o) {
      nodes.push({ id, status: "added", kind: n.kind, changes: [] });
      continue;
    }
    const changes = nodeChanges(o, n);
    if (changes.length > 0) nodes.push({ id, status: "changed", kind: n.kind, changes });
  }
  for (const [id, o] of olds) if (!news.has(id)) nodes.push({ id, status: "removed", kind: o.kind, changes: [] });

  const ea = docToGraph(before, undefined).edges;
  const eb = docToGraph(after, undefined).edges;
  const ida = new Set(ea.map((e) => e.id));
  const idb = new Set(eb.map((e) => e.id));
  const edges: EdgeDiff[] = [
    ...eb.filter((e) => !ida.has(e.id)).map((e): EdgeDiff => ({ id: e.id, source: e.source, target: e.target, status: "added", label: edgeLabel(e) })),
    ...ea.filter((e) => !idb.has(e.id)).map((e): EdgeDiff => ({ id: e.id, source: e.source, target: e.target, status: "removed", label: edgeLabel(e) })),
  ];

  const parameters = fieldChanges("", obj(before.parameters), obj(after.parameters));
  const top = (d: FlowDoc) => Object.fromEntries(Object.entries(d).filter(([k]) => !["nodes", "edges", "parameters"].includes(k)));
  return { nodes, edges, parameters, other: fieldChanges("", top(before), top(after)) };
}

/** isEmpty says the two versions are the same document. */
export function isEmpty(d: FlowDiff): boolean {
  return d.nodes.length + d.edges.length + d.parameters.length + d.other.length === 0;
}

/** show writes a value for the list: JSON, shortened. */
export function show(v: unknown): string {
  if (v === undefined) return "—";
  const s = JSON.stringify(v);
  return s.length > 80 ? s.slice(0, 77) + "…" : s;
}

/** describeChange writes one change as "path: old → new", "path: added new" or "path: removed old". */
export function describeChange(c: Change): string {
  if (c.before === undefined) return `${c.path}: added ${show(c.after)}`;
  if (c.after === undefined) return `${c.path}: removed ${show(c.before)}`;
  return `${c.path}: ${show(c.before)} → ${show(c.after)}`;
}

/** parseRange reads the URL's diff=A..B into two version numbers, or undefined. */
export function parseRange(s: string | null): [number, number] | undefined {
  const m = /^(\d{1,9})\.\.(\d{1,9})$/.exec(s ?? "");
  if (!m) return undefined;
  const a = Number(m[1]);
  const b = Number(m[2]);
  return a > 0 && b > 0 && a !== b ? [a, b] : undefined;
}

/** merged is one document holding both versions' nodes (the newer version's, then those removed), to draw the diff on one canvas. */
export function merged(before: FlowDoc, after: FlowDoc): FlowDoc {
  const ids = new Set((after.nodes ?? []).map((n) => n.id));
  const removed = (before.nodes ?? []).filter((n) => !ids.has(n.id));
  const pairs = [...(after.edges ?? []), ...(before.edges ?? []).filter((e) => !(after.edges ?? []).some((x) => x.from === e.from && x.to === e.to))];
  const out: FlowDoc = { ...after, nodes: [...(after.nodes ?? []), ...removed] };
  if (pairs.length > 0) out.edges = pairs;
  return out;
}
