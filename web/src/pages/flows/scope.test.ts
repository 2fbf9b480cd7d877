import { describe, expect, it } from "vitest";
import type { FlowDoc } from "./graph";
import { addNode } from "./graph";
import { bodyAt, editBody, errorsIn, parseScope, positionsIn, posKey } from "./scope";

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
