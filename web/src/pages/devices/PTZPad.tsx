import { useState } from "react";
import { call } from "../../api";
import { ErrorLine } from "../../components/ListTable";
import { can, useSession } from "../../session";
import { useAction } from "../../useAction";

/** PTZRequest is ControlDevicePTZ's request, less the device. */
export interface PTZRequest {
  Direction?: string;
  Zoom?: "in" | "out";
  Speed?: number;
}

/** The direction pad, row by row: ControlDevicePTZ's Direction, its arrow and its words. */
const pad: [string, string, string][] = [
  ["upleft", "↖", "up and left"], ["up", "↑", "up"], ["upright", "↗", "up and right"],
  ["left", "←", "left"], ["stop", "■", "stop"], ["right", "→", "right"],
  ["downleft", "↙", "down and left"], ["down", "↓", "down"], ["downright", "↘", "down and right"],
];

/** said puts a sent command in words for the status line. */
export function said(r: PTZRequest): string {
  if (r.Direction === "stop") return "Stop sent";
  const what = r.Zoom ? `Zoom ${r.Zoom}` : `Move ${pad.find((p) => p[0] === r.Direction)?.[2] ?? r.Direction}`;
  return `${what} at speed ${r.Speed} sent: the camera keeps going until Stop`;
}

/**
 * PTZPad steers a GB/T 28181 camera through ControlDevicePTZ: a direction
 * pad with stop in its middle, zoom in and out, and the speed. A camera
 * keeps moving until it is told to stop, as GB/T 28181 commands work. It
 * shows nothing to whom may not control the device (a viewer).
 */
export function PTZPad(props: { id: string }) {
  const s = useSession();
  const act = useAction();
  const [speed, setSpeed] = useState(128);
  const [sent, setSent] = useState("");
  if (!can(s, "ControlDevicePTZ")) return null;

  function send(r: PTZRequest) {
    const req = r.Direction === "stop" ? { Direction: "stop" } : { ...r, Speed: speed };
    setSent("");
    void act.run(async () => {
      const res = await call<{ PTZCmd: string }>("ControlDevicePTZ", { DeviceId: props.id, ...req });
      setSent(`${said(req)} (PTZCmd ${res.PTZCmd}).`);
    });
  }

  return (
    <div className="card" data-testid="ptz">
      <h2>Pan, tilt and zoom</h2>
      <div className="ptz">
        <div className="ptz-pad" role="group" aria-label="Direction">
          {pad.map(([dir, arrow, words]) => (
            <button key={dir} type="button" className={dir === "stop" ? "danger" : "secondary"} aria-label={dir === "stop" ? "Stop" : `Move ${words}`}
              title={dir === "stop" ? "Stop" : `Move ${words}`} disabled={act.busy} onClick={() => send({ Direction: dir })}>
              {arrow}
            </button>
          ))}
        </div>
        <div className="ptz-side">
          <div className="buttons" role="group" aria-label="Zoom">
            <button type="button" className="secondary" disabled={act.busy} onClick={() => send({ Zoom: "in" })}>
              Zoom in
            </button>
            <button type="button" className="secondary" disabled={act.busy} onClick={() => send({ Zoom: "out" })}>
              Zoom out
            </button>
          </div>
          <div className="field">
            <label htmlFor="ptz-speed">Speed: {speed}</label>
            <input id="ptz-speed" type="range" min={1} max={255} value={speed} onChange={(e) => setSpeed(Number(e.target.value))} />
            <span className="field-hint">1–255; zoom uses 16 steps of it.</span>
          </div>
        </div>
      </div>
      <ErrorLine error={act.error} />
      {sent && <p role="status" className="probe probe-ok">{sent}</p>}
    </div>
  );
}
