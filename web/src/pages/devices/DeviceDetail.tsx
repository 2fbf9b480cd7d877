import { useState } from "react";
import { ApiError, call } from "../../api";
import { ErrorLine } from "../../components/ListTable";
import { describe } from "../../errors";
import { navigate, withQuery } from "../../router";
import { can, useSession } from "../../session";
import { useLoad } from "../../useLoad";
import { sameOrigin } from "../Records";
import { GBDiagnosis } from "./GBDiagnosis";
import { PTZPad } from "./PTZPad";
import { reasonText } from "./status";
import { forgetSnapshot } from "./Thumb";
import type { DeviceInfo } from "./types";
import { ZoneEditor } from "./ZoneEditor";
import { problem, zoneIndexOf } from "./zoneMath";
import type { Zone } from "./zoneMath";

/** DeviceDetail is a device's page (?device=): its facts, its latest picture, and the zones and lines drawn on it. */
export function DeviceDetail(props: { id: string }) {
  const s = useSession();
  const mayDraw = can(s, "ModifyDevice");
  const [dev, setDev] = useState<DeviceInfo | null>(null);
  const [zones, setZones] = useState<Zone[]>([]);
  const [error, setError] = useState("");
  const [snap, setSnap] = useState<{ url: string; time: string } | null>(null);
  const [snapError, setSnapError] = useState("");
  const [fresh, setFresh] = useState(0);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [saved, setSaved] = useState("");
  const [busy, setBusy] = useState(false);

  useLoad(
    () => call<{ DeviceSet: DeviceInfo[] }>("DescribeDevices", { DeviceIds: [props.id] }),
    (r) => {
      const d = r.DeviceSet[0];
      if (!d) return setError(`Device ${props.id} not found.`);
      setDev(d);
      setZones(d.Zones ?? []);
    },
    (e) => setError(describe(e)),
    [props.id],
  );
  useLoad(
    () => call<{ Url: string; Time: string }>("DescribeDeviceSnapshot", { DeviceId: props.id, MaxAgeMs: fresh ? 0 : 60_000 }),
    (r) => {
      setSnap({ url: sameOrigin(r.Url), time: r.Time });
      setSnapError("");
    },
    (e) => setSnapError(describe(e)),
    [props.id, fresh],
  );

  async function save() {
    const local: Record<string, string> = {};
    zones.forEach((_, i) => {
      const pr = problem(zones, i);
      if (pr) local[pr.field] = pr.message;
    });
    setErrors(local);
    setSaved("");
    if (Object.keys(local).length > 0) return;
    setBusy(true);
    try {
      await call("ModifyDevice", { DeviceId: props.id, Zones: zones });
      setSaved(`Saved ${zones.length} zone${zones.length === 1 ? "" : "s"} and lines.`);
    } catch (e) {
      if (e instanceof ApiError && zoneIndexOf(e.field) >= 0) setErrors({ [e.field?.replace(/\.Points\[\d+\]$/, ".Points") ?? ""]: e.detail });
      else setErrors({ form: describe(e) });
    } finally {
      setBusy(false);
    }
  }

  return (
    <section aria-labelledby="page-title">
      <div className="page-head">
        <h1 id="page-title">{dev ? dev.Name : "Device"}</h1>
        <button type="button" className="secondary" onClick={() => navigate(withQuery({ device: undefined }))}>
          Back to devices
        </button>
      </div>
      <ErrorLine error={error} />
      {dev && (
        <dl className="facts">
          <dt>Status</dt>
          <dd>
            <span className={`status status-${dev.Status || "unknown"}`}>{dev.Status || "unknown"}</span> {reasonText(dev.Reason) || dev.LastError}
            {dev.StatusTime && <span className="muted"> (reported {new Date(dev.StatusTime).toLocaleString()})</span>}
          </dd>
          <dt>Driver</dt>
          <dd>{dev.Driver}</dd>
          <dt>Address</dt>
          <dd>{dev.Address}</dd>
          {dev.Group && (
            <>
              <dt>Group</dt>
              <dd>{dev.Group}</dd>
            </>
          )}
        </dl>
      )}
      {dev?.Driver === "gb28181" && typeof dev.Options?.parent === "string" && <PTZPad id={props.id} />}
      {dev?.Driver === "gb28181" && <GBDiagnosis id={props.id} />}
      <div className="card">
        <div className="page-head">
          <h2>Zones and lines</h2>
          <button type="button" className="secondary" onClick={() => {
            forgetSnapshot(props.id);
            setFresh((n) => n + 1);
          }}>
            New picture
          </button>
        </div>
        {snap && <p className="muted small">Picture of {new Date(snap.time).toLocaleString()}. Coordinates are kept relative to the picture, so zones survive a change of resolution.</p>}
        <ErrorLine error={snapError} />
        {snap && dev && (
          <ZoneEditor imageUrl={snap.url} imageAlt={`Latest picture of ${dev.Name}`} zones={zones} readOnly={!mayDraw} errors={errors}
            onChange={(z) => {
              setZones(z);
              setSaved("");
            }} />
        )}
        <ErrorLine error={errors.form ?? ""} />
        {saved && <p role="status" className="probe probe-ok">{saved}</p>}
        {mayDraw && (
          <div className="buttons">
            <button type="button" onClick={() => void save()} disabled={busy || !dev}>
              {busy ? "Saving…" : "Save zones"}
            </button>
          </div>
        )}
      </div>
    </section>
  );
}
