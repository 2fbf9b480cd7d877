// The zone node's geometry, picked rather than typed: choose a device of
// the project, then use one of the zones drawn on it (the node names it,
// and looks it up on each message's device), or draw a polygon or line on
// its current picture (kept in the node, in the picture's pixels). The
// drawing is the Devices page's zone editor.
import { useState } from "react";
import { call } from "../../api";
import { ErrorLine } from "../../components/ListTable";
import { describe } from "../../errors";
import { useLoad } from "../../useLoad";
import { sameOrigin } from "../Records";
import type { DeviceInfo } from "../devices/types";
import { ZoneEditor } from "../devices/ZoneEditor";
import { inlineZones, withInline, withNamed } from "./zonePick";

type Config = Record<string, unknown>;
type Snapshot = { url: string; width: number; height: number; deviceId: string };

export function ZonePicker(p: { projectId: string; config: Config; editable: boolean; onChange(config: Config): void }) {
  const [devices, setDevices] = useState<DeviceInfo[]>();
  const [deviceId, setDeviceId] = useState("");
  const [drawing, setDrawing] = useState(false);
  const [snap, setSnap] = useState<Snapshot>();
  const [error, setError] = useState("");

  useLoad(() => call<{ DeviceSet: DeviceInfo[] | null }>("DescribeDevices", { ProjectId: p.projectId, Limit: 100 }), (r) => {
    const set = r.DeviceSet ?? [];
    setDevices(set);
    setDeviceId((id) => id || (set.find((d) => (d.Zones ?? []).length > 0) ?? set[0])?.DeviceId || "");
  }, (e) => setError(describe(e)), [p.projectId]);
  // The picture's own size is the frame size the inline geometry is in.
  useLoad(() => (drawing && deviceId ? call<{ Url: string }>("DescribeDeviceSnapshot", { DeviceId: deviceId, MaxAgeMs: 60_000 }) : null), (r) => {
    const url = sameOrigin(r.Url);
    const img = new Image();
    img.onload = () => setSnap({ url, width: img.naturalWidth, height: img.naturalHeight, deviceId });
    img.onerror = () => setError("The device's picture did not load.");
    img.src = url;
    setError("");
  }, (e) => setError(describe(e)), [drawing, deviceId]);

  const dev = devices?.find((d) => d.DeviceId === deviceId);
  const zones = dev?.Zones ?? [];
  const shown = snap?.deviceId === deviceId ? snap : undefined;
  const poly = Array.isArray(p.config.polygon) ? p.config.polygon.length : 0;
  const current = typeof p.config.zone === "string" && p.config.zone
    ? `the zone "${p.config.zone}" drawn on each message's device`
    : poly > 0 ? `a polygon of ${poly} points, in the frame's pixels` : Array.isArray(p.config.line) ? "a line, in the frame's pixels" : "none yet";
  return (
    <div className="zone-picker" data-testid="zone-picker">
      <h3>Zone</h3>
      <p className="muted small" data-testid="zone-current">Uses {current}.</p>
      <ErrorLine error={error} />
      {devices && devices.length === 0 && <p className="muted small">No devices in this project: add one on Devices to pick or draw a zone on its picture.</p>}
      {devices && devices.length > 0 && (
        <>
          <label className="field">
            <span>Device</span>
            <select value={deviceId} onChange={(e) => setDeviceId(e.target.value)}>
              {devices.map((d) => <option key={d.DeviceId} value={d.DeviceId}>{d.Name}</option>)}
            </select>
          </label>
          {zones.length > 0 ? (
            <ul className="zone-choices" aria-label={`Zones drawn on ${dev?.Name ?? ""}`}>
              {zones.map((z) => (
                <li key={z.Name}>
                  <button type="button" className="secondary small" disabled={!p.editable} aria-pressed={p.config.zone === z.Name}
                    onClick={() => p.onChange(withNamed(p.config, z))}>
                    Use {z.Kind === "line" ? "line" : "zone"} {z.Name}
                  </button>
                </li>
              ))}
            </ul>
          ) : (
            <p className="muted small">No zones drawn on {dev?.Name}: draw them on Devices, or draw one here.</p>
          )}
          <p className="muted small">A zone by name is looked up on the device each message comes from: draw it on every device the flow watches.</p>
          <button type="button" className="secondary small" aria-expanded={drawing} onClick={() => setDrawing(!drawing)}>
            {drawing ? "Hide the picture" : `Draw on ${dev?.Name ?? "the device"}'s picture`}
          </button>
          {drawing && !shown && !error && <p className="muted small">Loading the picture…</p>}
          {drawing && shown && (
            <ZoneEditor imageUrl={shown.url} imageAlt={`Latest picture of ${dev?.Name ?? deviceId}`} max={1} named={false} errors={{}}
              readOnly={!p.editable} zones={inlineZones(p.config, shown.width, shown.height)}
              onChange={(z) => p.onChange(withInline(p.config, z, shown.width, shown.height))} />
          )}
        </>
      )}
    </div>
  );
}
