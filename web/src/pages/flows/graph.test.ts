import { describe, expect, it } from "vitest";
import { compatible, connect, connectionRefusal, disconnect, docToGraph, graphToDoc, idProblem, INDEX, INPUT, inputPorts, ITEM, layout, MESSAGE_FIELDS, moreInputName, orderInputs, OUTPUT, removeNode, renameNode, takesMore } from "./graph";
import type { FlowDoc, NodeKinds, PortType } from "./graph";
import faceText from "../../../../examples/flows/face-structuring.json?raw";

// The demo's flow, as the platform stores it.
const FACE = JSON.parse(faceText) as FlowDoc;

// PortTypeSet as DescribeFlowNodeKinds answers it (flow.Compatible's families).
const TYPES: PortType[] = [
  { Name: "any", CompatibleWith: ["any", "image", "objects", "object", "list", "string", "number", "integer", "bool"] },
  { Name: "image", CompatibleWith: ["any", "image"] },
  { Name: "objects", CompatibleWith: ["any", "objects", "list"] },
  { Name: "list", CompatibleWith: ["any", "objects", "list"] },
  { Name: "number", CompatibleWith: ["any", "number", "integer"] },
  { Name: "integer", CompatibleWith: ["any", "number", "integer"] },
  { Name: "string", CompatibleWith: ["any", "string"] },
];

const KINDS: NodeKinds = {
  KindSet: [
    { Name: "track", Doc: "", Category: "stream", Inputs: [{ Name: "objects", Type: "objects", Required: true }], MoreInputs: false,
      Outputs: [{ Name: "objects", Type: "objects" }, { Name: "ended", Type: "objects" }], OutputsOpen: false, FromContract: false, ConfigSchema: null },
    { Name: "algorithm", Doc: "", Category: "algorithm", Inputs: null, MoreInputs: true, Outputs: null, OutputsOpen: true, FromContract: true, ConfigSchema: null },
  ],
  AlgorithmSet: [{ AlgorithmId: "alg-face-detect", Name: "face detect", Description: "", Version: "1", Kind: "algorithm", Config: { algorithm: "alg-face-detect" },
    Inputs: [{ Name: "image", Type: "image", Required: true }], Outputs: [{ Name: "faces", Type: "objects" }], OutputsOpen: false }],
  PortTypeSet: TYPES,
};

function roundTrip(doc: FlowDoc): FlowDoc {
  const g = docToGraph(doc, KINDS);
  const meta = { ...doc };
  delete meta.nodes;
  return graphToDoc(meta, g.nodes, g.edges);
}

