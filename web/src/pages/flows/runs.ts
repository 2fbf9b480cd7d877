// Test runs in the flow editor, without React: what RunFlowTest answers,
// the boxes and the picture in a node's output, the upstream outputs a
// single-node run pins, and the last runs of each node kept to compare.
import type { FlowDoc } from "./graph";

/** PictureRef is a picture in a test run's answer: a signed URL to it (or why it was left out). */
export interface PictureRef {
  ObjectUrl?: string;
  ObjectKey?: string;
  ContentType: string;
  Size: number;
  Omitted?: string;
}

/** NodeRun is one node's outcome in a test run. */
export interface NodeRun {
  NodeId: string;
  Kind: string;
  Status: string;
  DurationUs: number;
  Attempts?: number;
  Output?: unknown;
  Error?: string;
}

/** TestRunResponse is RunFlowTest's answer. */
export interface TestRunResponse {
  Input: Record<string, unknown> | null;
  Output: Record<string, unknown> | null;
  NodeSet: NodeRun[];
  RecordSet: { RecordId: string; Type: string; Data: Record<string, unknown> }[];
  EventSet: { Type: string; Subject: string; Data: Record<string, unknown> }[];
  RunError: string;
  DurationUs: number;
  /** FrameSet holds one answer per frame when the input was a video. */
  FrameSet?: TestRunFrame[];
}

/** TestRunFrame is one frame of a video test run. */
export interface TestRunFrame {
  Frame: number;
  TimeMs: number;
  Input: Record<string, unknown> | null;
  NodeSet: NodeRun[];
  RunError: string;
  DurationUs: number;
}

/** Box is an object with a box [x, y, width, height] in the picture's pixels. */
export interface Box {
  box: [number, number, number, number];
  label?: string;
  score?: number;
  trackId?: number;
}

const MAX_DEPTH = 12;
const MAX_BOXES = 200;

/** boxesOf finds every object with a box [x, y, w, h] of numbers in a node's output, at any depth. */
export function boxesOf(v: unknown): Box[] {
  const out: Box[] = [];
  const walk = (x: unknown, depth: number) => {
    if (out.length >= MAX_BOXES || depth > MAX_DEPTH || x === null || typeof x !== "object") return;
    if (Array.isArray(x)) {
      for (const e of x) walk(e, depth + 1);
      return;
    }
    const o = x as Record<string, unknown>;
    const b = o.box;
    if (Array.isArray(b) && b.length === 4 && b.every((n) => typeof n === "number" && Number.isFinite(n))) {
      out.push({ box: b as Box["box"], label: typeof o.label === "string" ? o.label : undefined, score: typeof o.score === "number" ? o.score : undefined,
        trackId: typeof o.trackId === "number" ? o.trackId : undefined });
      return;
    }
    for (const e of Object.values(o)) walk(e, depth + 1);
  };
  walk(v, 0);
  return out;
}

/** isPicture tells a picture reference of a test run's answer. */
export function isPicture(v: unknown): v is PictureRef {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  return typeof o.ContentType === "string" && typeof o.Size === "number" && (typeof o.ObjectUrl === "string" || typeof o.Omitted === "string");
}

/** pictureOf finds the first picture with a URL in a value: breadth first, so a node's frame comes before the crops inside its objects. */
export function pictureOf(v: unknown): PictureRef | undefined {
  let level: unknown[] = [v];
  for (let depth = 0; depth <= MAX_DEPTH && level.length > 0; depth++) {
    const next: unknown[] = [];
    for (const x of level) {
      if (isPicture(x)) {
        if (x.ObjectUrl && x.ContentType.startsWith("image/")) return x;
        continue;
      }
      if (x !== null && typeof x === "object") next.push(...(Array.isArray(x) ? x : Object.values(x)));
    }
    level = next;
  }
  return undefined;
}

