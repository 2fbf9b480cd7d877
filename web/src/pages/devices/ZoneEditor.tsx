import { useId, useRef, useState } from "react";
import type { KeyboardEvent, PointerEvent } from "react";
import { arrowHead, insertAfter, keyMove, MAX_ZONES, newZone, nudge, removePoint, toNormalized, uniqueName } from "./zoneMath";
import type { Point, Zone } from "./zoneMath";

interface Props {
  imageUrl: string;
  imageAlt: string;
  zones: Zone[];
  onChange(zones: Zone[]): void;
  readOnly: boolean;
  /** errors by field, as the server names them: "Zones[1].Name". */
  errors: Record<string, string>;
  /** at most this many zones and lines (default MAX_ZONES, a device's limit) */
  max?: number;
  /** false: names are shown, not edited (a flow node's single inline shape has none of its own) */
  named?: boolean;
}

type Draft = { kind: Zone["Kind"]; points: Point[] } | null;

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

/**
 * ZoneEditor draws zones (polygons) and lines (tripwires with a direction)
 * over a device's picture, in normalized coordinates. With a mouse: Draw a
 * polygon or a line, click its points on the picture, drag a point to move
 * it. With the keyboard: Add a zone or a line (a starting shape), Tab to a
 * point and move it with the arrow keys (Shift: 10%), Delete removes it.
 */
export function ZoneEditor(p: Props) {
  const box = useRef<HTMLDivElement>(null);
  const [sel, setSel] = useState<{ zone: number; point: number }>({ zone: -1, point: -1 });
  const [draft, setDraft] = useState<Draft>(null);
  const drag = useRef<{ zone: number; point: number } | null>(null);
  const helpId = useId();

  const setZone = (i: number, z: Zone) => p.onChange(p.zones.map((o, j) => (j === i ? z : o)));
  const movePoint = (zi: number, pi: number, pt: Point) => {
    const z = p.zones[zi];
    if (z) setZone(zi, { ...z, Points: z.Points.map((o, j) => (j === pi ? pt : o)) });
  };
  const at = (e: { clientX: number; clientY: number }): Point => {
    const r = box.current?.getBoundingClientRect();
    return r ? toNormalized(e.clientX, e.clientY, r) : [0, 0];
  };

  function finish(d: NonNullable<Draft>) {
    const need = d.kind === "line" ? 2 : 3;
    if (d.points.length < need) return;
    const z: Zone = { Name: uniqueName(d.kind === "line" ? "line" : "zone", p.zones), Kind: d.kind, Points: d.points };
    p.onChange([...p.zones, z]);
    setSel({ zone: p.zones.length, point: -1 });
    setDraft(null);
  }

  function onPictureClick(e: PointerEvent<HTMLDivElement>) {
    if (!draft || p.readOnly) return;
    const d = { ...draft, points: [...draft.points, at(e)] };
    if (d.kind === "line" && d.points.length === 2) finish(d);
    else setDraft(d);
  }

  function onHandleKey(e: KeyboardEvent, zi: number, pi: number) {
    const z = p.zones[zi];
    if (!z || p.readOnly) return;
    const m = keyMove(e.key, e.shiftKey);
    if (m) {
      e.preventDefault();
      const pt = z.Points[pi];
      if (pt) movePoint(zi, pi, nudge(pt, m.dx, m.dy, m.step));
    } else if (e.key === "Delete" || e.key === "Backspace") {
      e.preventDefault();
      setZone(zi, removePoint(z, pi));
    }
  }

  const full = p.zones.length >= (p.max ?? MAX_ZONES);
  return (
    <div className="zone-editor">
      {!p.readOnly && (
        <div className="buttons zone-tools" role="group" aria-label="Draw">
          <button type="button" className="secondary" disabled={full} aria-pressed={draft?.kind === "polygon"}
            onClick={() => setDraft(draft?.kind === "polygon" ? null : { kind: "polygon", points: [] })}>
            Draw zone
          </button>
          <button type="button" className="secondary" disabled={full} aria-pressed={draft?.kind === "line"}
            onClick={() => setDraft(draft?.kind === "line" ? null : { kind: "line", points: [] })}>
            Draw line
          </button>
          <button type="button" className="secondary" disabled={full} onClick={() => {
            p.onChange([...p.zones, newZone("polygon", p.zones)]);
            setSel({ zone: p.zones.length, point: -1 });
          }}>
            Add zone
          </button>
          <button type="button" className="secondary" disabled={full} onClick={() => {
            p.onChange([...p.zones, newZone("line", p.zones)]);
            setSel({ zone: p.zones.length, point: -1 });
          }}>
            Add line
          </button>
          {draft?.kind === "polygon" && (
            <button type="button" onClick={() => finish(draft)} disabled={draft.points.length < 3}>
              Finish zone ({draft.points.length} points)
            </button>
          )}
        </div>
      )}
      <p className="muted small" id={helpId}>
        {draft
          ? draft.kind === "line"
            ? "Click the line's start, then its end on the picture; crossings are told apart by side of start → end."
            : "Click each corner on the picture, then Finish zone."
          : p.readOnly
            ? "Zones and lines drawn on this device."
            : "Tab to a point and move it with the arrow keys (Shift: 10%); Delete removes it. Drag points with the mouse."}
      </p>
      <div ref={box} className={draft ? "zone-canvas drawing" : "zone-canvas"} onPointerUp={onPictureClick}
        onPointerMove={(e) => drag.current && movePoint(drag.current.zone, drag.current.point, at(e))}>
        <img src={p.imageUrl} alt={p.imageAlt} draggable={false} />
        <svg viewBox="0 0 1000 1000" preserveAspectRatio="none" aria-hidden="true">
          {p.zones.map((z, i) => {
            const pts = z.Points.map(([x, y]) => `${x * 1000},${y * 1000}`).join(" ");
            const cls = `zone-shape${i === sel.zone ? " selected" : ""}`;
            if (z.Kind === "polygon") return <polygon key={i} points={pts} className={cls} vectorEffect="non-scaling-stroke" />;
            const [a, b] = z.Points;
            if (!a || !b) return null;
            const head = arrowHead([a[0] * 1000, a[1] * 1000], [b[0] * 1000, b[1] * 1000], 30);
            return (
              <g key={i} className={cls}>
                <polyline points={pts} vectorEffect="non-scaling-stroke" />
                <polygon points={head.map((q) => q.join(",")).join(" ")} className="arrow" />
              </g>
            );
          })}
          {draft && draft.points.length > 0 && (
            <polyline className="zone-draft" vectorEffect="non-scaling-stroke"
              points={draft.points.map(([x, y]) => `${x * 1000},${y * 1000}`).join(" ")} />
          )}
        </svg>
        {p.zones.map((z, zi) => (
          <span key={`l${zi}`} className="zone-label" style={{ left: pct(z.Points[0]?.[0] ?? 0), top: pct(z.Points[0]?.[1] ?? 0) }}>
            {z.Name}
          </span>
        ))}
        {!draft && p.zones.map((z, zi) =>
          z.Points.map((pt, pi) => (
            <button key={`${zi}-${pi}`} type="button" className={`zone-handle${sel.zone === zi && sel.point === pi ? " selected" : ""}`}
              style={{ left: pct(pt[0]), top: pct(pt[1]) }} disabled={p.readOnly} aria-describedby={helpId}
              aria-label={`${z.Kind === "line" ? (pi === 0 ? "start" : "end") : `point ${pi + 1}`} of ${z.Name}: x ${pt[0].toFixed(2)}, y ${pt[1].toFixed(2)}`}
              onFocus={() => setSel({ zone: zi, point: pi })}
              onKeyDown={(e) => onHandleKey(e, zi, pi)}
              onPointerDown={(e) => {
                if (p.readOnly) return;
                e.currentTarget.setPointerCapture?.(e.pointerId);
                drag.current = { zone: zi, point: pi };
                setSel({ zone: zi, point: pi });
              }}
              onPointerUp={(e) => {
                e.stopPropagation();
                drag.current = null;
              }}
            />
          )),
        )}
        {draft && draft.points.map((pt, i) => (
          <span key={`d${i}`} className="zone-handle draft" style={{ left: pct(pt[0]), top: pct(pt[1]) }} />
        ))}
      </div>
      <ZoneList {...p} sel={sel} setSel={setSel} setZone={setZone} />
    </div>
  );
}

