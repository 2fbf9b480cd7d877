import { describe, expect, it } from "vitest";
import { exportDoc, fileName, parseDoc } from "./docio";
import type { FlowDoc } from "./graph";

const doc: FlowDoc = {
  name: "zone intrusion",
  inputs: { image: { type: "image", required: true } },
  nodes: [{ id: "motion", kind: "algorithm", config: { algorithm: "alg-motion" }, inputs: { image: "$input.image" } }, { id: "t", kind: "track" }],
  edges: [{ from: "motion", to: "t" }],
};

describe("import and export", () => {
  it("reads back what it writes, as JSON and as YAML", async () => {
    expect(await parseDoc(await exportDoc(doc, "json"))).toEqual(doc);
    const y = await exportDoc(doc, "yaml");
    expect(y).toContain("kind: algorithm");
    expect(await parseDoc(y)).toEqual(doc);
  });

  it("names the file after the flow", () => {
    expect(fileName(doc, "yaml")).toBe("zone-intrusion.yaml");
    expect(fileName({}, "json")).toBe("flow.json");
  });

  it("says what is wrong with a document it cannot take", async () => {
    await expect(parseDoc("")).rejects.toThrow("empty");
    await expect(parseDoc("{nodes: [")).rejects.toThrow(/^not JSON or YAML/);
    await expect(parseDoc("- a\n- b\n")).rejects.toThrow("want an object");
    await expect(parseDoc("nodes: 3")).rejects.toThrow("nodes: want a list");
    await expect(parseDoc("nodes:\n  - id: a\n")).rejects.toThrow("nodes[0].kind: want a string");
    await expect(parseDoc("x: " + "a".repeat(1 << 20))).rejects.toThrow("over 1024 KiB");
  });
});
