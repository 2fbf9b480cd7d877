// Auto-layout: dagre's layered drawing, left to right, with each node's
// drawn size so wide nodes do not overlap and wires cross as little as
// dagre can manage. graph.ts's layout() (rows by depth, in document order)
// stays the placement of nodes the person never moved; this is the button.
import dagre from "@dagrejs/dagre";
import type { XY } from "./graph";

export interface Box {
  id: string;
  width: number;
  height: number;
}

/** autoLayout answers the top-left corner of every node, ranks from left to right. */
export function autoLayout(nodes: readonly Box[], edges: readonly { source: string; target: string }[]): Record<string, XY> {
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: "LR", nodesep: 30, ranksep: 90, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) g.setNode(n.id, { width: n.width || 180, height: n.height || 60 });
  edges.forEach((e, i) => {
    if (e.source !== e.target && g.hasNode(e.source) && g.hasNode(e.target)) g.setEdge(e.source, e.target, {}, String(i));
  });
  dagre.layout(g);
  const out: Record<string, XY> = {};
  for (const n of nodes) {
    const p = g.node(n.id);
    out[n.id] = { x: Math.round(p.x - p.width / 2), y: Math.round(p.y - p.height / 2) };
  }
  return out;
}
