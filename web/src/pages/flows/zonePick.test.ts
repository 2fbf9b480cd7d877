import { describe, expect, it } from "vitest";
import { inlineZones, withInline, withNamed } from "./zonePick";

describe("zone picker", () => {
  it("shows an inline polygon on the snapshot and writes a drawn one back in pixels", () => {
    const cfg = { polygon: [[0, 0], [320, 0], [320, 180]], mode: "enter" };
    expect(inlineZones(cfg, 640, 360)).toEqual([{ Name: "zone", Kind: "polygon", Points: [[0, 0], [0.5, 0], [0.5, 0.5]] }]);
    expect(withInline({ zone: "door", mode: "enter", anchor: "center" }, [{ Name: "zone", Kind: "polygon", Points: [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]] }], 640, 360))
      .toEqual({ polygon: [[64, 36], [320, 36], [320, 180]], mode: "enter", anchor: "center" });
    // A line is crossed: a polygon's mode goes.
    expect(withInline(cfg, [{ Name: "line", Kind: "line", Points: [[0, 0.5], [1, 0.5]] }], 640, 360)).toEqual({ line: [[0, 180], [640, 180]] });
    expect(withInline(cfg, [], 640, 360)).toEqual({ mode: "enter" });
    expect(inlineZones({ polygon: "x" }, 640, 360)).toEqual([]);
  });

  it("names a device's zone in place of inline geometry", () => {
    expect(withNamed({ polygon: [[0, 0], [1, 0], [1, 1]], mode: "cross" }, { Name: "door", Kind: "polygon", Points: [] })).toEqual({ zone: "door" });
    expect(withNamed({ mode: "cross" }, { Name: "wire", Kind: "line", Points: [] })).toEqual({ zone: "wire", mode: "cross" });
  });
});