function ZoneList(p: Props & { sel: { zone: number; point: number }; setSel(s: { zone: number; point: number }): void; setZone(i: number, z: Zone): void }) {
  if (p.zones.length === 0) return <p className="muted">No zones or lines yet.</p>;
  return (
    <ul className="zone-list" aria-label="Zones and lines">
      {p.zones.map((z, i) => {
        const nameErr = p.errors[`Zones[${i}].Name`];
        const other = Object.entries(p.errors).find(([k]) => k.startsWith(`Zones[${i}].`) && k !== `Zones[${i}].Name`)?.[1];
        const point = p.sel.zone === i ? p.sel.point : -1;
        return (
          <li key={i} className={p.sel.zone === i ? "zone-item selected" : "zone-item"} data-zone={z.Name}>
            <label>
              <span>{z.Kind === "line" ? "Line" : "Zone"} {i + 1} name</span>
              <input value={z.Name} readOnly={p.readOnly || p.named === false} maxLength={64} aria-invalid={nameErr ? true : undefined}
                onFocus={() => p.setSel({ zone: i, point: -1 })}
                onChange={(e) => p.setZone(i, { ...z, Name: e.target.value })} />
            </label>
            <span className="muted small">{z.Kind === "line" ? "line, start → end" : `polygon, ${z.Points.length} points`}</span>
            {nameErr && <div className="field-error" role="alert" data-field-error={`Zones[${i}].Name`}>{nameErr}</div>}
            {other && <div className="field-error" role="alert" data-field-error={`Zones[${i}]`}>{other}</div>}
            {!p.readOnly && (
              <div className="buttons">
                {z.Kind === "polygon" && (
                  <>
                    <button type="button" className="secondary small" onClick={() => p.setZone(i, insertAfter(z, point >= 0 ? point : z.Points.length - 1))}>
                      Add point
                    </button>
                    <button type="button" className="secondary small" disabled={point < 0 || z.Points.length <= 3}
                      onClick={() => p.setZone(i, removePoint(z, point))}>
                      Remove point
                    </button>
                  </>
                )}
                {z.Kind === "line" && (
                  <button type="button" className="secondary small" onClick={() => p.setZone(i, { ...z, Points: [...z.Points].reverse() })}>
                    Reverse direction of {z.Name}
                  </button>
                )}
                <button type="button" className="secondary small" onClick={() => {
                  p.onChange(p.zones.filter((_, j) => j !== i));
                  p.setSel({ zone: -1, point: -1 });
                }}>
                  Remove {z.Name}
                </button>
              </div>
            )}
          </li>
        );
      })}
    </ul>
  );
}