describe("document and graph", () => {
  it("draws the demo's nodes, its edges and the wires of its input paths", () => {
    const g = docToGraph(FACE, KINDS);
    expect(g.nodes.map((n) => n.id)).toEqual(["detect", "faces", "track", "best", "keep"]);
    const ids = g.edges.map((e) => e.id);
    expect(ids).toContain("c:edges:detect>faces");
    expect(ids).toContain("d:detect.faces>faces.items");
    expect(ids).toContain("d:track.ended>best.ended");
    // $input is drawn as the Input node, with a wire per mapping that reads it; $params is not a node.
    expect(g.edges.some((e) => e.source === "params")).toBe(false);
    expect(g.edges.filter((e) => e.source === INPUT).map((e) => e.id)).toEqual(["d:input.image>detect.image", "d:input.device>detect.key", "d:input.image>faces.image", "d:input.device>keep.device", "d:input.frame>keep.frame"]);
    expect(g.input?.data.outputs.map((p) => p.Name)).toEqual(["image", "device", "frame"]);
    // Ports: the contract's, the kind's, and those the document reads.
    const detect = g.nodes.find((n) => n.id === "detect");
    expect(detect?.data.inputs.map((p) => p.Name)).toEqual(["image", "minSize", "quality", "gate", "key", "fullEvery"]);
    expect(detect?.data.outputs.map((p) => p.Name)).toEqual(["faces"]);
    expect(g.nodes.find((n) => n.id === "faces")?.data.outputs.map((p) => p.Name)).toEqual(["results"]);
  });

  it("writes back every field of the document", () => {
    expect(roundTrip(FACE)).toEqual(FACE);
    const odd: FlowDoc = {
      name: "x", output: { a: "$b" }, extra: [1, 2],
      nodes: [
        { id: "a", kind: "noop", next: ["b"], timeout: "2s", retry: { max: 1 }, onError: "route", errorNext: "c", description: "d" },
        { id: "b", kind: "passthrough", inputs: { v: "$a.x[0]", lit: "$$a", deep: { k: "$a" } }, next: [] },
        { id: "c", kind: "noop" },
      ],
    };
    expect(roundTrip(odd)).toEqual(odd);
  });

  it("lays nodes out by depth", () => {
    const pos = layout(["a", "b", "c", "d"], [{ source: "a", target: "b" }, { source: "b", target: "c" }, { source: "a", target: "d" }]);
    expect(pos.a).toEqual({ x: 0, y: 0 });
    expect(pos.b?.y).toBe(pos.d?.y);
    expect(pos.b?.x).not.toBe(pos.d?.x);
    expect((pos.c?.y ?? 0) > (pos.b?.y ?? 0)).toBe(true);
    // A cycle is laid out anyway.
    expect(Object.keys(layout(["a", "b"], [{ source: "a", target: "b" }, { source: "b", target: "a" }]))).toEqual(["a", "b"]);
  });

  it("connects, disconnects and removes by changing the document", () => {
    let doc: FlowDoc = { nodes: [{ id: "a", kind: "noop" }, { id: "b", kind: "track" }] };
    doc = connect(doc, "a", "out:faces", "b", "in:objects");
    expect(doc.nodes?.[1]?.inputs).toEqual({ objects: "$a.faces" });
    // The engine reads only an ancestor's output: the wire brought the edge a -> b with it.
    expect(doc.edges).toEqual([{ from: "a", to: "b" }]);
    doc = connect(doc, "a", "next", "b", "flow");
    expect(doc.edges).toEqual([{ from: "a", to: "b" }]);
    // A node that already runs before (here through b) brings no second edge.
    const chain = connect({ nodes: [{ id: "a", kind: "noop", next: ["b"] }, { id: "b", kind: "noop", next: ["c"] }, { id: "c", kind: "noop" }] }, "a", "out:x", "c", "in:x");
    expect(chain.edges).toBeUndefined();
    const g = docToGraph(doc, KINDS);
    for (const e of g.edges) doc = disconnect(doc, e);
    expect(doc.nodes?.[1]?.inputs).toEqual({});
    expect(doc.edges).toEqual([]);
    doc = removeNode({ nodes: [{ id: "a", kind: "noop", next: ["b"] }, { id: "b", kind: "noop" }], edges: [{ from: "a", to: "b" }] }, "b");
    expect(doc).toEqual({ nodes: [{ id: "a", kind: "noop", next: [] }], edges: [] });
  });
});

describe("port compatibility", () => {
  it("follows PortTypeSet", () => {
    expect(compatible(TYPES, "objects", "list")).toBe(true);
    expect(compatible(TYPES, "integer", "number")).toBe(true);
    expect(compatible(TYPES, "image", "any")).toBe(true);
    expect(compatible(TYPES, "any", "image")).toBe(true);
    expect(compatible(TYPES, "", "image")).toBe(true);
    expect(compatible(TYPES, "image", "objects")).toBe(false);
    expect(compatible(TYPES, "integer", "image")).toBe(false);
  });

  it("says why a connection is refused", () => {
    expect(connectionRefusal(TYPES, "detect", { Name: "faces", Type: "objects" }, "track", { Name: "objects", Type: "objects" })).toBe("");
    expect(connectionRefusal(TYPES, "twice", { Name: "y", Type: "integer" }, "z", { Name: "objects", Type: "objects" }))
      .toBe('$twice.y is an integer, but input "objects" of z takes a list of objects');
  });
});