/** ms writes microseconds as milliseconds a person reads. */
export function ms(us: number): string {
  const v = us / 1000;
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`;
}

/** summary says in a few words what a node produced: "3 objects", "2 items", "picture", or its error. */
export function summary(n: NodeRun): string {
  if (n.Status !== "ok") return n.Error ? `${n.Status}: ${n.Error}` : n.Status;
  const boxes = boxesOf(n.Output).length;
  if (boxes > 0) return `${boxes} object${boxes === 1 ? "" : "s"}`;
  const o = n.Output;
  if (o === null || o === undefined) return "no output";
  if (typeof o === "object" && !Array.isArray(o)) {
    const lists = Object.values(o).filter(Array.isArray);
    if (lists.length > 0) {
      const items = lists.reduce((a, l) => a + l.length, 0);
      return `${items} item${items === 1 ? "" : "s"}`;
    }
    if (pictureOf(o)) return "picture";
    const keys = Object.keys(o).length;
    return `${keys} field${keys === 1 ? "" : "s"}`;
  }
  return typeof o;
}

/** upstreamOf names the nodes a node reads: the $node references in its inputs and config, and the nodes wired to it. */
export function upstreamOf(doc: FlowDoc, id: string): string[] {
  const node = doc.nodes?.find((n) => n.id === id);
  if (!node) return [];
  const ids = new Set((doc.nodes ?? []).map((n) => n.id));
  const found = new Set<string>();
  const text = JSON.stringify([node.inputs ?? {}, node.config ?? {}]);
  for (const m of text.matchAll(/\$([A-Za-z_][A-Za-z0-9_-]*)/g)) if (m[1] && ids.has(m[1])) found.add(m[1]);
  for (const e of doc.edges ?? []) if (e.to === id && ids.has(e.from)) found.add(e.from);
  found.delete(id);
  return [...found].sort();
}

/** pinnedFor answers the outputs of a run to pin for a single-node run of id: its upstream nodes' that succeeded. */
export function pinnedFor(doc: FlowDoc, id: string, nodes: NodeRun[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const up of upstreamOf(doc, id)) {
    const n = nodes.find((r) => r.NodeId === up);
    if (n && n.Status === "ok") out[up] = n.Output ?? null;
  }
  return out;
}

/** RunEntry is one node's result of one test run, kept to compare. */
export interface RunEntry {
  /** seq numbers runs in this browser tab, per flow. */
  seq: number;
  at: string;
  /** mode says whether the whole flow ran ("flow") or the node alone on pinned outputs ("node"). */
  mode: "flow" | "node";
  input: string;
  /** frame is the video frame (from 1), absent for a picture. */
  frame?: number;
  node: NodeRun;
  /** picture is the run's input picture, where boxes are drawn when the node's output has none. */
  picture?: PictureRef;
}

/** History is the last runs of each node, newest first. */
export type History = Record<string, RunEntry[]>;

/** KEEP is how many runs of each node are kept. */
export const KEEP = 20;

/** remember adds a run's nodes to the history, keeping the last KEEP of each. */
export function remember(h: History, nodes: NodeRun[], e: Omit<RunEntry, "node">): History {
  const out: History = { ...h };
  for (const n of nodes) out[n.NodeId] = [{ ...e, node: n }, ...(out[n.NodeId] ?? [])].slice(0, KEEP);
  return out;
}

/** nextSeq is the number of the next run. */
export function nextSeq(h: History): number {
  let max = 0;
  for (const runs of Object.values(h)) for (const r of runs) max = Math.max(max, r.seq);
  return max + 1;
}

const historyKey = (flow: string) => `tianshu.flow.testruns.${flow}`;

/** loadHistory reads a flow's runs kept in this tab (sessionStorage: the pictures' URLs last an hour anyway). */
export function loadHistory(store: Pick<Storage, "getItem">, flow: string): History {
  try {
    const v = JSON.parse(store.getItem(historyKey(flow)) ?? "{}") as unknown;
    return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as History) : {};
  } catch {
    return {};
  }
}

/** saveHistory keeps a flow's runs in this tab; when they do not fit, the oldest half of each node's go first. */
export function saveHistory(store: Pick<Storage, "setItem">, flow: string, h: History): void {
  let v = h;
  for (let i = 0; i < 4; i++) {
    try {
      store.setItem(historyKey(flow), JSON.stringify(v));
      return;
    } catch {
      v = Object.fromEntries(Object.entries(v).map(([k, runs]) => [k, runs.slice(0, Math.ceil(runs.length / 2))]));
    }
  }
}
