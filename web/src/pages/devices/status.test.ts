import { describe, expect, it } from "vitest";
import { reasonText } from "./status";

describe("reasonText", () => {
  it("explains an edge device whose node stopped reporting", () => {
    expect(reasonText("edge_not_reporting")).toContain("edge node is not reporting");
  });
  it("keeps other reasons as the server gave them", () => {
    expect(reasonText("unreachable")).toBe("unreachable");
    expect(reasonText(undefined)).toBe("");
  });
});