describe("the Input node", () => {
  it("offers the message's fields, or the inputs the document declares, and any field read", () => {
    const plain = docToGraph({ nodes: [{ id: "a", kind: "noop", inputs: { v: "$input.custom" } }] }, KINDS);
    expect(plain.input?.data.outputs.map((p) => p.Name)).toEqual([...MESSAGE_FIELDS.map((p) => p.Name), "custom"]);
    expect(plain.input?.data.outputs.find((p) => p.Name === "image")?.Type).toBe("image");
    expect(plain.nodes.map((n) => n.id)).toEqual(["a"]);
    expect(inputPorts({ inputs: { label: { type: "string" }, x: {} } })).toEqual([{ Name: "label", Type: "string", Doc: "" }, { Name: "x", Type: "any", Doc: "" }]);
    // A node wrongly called input: no Input node, so no two nodes share the id.
    expect(docToGraph({ nodes: [{ id: "input", kind: "noop" }] }, KINDS).input).toBeUndefined();
  });

  it("wires the message into a node by writing the mapping, and is never part of the document", () => {
    let doc: FlowDoc = { nodes: [{ id: "detect", kind: "algorithm", config: { algorithm: "alg-face-detect" } }] };
    doc = connect(doc, INPUT, "out:image", "detect", "in:image");
    expect(doc.nodes?.[0]?.inputs).toEqual({ image: "$input.image" });
    // Control edges from or to it mean nothing: refused.
    expect(connect(doc, INPUT, "next", "detect", "flow")).toBe(doc);
    expect(connect(doc, "detect", "out:faces", INPUT, "in:x")).toBe(doc);
    const g = docToGraph(doc, KINDS);
    const wire = g.edges.find((e) => e.source === INPUT);
    expect(wire).toMatchObject({ sourceHandle: "out:image", targetHandle: "in:image", data: { origin: "input", field: "image", input: "image" } });
    expect(graphToDoc({}, g.nodes, g.edges)).toEqual(doc);
    if (wire) expect(disconnect(doc, wire).nodes?.[0]?.inputs).toEqual({});
  });
});

describe("orderInputs", () => {
  it("adds the edge from each node a typed mapping reads, once, when it does not run before", () => {
    const doc: FlowDoc = {
      nodes: [
        { id: "det", kind: "algorithm", next: ["trk"] },
        { id: "trk", kind: "track" },
        { id: "save", kind: "store", inputs: { Faces: "$trk.objects", Frame: { pic: ["$det.image"] }, Image: "$input.image", Lit: "$$trk" } },
      ],
    };
    const out = orderInputs(doc, "save");
    expect(out.edges).toEqual([{ from: "trk", to: "save" }]);
    expect(orderInputs(out, "save")).toBe(out);
  });
});

describe("inputs of any name", () => {
  it("names a wired input after the source's field, unique among the node's inputs", () => {
    const node = { id: "save", kind: "store", inputs: { objects: "$a.objects" } };
    expect(moreInputName(node, "objects")).toBe("objects2");
    expect(moreInputName(node, "image")).toBe("image");
    expect(moreInputName(node, "")).toBe("value");
    // Beside a field of that name, one from a node is named after the node too; from the message, numbered.
    expect(moreInputName(node, "objects", "track")).toBe("trackObjects");
    expect(moreInputName(node, "objects", INPUT)).toBe("objects2");
  });
  it("is offered by kinds that take more inputs, not by algorithms (their contract names them)", () => {
    expect(takesMore({ id: "x", kind: "algorithm" }, KINDS)).toBe(false);
    expect(takesMore({ id: "x", kind: "track" }, KINDS)).toBe(false);
    const store = { Name: "store", Doc: "", Category: "sink", Inputs: null, MoreInputs: true, Outputs: null, OutputsOpen: false, FromContract: false, ConfigSchema: null };
    expect(takesMore({ id: "x", kind: "store" }, { ...KINDS, KindSet: [...KINDS.KindSet, store] })).toBe(true);
  });
});

