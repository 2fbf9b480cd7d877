import { describe, expect, it } from "vitest";
import { readValue, schemaFields, showValue } from "./schema";
import type { JsonSchema } from "./graph";

// The shape of the track kind's ConfigSchema, plus one field of every kind of widget.
const SCHEMA: JsonSchema = {
  type: "object",
  required: ["mode"],
  properties: {
    iou: { type: "number", default: 0.3, minimum: 0, maximum: 1, description: "overlap" },
    maxAge: { type: "string", format: "duration", default: "1s" },
    maxTracks: { type: "integer", minimum: 1 },
    skipFailed: { type: "boolean" },
    mode: { type: "string", enum: ["inside", "outside"] },
    polygon: { type: "array", items: { type: "array" } },
    body: { type: "object" },
    either: { type: ["string", "number"] },
    script: { type: "string", format: "script" },
  },
};

describe("schema forms", () => {
  it("picks a widget for every property", () => {
    const f = schemaFields(SCHEMA);
    expect(f.map((x) => [x.name, x.widget])).toEqual([
      ["iou", "number"], ["maxAge", "text"], ["maxTracks", "integer"], ["skipFailed", "bool"], ["mode", "enum"],
      ["polygon", "json"], ["body", "json"], ["either", "json"], ["script", "script"],
    ]);
    const iou = f[0];
    expect(iou).toMatchObject({ doc: "overlap", default: 0.3, min: 0, max: 1, required: false });
    expect(f.find((x) => x.name === "mode")).toMatchObject({ required: true, options: ["inside", "outside"] });
    expect(f.find((x) => x.name === "maxAge")?.format).toBe("duration");
    expect(schemaFields(null)).toEqual([]);
  });

  it("reads what is typed into config values, keeping what does not parse for the server to name", () => {
    const [iou, maxAge, maxTracks, skip, , polygon] = schemaFields(SCHEMA);
    if (!iou || !maxAge || !maxTracks || !skip || !polygon) throw new Error("fields missing");
    expect(readValue(iou, "0.5")).toBe(0.5);
    expect(readValue(iou, "")).toBeUndefined();
    expect(readValue(iou, "abc")).toBe("abc");
    expect(readValue(maxTracks, "7")).toBe(7);
    expect(readValue(maxAge, "2s")).toBe("2s");
    expect(readValue(skip, "true")).toBe(true);
    expect(readValue(skip, "")).toBeUndefined();
    expect(readValue(polygon, "[[0,0],[1,1]]")).toEqual([[0, 0], [1, 1]]);
    expect(readValue(polygon, "[[0,")).toBe("[[0,");
    expect(showValue(polygon, [[0, 0]])).toBe(JSON.stringify([[0, 0]], null, 1));
    expect(showValue(iou, undefined)).toBe("");
    expect(showValue(skip, false)).toBe("false");
  });
});
