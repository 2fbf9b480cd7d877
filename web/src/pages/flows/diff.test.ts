import { describe, expect, it } from "vitest";
import { describeChange, diffFlows, isEmpty, merged, parseRange } from "./diff";
import type { FlowDoc } from "./graph";

const v1: FlowDoc = {
  name: "faces",
  parameters: { threshold: { type: "number", default: 0.5 } },
  nodes: [
    { id: "detect", kind: "algorithm", config: { algorithm: "face-detect", min_score: 0.5 }, inputs: { image: "$input.image" } },
    { id: "crop", kind: "foreach", inputs: { items: "$detect.faces" }, next: ["save"] },
    { id: "save", kind: "store", config: { type: "face" } },
  ],
};

const v2: FlowDoc = {
  name: "faces",
  parameters: { threshold: { type: "number", default: 0.7 }, site: { type: "string" } },
  nodes: [
    { id: "detect", kind: "algorithm", config: { algorithm: "face-detect", min_score: 0.8 }, inputs: { image: "$input.image" } },
    { id: "crop", kind: "foreach", inputs: { items: "$detect.boxes" } },
    { id: "publish", kind: "publish", config: { topic: "faces" }, inputs: { face: "$crop" } },
  ],
};

describe("diffFlows", () => {
  const d = diffFlows(v1, v2);
  it("finds nodes added, removed and changed, with their fields old → new", () => {
    expect(d.nodes.map((n) => [n.id, n.status])).toEqual([["detect", "changed"], ["crop", "changed"], ["publish", "added"], ["save", "removed"]]);
    expect(d.nodes[0]?.changes).toEqual([{ path: "config.min_score", before: 0.5, after: 0.8 }]);
    expect(d.nodes[1]?.changes).toEqual([{ path: "inputs.items", before: "$detect.faces", after: "$detect.boxes" }]);
    expect(d.nodes[3]?.kind).toBe("store");
  });
  it("finds edges added and removed, control and data alike", () => {
    expect(d.edges.map((e) => [e.status, e.label]).sort()).toEqual([
      ["added", "$crop → publish.face"],
      ["added", "$detect.boxes → crop.items"],
      ["removed", "$detect.faces → crop.items"],
      ["removed", "crop → save"],
    ]);
  });
  it("finds the flow's parameters changed", () => {
    expect(d.parameters.map(describeChange)).toEqual(['site: added {"type":"string"}', 'threshold: {"type":"number","default":0.5} → {"type":"number","default":0.7}']);
    expect(d.other).toEqual([]);
  });
  it("sees a kind changed, a field removed and the document's own fields", () => {
    const a: FlowDoc = { name: "a", nodes: [{ id: "x", kind: "throttle", config: { every: "1s" }, when: "$input.ok" }] };
    const b: FlowDoc = { name: "b", nodes: [{ id: "x", kind: "dedup", config: {} }] };
    const x = diffFlows(a, b);
    expect(x.nodes[0]?.changes.map(describeChange)).toEqual(["kind: \"throttle\" → \"dedup\"", 'config.every: removed "1s"', 'when: removed "$input.ok"']);
    expect(x.other.map(describeChange)).toEqual(['name: "a" → "b"']);
  });
  it("is empty between equal documents", () => {
    expect(isEmpty(diffFlows(v1, structuredClone(v1)))).toBe(true);
    expect(isEmpty(d)).toBe(false);
  });
});

describe("merged and parseRange", () => {
  it("draws both versions' nodes on one canvas", () => {
    expect(merged(v1, v2).nodes?.map((n) => n.id)).toEqual(["detect", "crop", "publish", "save"]);
  });
  it("reads diff=A..B from the URL", () => {
    expect(parseRange("3..5")).toEqual([3, 5]);
    expect(parseRange("5..3")).toEqual([5, 3]);
    expect(parseRange("3..3")).toBeUndefined();
    expect(parseRange("x")).toBeUndefined();
    expect(parseRange(null)).toBeUndefined();
  });
});
