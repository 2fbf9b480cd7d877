// The zone node's geometry as the zone picker edits it (docs/zones.md): a
// zone drawn on a device, named by config.zone, or an inline polygon or
// line in the frame's pixels. The picker draws on a device's snapshot in
// the device zone editor's normalized coordinates; these convert.
import { clamp01 } from "../devices/zoneMath";
import type { Point, Zone } from "../devices/zoneMath";

type Config = Record<string, unknown>;

function points(v: unknown): Point[] | null {
  if (!Array.isArray(v)) return null;
  const out: Point[] = [];
  for (const p of v) {
    if (!Array.isArray(p) || p.length !== 2 || typeof p[0] !== "number" || typeof p[1] !== "number") return null;
    out.push([p[0], p[1]]);
  }
  return out;
}

/** inlineZones answers the config's inline polygon or line, normalized to a frame of width × height, for the zone editor. */
export function inlineZones(config: Config, width: number, height: number): Zone[] {
  if (width <= 0 || height <= 0) return [];
  const poly = points(config.polygon);
  const line = points(config.line);
  const norm = (ps: Point[]): Point[] => ps.map(([x, y]) => [clamp01(x / width), clamp01(y / height)]);
  if (poly && poly.length > 0) return [{ Name: "zone", Kind: "polygon", Points: norm(poly) }];
  if (line && line.length > 0) return [{ Name: "line", Kind: "line", Points: norm(line) }];
  return [];
}

// mode must fit the shape: a line is crossed, a polygon is entered, left or kept inside or outside.
function fitMode(config: Config, kind: Zone["Kind"]): Config {
  const out = { ...config };
  if ((kind === "line") !== (out.mode === "cross")) delete out.mode;
  return out;
}

/** withInline sets the config's geometry to the zone drawn (the first of zones), in the frame's pixels, in place of a named zone; none removes it. */
export function withInline(config: Config, zones: readonly Zone[], width: number, height: number): Config {
  const out: Config = { ...config };
  delete out.zone;
  delete out.polygon;
  delete out.line;
  const z = zones[0];
  if (!z) return out;
  const px = z.Points.map(([x, y]): Point => [Math.round(x * width), Math.round(y * height)]);
  out[z.Kind === "line" ? "line" : "polygon"] = px;
  return fitMode(out, z.Kind);
}

/** withNamed makes the node use the zone named zone.Name drawn on the message's device, in place of inline geometry. */
export function withNamed(config: Config, zone: Zone): Config {
  const out: Config = { ...config, zone: zone.Name };
  delete out.polygon;
  delete out.line;
  return fitMode(out, zone.Kind);
}
