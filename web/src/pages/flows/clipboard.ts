// Copy and paste of nodes. A copy holds the chosen nodes, the wires among
// them and where they were drawn; pasted, each node gets a fresh id, the
// wires among the copies name the new ids, and inputs that read a node
// that was not copied are dropped (the paste is not wired to the rest).
import { readsFrom, renamePaths, uniqueId } from "./graph";
import type { FlowDoc, FlowNode, XY } from "./graph";

export interface Clip {
  nodes: FlowNode[];
  edges: { from: string; to: string }[];
  positions: Record<string, XY>;
}

/** copyNodes answers the clip of the nodes of doc named by ids (in document order), or undefined when none is. */
export function copyNodes(doc: FlowDoc, ids: readonly string[], positions: Record<string, XY> = {}): Clip | undefined {
  const chosen = new Set(ids);
  const all = new Set((doc.nodes ?? []).map((n) => n.id));
  const nodes: FlowNode[] = [];
  const at: Record<string, XY> = {};
  for (const n of doc.nodes ?? []) {
    if (!chosen.has(n.id)) continue;
    const c = structuredClone(n);
    if (c.next) c.next = c.next.filter((t) => chosen.has(t));
    if (c.inputs) {
      c.inputs = Object.fromEntries(Object.entries(c.inputs).filter(([, v]) => {
        const r = readsFrom(v, all);
        return !r || chosen.has(r.node);
      }));
    }
    nodes.push(c);
    const p = positions[n.id];
    if (p) at[n.id] = p;
  }
  if (nodes.length === 0) return undefined;
  const edges = (doc.edges ?? []).filter((e) => chosen.has(e.from) && chosen.has(e.to)).map((e) => ({ ...e }));
  return { nodes, edges, positions: at };
}

/** pasteNodes adds the clip's nodes to doc under fresh ids; positions are the clip's moved by offset. */
export function pasteNodes(doc: FlowDoc, clip: Clip, offset: XY = { x: 40, y: 40 }): { doc: FlowDoc; ids: Record<string, string>; positions: Record<string, XY> } {
  const ids: Record<string, string> = {};
  let out: FlowDoc = { ...doc, nodes: [...(doc.nodes ?? [])] };
  for (const n of clip.nodes) {
    const id = uniqueId(out, n.id);
    ids[n.id] = id;
    out = { ...out, nodes: [...(out.nodes ?? []), { id, kind: n.kind }] }; // reserve the id
  }
  const fresh = clip.nodes.map((n) => {
    const c: FlowNode = { ...structuredClone(n), id: ids[n.id] ?? n.id };
    if (c.inputs) c.inputs = renamePaths(c.inputs, ids) as Record<string, unknown>;
    if (c.next) c.next = c.next.map((t) => ids[t] ?? t);
    return c;
  });
  out = { ...out, nodes: [...(doc.nodes ?? []), ...fresh] };
  if (clip.edges.length > 0) out.edges = [...(doc.edges ?? []), ...clip.edges.map((e) => ({ from: ids[e.from] ?? e.from, to: ids[e.to] ?? e.to }))];
  const positions: Record<string, XY> = {};
  for (const [old, p] of Object.entries(clip.positions)) {
    const id = ids[old];
    if (id) positions[id] = { x: p.x + offset.x, y: p.y + offset.y };
  }
  return { doc: out, ids, positions };
}

const KEY = "tianshu.flow.clipboard";

/** storeClip keeps the clip in this browser, so it can be pasted into another flow too. */
export function storeClip(clip: Clip) {
  localStorage.setItem(KEY, JSON.stringify(clip));
}

export function loadClip(): Clip | undefined {
  try {
    const c = JSON.parse(localStorage.getItem(KEY) ?? "null") as Clip | null;
    return c && Array.isArray(c.nodes) && Array.isArray(c.edges) ? c : undefined;
  } catch {
    return undefined;
  }
}
