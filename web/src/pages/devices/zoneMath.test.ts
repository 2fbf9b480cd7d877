// The zone editor's coordinate maths: pointer and keys to normalized
// coordinates, the same zone at two resolutions, and the checks the
// server applies.
import { describe, expect, it } from "vitest";
import { arrowHead, clamp01, insertAfter, keyMove, newZone, nudge, problem, removePoint, toNormalized, toPixels, uniqueName, zoneIndexOf } from "./zoneMath";
import type { Zone } from "./zoneMath";

describe("coordinates", () => {
  const box = { left: 100, top: 50, width: 640, height: 360 };
  it("maps a pointer to the picture's normalized coordinates, clamped to its edges", () => {
    expect(toNormalized(420, 230, box)).toEqual([0.5, 0.5]);
    expect(toNormalized(100, 50, box)).toEqual([0, 0]);
    expect(toNormalized(2000, -10, box)).toEqual([1, 0]);
    expect(toNormalized(1, 1, { left: 0, top: 0, width: 0, height: 0 })).toEqual([0, 0]);
  });
  it("keeps 4 decimals and survives a change of resolution", () => {
    const p = toNormalized(100 + 213.33, 50 + 120, box);
    expect(p).toEqual([0.3333, 0.3333]);
    expect(toPixels(p, 1920, 1080)).toEqual([0.3333 * 1920, 0.3333 * 1080]);
    expect(toPixels([0.5, 0.25], 640, 480)).toEqual([320, 120]);
    expect(toPixels([0.5, 0.25], 1280, 960)).toEqual([640, 240]);
    expect(clamp01(Number.NaN)).toBe(0);
  });
  it("moves a point with the arrow keys, 10% with Shift, never out of the picture", () => {
    const m = keyMove("ArrowRight", false) ?? { dx: 0, dy: 0, step: 0 };
    expect(m).toEqual({ dx: 1, dy: 0, step: 0.01 });
    expect(nudge([0.5, 0.5], m.dx, m.dy, m.step)).toEqual([0.51, 0.5]);
    const up = keyMove("ArrowUp", true) ?? { dx: 0, dy: 0, step: 0 };
    expect(nudge([0.5, 0.05], up.dx, up.dy, up.step)).toEqual([0.5, 0]);
    expect(keyMove("a", false)).toBeNull();
  });
});

describe("shapes", () => {
  it("starts zones and lines in the middle with unique names", () => {
    const a = newZone("polygon", []);
    expect(a.Name).toBe("zone");
    expect(a.Points).toHaveLength(4);
    expect(newZone("polygon", [a]).Name).toBe("zone-2");
    expect(newZone("line", []).Points).toHaveLength(2);
    expect(uniqueName("zone", [a, { ...a, Name: "zone-2" }])).toBe("zone-3");
  });
  it("adds a point halfway and removes one while 3 remain", () => {
    const z: Zone = { Name: "z", Kind: "polygon", Points: [[0, 0], [1, 0], [1, 1]] };
    const more = insertAfter(z, 2);
    expect(more.Points).toEqual([[0, 0], [1, 0], [1, 1], [0.5, 0.5]]);
    expect(removePoint(more, 0).Points).toEqual([[1, 0], [1, 1], [0.5, 0.5]]);
    expect(removePoint(z, 0)).toBe(z);
  });
  it("draws a line's direction from start to end", () => {
    const [tip] = arrowHead([0, 0], [100, 0], 10);
    expect(tip).toEqual([60, 0]);
  });
});

describe("problem", () => {
  const ok: Zone = { Name: "door", Kind: "polygon", Points: [[0, 0], [1, 0], [1, 1]] };
  it("names the field the server would refuse", () => {
    expect(problem([ok], 0)).toBeNull();
    expect(problem([ok, ok], 1)).toEqual({ field: "Zones[1].Name", message: '"door" names two zones' });
    expect(problem([{ ...ok, Name: " " }], 0)?.field).toBe("Zones[0].Name");
    expect(problem([{ ...ok, Points: [[0, 0], [1, 1]] }], 0)?.field).toBe("Zones[0].Points");
    expect(problem([{ Name: "l", Kind: "line", Points: [[0, 0], [1, 1], [0, 1]] }], 0)?.message).toBe("a line has 2 points");
    expect(problem([{ ...ok, Points: [[0, 0], [1.2, 0], [1, 1]] }], 0)?.field).toBe("Zones[0].Points");
  });
  it("reads the zone a server error names", () => {
    expect(zoneIndexOf("Zones[3].Points[1]")).toBe(3);
    expect(zoneIndexOf("Name")).toBe(-1);
    expect(zoneIndexOf(undefined)).toBe(-1);
  });
});