describe("renaming a node", () => {
  it("renames its id and everything that names it: inputs at any depth, next, edges, switch targets, errorNext, the output", () => {
    const doc: FlowDoc = {
      output: { faces: "$detect.faces", n: "$detector" },
      nodes: [
        { id: "detect", kind: "algorithm", next: ["pick"], errorNext: "detect" },
        { id: "detector", kind: "noop", inputs: { v: "$detect" } },
        { id: "pick", kind: "switch", inputs: { f: "$detect.faces", deep: { l: ["$detect.width", "$$detect"] } }, config: { cases: [{ when: "True", next: "detect" }], default: "detect" } },
      ],
      edges: [{ from: "detect", to: "detector" }],
    };
    const out = renameNode(doc, "detect", "faces");
    expect(out).toEqual({
      output: { faces: "$faces.faces", n: "$detector" },
      nodes: [
        { id: "faces", kind: "algorithm", next: ["pick"], errorNext: "faces" },
        { id: "detector", kind: "noop", inputs: { v: "$faces" } },
        { id: "pick", kind: "switch", inputs: { f: "$faces.faces", deep: { l: ["$faces.width", "$$detect"] } }, config: { cases: [{ when: "True", next: "faces" }], default: "faces" } },
      ],
      edges: [{ from: "faces", to: "detector" }],
    });
    // The wires drawn follow: the same edges (the output's too), under the new id.
    expect(docToGraph(doc, KINDS).edges.map((e) => e.id)).toEqual(["c:next:detect>pick", "c:edges:detect>detector", "d:detect.>detector.v", "d:detect.faces>pick.f", "o:detect.faces>faces", "o:detector.>n"]);
    expect(docToGraph(out, KINDS).edges.map((e) => e.id)).toEqual(["c:next:faces>pick", "c:edges:faces>detector", "d:faces.>detector.v", "d:faces.faces>pick.f", "o:faces.faces>faces", "o:detector.>n"]);
    expect(renameNode(doc, "detect", "detect")).toBe(doc);
  });

  it("refuses an id the engine refuses", () => {
    const doc: FlowDoc = { nodes: [{ id: "a", kind: "noop" }, { id: "b", kind: "noop" }] };
    expect(idProblem(doc, "c")).toBe("");
    expect(idProblem(doc, "a", "a")).toBe("");
    expect(idProblem(doc, "b", "a")).toBe("there is already a node b");
    expect(idProblem(doc, "item")).toBe('"item" is reserved for paths ($item)');
    expect(idProblem(doc, "2x")).toMatch(/^ids are letters/);
    expect(idProblem(doc, "x".repeat(65))).toBe("at most 64 characters");
  });
});

