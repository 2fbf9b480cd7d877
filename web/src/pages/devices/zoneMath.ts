// The zone editor's coordinate maths: zones are stored in normalized
// coordinates (0..1 of the picture's width and height) so that they
// survive a change of resolution; the editor maps pointer positions and
// key presses to them.

export type Point = [number, number];

/** Zone is a named polygon or line (a tripwire crossed from Points[0] towards Points[1]'s sides). */
export interface Zone {
  Name: string;
  Kind: "polygon" | "line";
  Points: Point[];
}

export const MAX_ZONES = 32;
export const MAX_POINTS = 64;
export const MAX_NAME = 64;
/** Coordinates are kept to 4 decimals: a tenth of a pixel at 8K. */
const PRECISION = 1e4;

export function clamp01(x: number): number {
  if (!Number.isFinite(x)) return 0;
  return Math.min(1, Math.max(0, Math.round(x * PRECISION) / PRECISION));
}

/** toNormalized maps a pointer position to the picture's normalized coordinates, clamped to its edges. */
export function toNormalized(clientX: number, clientY: number, box: { left: number; top: number; width: number; height: number }): Point {
  if (box.width <= 0 || box.height <= 0) return [0, 0];
  return [clamp01((clientX - box.left) / box.width), clamp01((clientY - box.top) / box.height)];
}

/** toPixels maps a normalized point to a frame of width × height. */
export function toPixels(p: Point, width: number, height: number): Point {
  return [p[0] * width, p[1] * height];
}

/** nudge moves a point by (dx, dy) steps of step, staying inside the picture. */
export function nudge(p: Point, dx: number, dy: number, step: number): Point {
  return [clamp01(p[0] + dx * step), clamp01(p[1] + dy * step)];
}

/** keyMove is the move an arrow key asks for: 1% of the picture, 10% with Shift; null for other keys. */
export function keyMove(key: string, shift: boolean): { dx: number; dy: number; step: number } | null {
  const step = shift ? 0.1 : 0.01;
  switch (key) {
    case "ArrowLeft":
      return { dx: -1, dy: 0, step };
    case "ArrowRight":
      return { dx: 1, dy: 0, step };
    case "ArrowUp":
      return { dx: 0, dy: -1, step };
    case "ArrowDown":
      return { dx: 0, dy: 1, step };
  }
  return null;
}

/** uniqueName is base, or base-2, base-3… whichever no zone has. */
export function uniqueName(base: string, zones: readonly Zone[]): string {
  const names = new Set(zones.map((z) => z.Name));
  if (!names.has(base)) return base;
  for (let i = 2; ; i++) if (!names.has(`${base}-${i}`)) return `${base}-${i}`;
}

/** newZone is a starting shape in the middle of the picture, for drawing with the keyboard. */
export function newZone(kind: Zone["Kind"], zones: readonly Zone[]): Zone {
  if (kind === "line") return { Name: uniqueName("line", zones), Kind: "line", Points: [[0.2, 0.5], [0.8, 0.5]] };
  return { Name: uniqueName("zone", zones), Kind: "polygon", Points: [[0.3, 0.3], [0.7, 0.3], [0.7, 0.7], [0.3, 0.7]] };
}

/** insertAfter adds a point halfway between point i and the next (polygons only). */
export function insertAfter(z: Zone, i: number): Zone {
  if (z.Kind !== "polygon" || z.Points.length >= MAX_POINTS) return z;
  const a = z.Points[i];
  const b = z.Points[(i + 1) % z.Points.length];
  if (!a || !b) return z;
  const mid: Point = [clamp01((a[0] + b[0]) / 2), clamp01((a[1] + b[1]) / 2)];
  return { ...z, Points: [...z.Points.slice(0, i + 1), mid, ...z.Points.slice(i + 1)] };
}

/** removePoint drops point i of a polygon that keeps at least 3. */
export function removePoint(z: Zone, i: number): Zone {
  if (z.Kind !== "polygon" || z.Points.length <= 3) return z;
  return { ...z, Points: z.Points.filter((_, j) => j !== i) };
}

/** problem says what the server would refuse about zone i, naming its field, or null. */
export function problem(zones: readonly Zone[], i: number): { field: string; message: string } | null {
  const z = zones[i];
  if (!z) return null;
  const at = `Zones[${i}]`;
  if (z.Name.trim() === "") return { field: `${at}.Name`, message: "required" };
  if ([...z.Name].length > MAX_NAME) return { field: `${at}.Name`, message: `at most ${MAX_NAME} characters` };
  if (zones.findIndex((o) => o.Name === z.Name) !== i) return { field: `${at}.Name`, message: `"${z.Name}" names two zones` };
  if (z.Kind === "polygon" && (z.Points.length < 3 || z.Points.length > MAX_POINTS))
    return { field: `${at}.Points`, message: `a polygon has 3 to ${MAX_POINTS} points` };
  if (z.Kind === "line" && z.Points.length !== 2) return { field: `${at}.Points`, message: "a line has 2 points" };
  for (const p of z.Points) if (p.some((c) => !(c >= 0 && c <= 1))) return { field: `${at}.Points`, message: "coordinates are between 0 and 1" };
  return null;
}

/** arrowHead is the direction marker of a line, at its middle: the tip and the two barbs, in pixels. */
export function arrowHead(a: Point, b: Point, size: number): [Point, Point, Point] {
  const mx = (a[0] + b[0]) / 2;
  const my = (a[1] + b[1]) / 2;
  const len = Math.hypot(b[0] - a[0], b[1] - a[1]) || 1;
  const ux = (b[0] - a[0]) / len;
  const uy = (b[1] - a[1]) / len;
  const tip: Point = [mx + ux * size, my + uy * size];
  return [tip, [mx - uy * size * 0.6, my + ux * size * 0.6], [mx + uy * size * 0.6, my - ux * size * 0.6]];
}

/** zoneIndexOf reads the zone a server error names ("Zones[2].Name" → 2), or -1. */
export function zoneIndexOf(field: string | undefined): number {
  const m = /^Zones\[(\d+)\]/.exec(field ?? "");
  return m ? Number(m[1]) : -1;
}
