import { describe, expect, it } from "vitest";
import { autoLayout } from "./autolayout";

describe("autoLayout", () => {
  it("draws ranks left to right, without overlaps", () => {
    const nodes = ["a", "b", "c", "d"].map((id) => ({ id, width: 180, height: 80 }));
    const raw = autoLayout(nodes, [{ source: "a", target: "b" }, { source: "a", target: "c" }, { source: "b", target: "d" }, { source: "c", target: "d" }, { source: "d", target: "d" }]);
    const at = (id: string) => raw[id] ?? { x: NaN, y: NaN };
    expect(at("a").x).toBeLessThan(at("b").x);
    expect(at("b").x).toBe(at("c").x);
    expect(at("c").x).toBeLessThan(at("d").x);
    expect(Math.abs(at("b").y - at("c").y)).toBeGreaterThanOrEqual(80);
  });

  it("lays out a node with no wires, and ignores wires to nodes it was not given", () => {
    const at = autoLayout([{ id: "x", width: 0, height: 0 }], [{ source: "x", target: "gone" }]);
    expect(Object.keys(at)).toEqual(["x"]);
  });
});