describe("a foreach body's canvas", () => {
  const body = { input: [{ Name: "image", Type: "image" }], item: [{ Name: "box", Type: "list" }, { Name: "score", Type: "number" }] };

  it("draws its foreach's inputs, the element and the output mapping, with their wires", () => {
    const doc: FlowDoc = {
      nodes: [{ id: "crop", kind: "algorithm", config: { algorithm: "alg-face-detect" }, inputs: { image: "$input.image", box: "$item.box" } }],
      output: { box: "$item.box", crop: "$crop.faces", frame: "$input.image", q: "$item.quality" },
    };
    const g = docToGraph(doc, KINDS, {}, body);
    expect(g.input?.data.outputs.map((p) => p.Name)).toEqual(["image"]);
    // A field read beyond those known gets a port.
    expect(g.item?.data.outputs.map((p) => p.Name)).toEqual(["box", "score", "quality", INDEX]);
    expect(g.output?.data.inputs.map((p) => p.Name)).toEqual(["box", "crop", "frame", "q"]);
    expect(g.edges.filter((e) => e.target === OUTPUT).map((e) => e.id)).toEqual(["o:item.box>box", "o:crop.faces>crop", "o:input.image>frame", "o:item.quality>q"]);
    expect(g.edges.find((e) => e.id === "d:item.box>crop.box")?.sourceHandle).toBe("out:box");
    // Nothing of it is in the document.
    expect(graphToDoc({ output: doc.output }, g.nodes, g.edges)).toEqual(doc);
    // Without body (the flow itself): no Item.
    expect(docToGraph(doc, KINDS).item).toBeUndefined();
  });

  it("draws $index from the Item node's index port and wires it as $index", () => {
    let doc: FlowDoc = { nodes: [{ id: "crop", kind: "noop", inputs: { at: "$index" } }] };
    const g = docToGraph(doc, KINDS, {}, body);
    expect(g.item?.data.outputs.find((p) => p.Name === INDEX)?.Type).toBe("integer");
    expect(g.edges.map((e) => [e.source, e.sourceHandle, e.targetHandle])).toEqual([[ITEM, `out:${INDEX}`, "in:at"]]);
    doc = connect(doc, ITEM, `out:${INDEX}`, OUTPUT, "in:n");
    expect(doc.output).toEqual({ n: "$index" });
    expect(docToGraph(doc, KINDS, {}, body).edges.find((e) => e.target === OUTPUT)?.id).toBe(`o:${ITEM}.${INDEX}>n`);
    // At the top there is no $index: a node (wrongly) reading it is not wired.
    expect(docToGraph(doc, KINDS).edges).toEqual([]);
  });

  it("wires the element and the output by changing the document", () => {
    let doc: FlowDoc = { nodes: [{ id: "crop", kind: "noop" }] };
    doc = connect(doc, ITEM, "out:box", "crop", "in:box");
    doc = connect(doc, "crop", "out:image", OUTPUT, "in:crop");
    doc = connect(doc, ITEM, "next", OUTPUT, "in:whole");
    expect(doc).toEqual({ nodes: [{ id: "crop", kind: "noop", inputs: { box: "$item.box" } }], output: { crop: "$crop.image", whole: "$item" } });
    // No control edge to or from either.
    expect(connect(doc, ITEM, "next", "crop", "flow")).toBe(doc);
    expect(connect(doc, "crop", "next", OUTPUT, "flow")).toBe(doc);
    expect(connect(doc, "crop", "out:x", ITEM, "in:x")).toBe(doc);
    const wire = docToGraph(doc, KINDS, {}, body).edges.find((e) => e.id === "o:crop.image>crop");
    expect(wire && disconnect(doc, wire).output).toEqual({ whole: "$item" });
  });
});

describe("the flow's Output node", () => {
  it("draws the flow's output mapping as wires into Output, wires by changing output, and unwires by removing the field", () => {
    const doc: FlowDoc = {
      nodes: [{ id: "detect", kind: "algorithm", config: { algorithm: "alg-face-detect" }, inputs: { image: "$input.image" } }],
      output: { faces: "$detect.faces", frame: "$input.image", fixed: 3 },
    };
    const g = docToGraph(doc, KINDS);
    expect(g.output.data.node.description).toBe("what the flow returns");
    expect(g.output.data.inputs.map((p) => p.Name)).toEqual(["faces", "frame", "fixed"]);
    expect(g.output.data.more).toBe(true);
    // A literal has a port but no wire.
    expect(g.edges.filter((e) => e.target === OUTPUT).map((e) => [e.id, e.sourceHandle, e.targetHandle])).toEqual([
      ["o:detect.faces>faces", "out:faces", "in:faces"], ["o:input.image>frame", "out:image", "in:frame"]]);
    // Nothing of it is in the nodes, and it lies below them.
    expect(graphToDoc({ output: doc.output }, g.nodes, g.edges)).toEqual(doc);
    expect(g.output.position.y).toBeGreaterThan(Math.max(...g.nodes.map((n) => n.position.y)));

    let d: FlowDoc = { nodes: [{ id: "detect", kind: "noop" }] };
    d = connect(d, "detect", "out:faces", OUTPUT, "in:faces");
    d = connect(d, INPUT, "out:device", OUTPUT, "in:device");
    expect(d).toEqual({ nodes: [{ id: "detect", kind: "noop" }], output: { faces: "$detect.faces", device: "$input.device" } });
    // No control edge into it.
    expect(connect(d, "detect", "next", OUTPUT, "flow")).toBe(d);
    const wire = docToGraph(d, KINDS).edges.find((e) => e.id === "o:detect.faces>faces");
    expect(wire && disconnect(d, wire).output).toEqual({ device: "$input.device" });
    // A document without output has an empty Output node.
    expect(docToGraph({ nodes: [] }, KINDS).output.data.inputs).toEqual([]);
  });
});
