import { describe, expect, it } from "vitest";
import { copyNodes, pasteNodes } from "./clipboard";
import type { FlowDoc } from "./graph";

const doc: FlowDoc = {
  name: "f",
  nodes: [
    { id: "detect", kind: "algorithm", config: { algorithm: "alg-face" }, inputs: { image: "$input.image" } },
    { id: "faces", kind: "foreach", inputs: { items: "$detect.faces", image: "$input.image", many: ["$detect.faces", 1] }, next: ["keep", "other"] },
    { id: "keep", kind: "store", inputs: { Box: "$faces.results", Outer: "$other" } },
    { id: "other", kind: "passthrough" },
  ],
  edges: [{ from: "detect", to: "faces" }, { from: "faces", to: "keep" }, { from: "other", to: "keep" }],
};

describe("copy and paste", () => {
  it("keeps the wires among the copied nodes under fresh ids, and drops those to other nodes", () => {
    const clip = copyNodes(doc, ["faces", "keep"], { faces: { x: 10, y: 20 }, keep: { x: 300, y: 20 } });
    expect(clip?.nodes.map((n) => n.id)).toEqual(["faces", "keep"]);
    if (!clip) throw new Error("no clip");
    const { doc: out, ids, positions } = pasteNodes(doc, clip);
    expect(ids).toEqual({ faces: "faces2", keep: "keep2" });
    expect(out.nodes?.length).toBe(6);
    const faces2 = out.nodes?.find((n) => n.id === "faces2");
    const keep2 = out.nodes?.find((n) => n.id === "keep2");
    // $detect is not copied: its wire is dropped; $input is no node: kept.
    expect(faces2?.inputs).toEqual({ image: "$input.image", many: ["$detect.faces", 1] });
    expect(faces2?.next).toEqual(["keep2"]);
    expect(keep2?.inputs).toEqual({ Box: "$faces2.results" });
    expect(out.edges).toEqual([...(doc.edges ?? []), { from: "faces2", to: "keep2" }]);
    expect(positions).toEqual({ faces2: { x: 50, y: 60 }, keep2: { x: 340, y: 60 } });
    // The original is untouched.
    expect(doc.nodes?.[1]?.next).toEqual(["keep", "other"]);
  });

  it("pasting twice gives other fresh ids", () => {
    const clip = copyNodes(doc, ["detect"]);
    if (!clip) throw new Error("no clip");
    const once = pasteNodes(doc, clip).doc;
    const twice = pasteNodes(once, clip);
    expect(twice.ids).toEqual({ detect: "detect3" });
    expect(twice.doc.nodes?.map((n) => n.id)).toEqual(["detect", "faces", "keep", "other", "detect2", "detect3"]);
    expect(twice.doc.edges).toEqual(doc.edges);
  });

  it("copies nothing when no node is chosen", () => {
    expect(copyNodes(doc, [])).toBeUndefined();
    expect(copyNodes(doc, ["nope"])).toBeUndefined();
  });
});
