// The Flows list pages from the server and offers New flow only to who may
// create; errors of ValidateFlow land on the wire, node or document they name.
import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, render, screen } from "@testing-library/react";
import { SessionContext } from "../session";
import { sessionFor, stubActions } from "../testServer";
import { Flows } from "./Flows";
import { errorsByPlace } from "./flows/validation";
import { docToGraph } from "./flows/graph";

const FLOW = { FlowId: "flow-1", ProjectId: "demo", Name: "face-structuring", Description: "faces", LatestVersion: 3, CreatedTime: "2026-12-06T10:00:00Z" };

function show(actions: string[]) {
  return render(
    <SessionContext.Provider value={sessionFor(actions)}>
      <Flows />
    </SessionContext.Provider>,
  );
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("Flows", () => {
  it("lists the project's flows a page at a time, each opening its latest version", async () => {
    window.history.replaceState(null, "", "/flows?project=demo&offset=20");
    const sent = stubActions({ DescribeFlows: () => ({ TotalCount: 21, FlowSet: [FLOW] }) });
    show(["DescribeFlows", "CreateFlow"]);
    const link = await screen.findByRole("link", { name: "face-structuring" });
    expect(link.getAttribute("href")).toContain("flow=flow-1&version=3");
    expect(sent[0]).toEqual({ action: "DescribeFlows", body: { ProjectId: "demo", Offset: 20, Limit: 20 } });
    expect(screen.getByRole("button", { name: "New flow" })).toBeTruthy();
  });

  it("offers no New flow without CreateFlow", async () => {
    window.history.replaceState(null, "", "/flows?project=demo");
    stubActions({ DescribeFlows: () => ({ TotalCount: 1, FlowSet: [FLOW] }) });
    show(["DescribeFlows"]);
    await screen.findByRole("link", { name: "face-structuring" });
    expect(screen.queryByRole("button", { name: "New flow" })).toBeNull();
  });
});

describe("errorsByPlace", () => {
  it("pins a miswiring on its wire, a node's error on the node, the rest on the document", () => {
    const g = docToGraph({ nodes: [{ id: "twice", kind: "function" }, { id: "z", kind: "zone", inputs: { objects: "$twice.y" } },
      { id: "f", kind: "foreach" }] }, undefined);
    const p = errorsByPlace([
      { NodeId: "z", Edge: { From: "twice", To: "z" }, Field: "inputs.objects", Message: "$twice.y is an integer" },
      { NodeId: "z", Field: "config.mode", Message: "not one of inside|outside" },
      { NodeId: "f/inner", Field: "config", Message: "bad" },
      { NodeId: "", Field: "output.x", Message: "unknown node" },
    ], g.edges);
    expect(p.onEdge).toEqual({ "d:twice.y>z.objects": ["inputs.objects: $twice.y is an integer"] });
    expect(p.onNode).toEqual({ z: ["config.mode: not one of inside|outside"], f: ["f/inner: config: bad"] });
    expect(p.onDoc).toEqual(["output.x: unknown node"]);
  });
});
