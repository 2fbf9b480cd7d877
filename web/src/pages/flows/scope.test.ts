import { describe, expect, it } from "vitest";
import type { FlowDoc, NodeKinds } from "./graph";
import { addNode } from "./graph";
import { bodyAt, bodyPorts, editBody, errorsIn, parseScope, positionsIn, posKey } from "./scope";
import faceText from "../../../../examples/flows/face-structuring.json?raw";

const doc: FlowDoc = {
  nodes: [
    { id: "enter", kind: "zone" },
    { id: "each", kind: "foreach", config: { concurrency: 2, body: { nodes: [{ id: "save", kind: "store" }], edges: [] } } },
    { id: "empty", kind: "foreach" },
  ],
};

describe("nested canvases", () => {
  it("finds a foreach body, an empty one when it has none, and nothing elsewhere", () => {
    expect(bodyAt(doc, parseScope("each"))?.nodes?.map((n) => n.id)).toEqual(["save"]);
    expect(bodyAt(doc, ["empty"])).toEqual({ nodes: [] });
    expect(bodyAt(doc, ["enter"])).toBeUndefined();
    expect(bodyAt(doc, ["each", "save"])).toBeUndefined();
    expect(bodyAt(doc, [])).toBe(doc);
  });

  it("an edit of the body is an edit of the document", () => {
    const out = editBody(doc, ["each"], (b) => addNode(b, { id: "tell", kind: "publish" }));
    expect(bodyAt(out, ["each"])?.nodes?.map((n) => n.id)).toEqual(["save", "tell"]);
    expect(out.nodes?.[1]?.config?.concurrency).toBe(2);
    expect(bodyAt(doc, ["each"])?.nodes?.length).toBe(1); // the old document is unchanged
    const made = editBody(doc, ["empty"], (b) => addNode(b, { id: "x", kind: "passthrough" }));
    expect(made.nodes?.[2]?.config).toEqual({ body: { nodes: [{ id: "x", kind: "passthrough" }] } });
  });

  it("keeps body positions apart from the document's", () => {
    const all = { save: { x: 1, y: 1 }, [posKey(["each"], "save")]: { x: 2, y: 2 }, "each/in/deep": { x: 3, y: 3 } };
    expect(positionsIn(all, ["each"])).toEqual({ save: { x: 2, y: 2 } });
    expect(positionsIn(all, [])).toBe(all);
  });

  it("shows a body's errors on its nodes, others on the document", () => {
    const errs = errorsIn([
      { NodeId: "each/save", Field: "inputs.Box", Message: "bad", Edge: { From: "each/a", To: "each/save" } },
      { NodeId: "enter", Field: "config.zone", Message: "missing" },
    ], ["each"]);
    expect(errs).toEqual([
      { NodeId: "save", Field: "inputs.Box", Message: "bad", Edge: { From: "a", To: "save" } },
      { NodeId: "", Field: "enter.config.zone", Message: "missing", Edge: null },
    ]);
  });
});

describe("what a body reads", () => {
  const face = JSON.parse(faceText) as FlowDoc;
  const kinds: NodeKinds = {
    KindSet: [
      { Name: "algorithm", Doc: "", Category: "algorithm", Inputs: null, MoreInputs: true, Outputs: null, OutputsOpen: true, FromContract: true, ConfigSchema: null },
      { Name: "track", Doc: "", Category: "stream", Inputs: [{ Name: "objects", Type: "objects" }], MoreInputs: false, Outputs: [{ Name: "objects", Type: "objects" }], OutputsOpen: false, FromContract: false, ConfigSchema: null },
      { Name: "bestshot", Doc: "", Category: "stream", Inputs: [{ Name: "objects", Type: "objects" }], MoreInputs: false, Outputs: [{ Name: "best", Type: "objects" }], OutputsOpen: false, FromContract: false, ConfigSchema: null },
    ],
    AlgorithmSet: [{ AlgorithmId: "alg-face-detect", Name: "", Description: "", Version: "1", Kind: "algorithm", Config: {}, Inputs: [{ Name: "image", Type: "image" }], Outputs: [{ Name: "faces", Type: "objects" }], OutputsOpen: false }],
    PortTypeSet: [],
  };
  it("is the foreach's inputs and the fields of an element: an object's, or those of the body the list comes from", () => {
    expect(bodyPorts(face, [], kinds)).toBeUndefined();
    const faces = bodyPorts(face, ["faces"], kinds);
    expect(faces?.input).toEqual([{ Name: "image", Type: "image", Doc: 'the foreach\'s input image: "$input.image"' }]);
    expect(faces?.item.map((p) => p.Name)).toEqual(["box", "score", "label", "trackId"]);
    // best.best <- track.objects <- faces.results: the fields the faces body outputs, and an object's.
    const keep = bodyPorts(face, ["keep"], kinds);
    expect(keep?.input.map((p) => `${p.Name}:${p.Type}`)).toEqual(["device:string", "frame:integer"]);
    expect(keep?.item.map((p) => p.Name)).toEqual(["box", "score", "quality", "frame", "label", "trackId"]);
    expect(bodyPorts(face, ["detect"], kinds)).toBeUndefined();
  });

  it("is the fields the algorithm's contract declares for an element, where it declares them", () => {
    const items = [{ Name: "box", Type: "list" }, { Name: "score", Type: "number" }, { Name: "quality", Type: "object", Doc: "sharpness ..." }];
    const declared: NodeKinds = { ...kinds, AlgorithmSet: kinds.AlgorithmSet.map((a) => ({ ...a, Outputs: [{ Name: "faces", Type: "objects", Items: items }] })) };
    const faces = bodyPorts(face, ["faces"], declared);
    expect(faces?.item).toEqual([{ Name: "box", Type: "list", Doc: "" }, { Name: "score", Type: "number", Doc: "" }, { Name: "quality", Type: "object", Doc: "sharpness ..." }]);
    // Through a tracker: the declared fields and the track's id.
    const f: FlowDoc = { nodes: [
      { id: "detect", kind: "algorithm", config: { algorithm: "alg-face-detect" } },
      { id: "track", kind: "track", inputs: { objects: "$detect.faces" } },
      { id: "each", kind: "foreach", inputs: { items: "$track.objects" } },
    ] };
    expect(bodyPorts(f, ["each"], declared)?.item.map((p) => p.Name)).toEqual(["box", "score", "quality", "label", "trackId"]);
  });
});
