import { useState } from "react";
import type { FormEvent } from "react";
import { call } from "../api";
import { ConfirmDelete } from "../components/ConfirmDelete";
import { Field } from "../components/Field";
import { ErrorLine, ListTable } from "../components/ListTable";
import { closeForm, PageHead } from "../components/PageHead";
import { offsetOf, PAGE, Pager } from "../components/Pager";
import { formErrors, noErrors } from "../errors";
import type { FormErrors } from "../errors";
import { useRoute } from "../router";
import { can, useSession } from "../session";
import type { DescribeDevicesResponse, ProbeResponse } from "../types";
import { usePolled } from "../usePoll";

const REFRESH_MS = 5000;
const DRIVERS = ["replay", "rtsp", "onvif", "http-snapshot", "mqtt", "adapter"] as const;
const COLUMNS = [{ label: "Name" }, { label: "Status" }, { label: "Driver", wide: true }, { label: "Address" }, { label: "Group", wide: true }];
const FIELDS = ["Name", "Driver", "Address", "Username", "Password", "Fps", "Group", "Description"] as const;

const ADDRESS_HINT: Record<string, string> = {
  replay: "A folder of JPEG or PNG images, or a video file, under the server's media root.",
  rtsp: "rtsp://host:554/path",
  onvif: "http://host/onvif/device_service",
  "http-snapshot": "http://host/snapshot.jpg",
  mqtt: "mqtt://broker:1883/topic",
  adapter: "host:port of the vendor adapter",
};

/** Devices lists the project's devices page by page, adds (after a probe) and deletes them. */
export function Devices() {
  const s = useSession();
  const route = useRoute();
  const projectId = s.project?.ProjectId ?? "";
  const offset = offsetOf(route.query);
  const adding = route.query.get("add") === "1" && can(s, "CreateDevice");
  const { value: list, error, reload } = usePolled(
    () => call<DescribeDevicesResponse>("DescribeDevices", { ProjectId: projectId, Offset: offset, Limit: PAGE }),
    REFRESH_MS,
    [projectId, offset],
  );

  const total = list?.TotalCount ?? 0;
  return (
    <section aria-labelledby="page-title">
      <PageHead title="Devices" add={can(s, "CreateDevice") && !adding && "Add device"} />
      {adding && <AddDevice projectId={projectId} mayProbe={can(s, "ProbeDevice")} onDone={closeForm(reload)} />}
      <ErrorLine error={error} />
      <ListTable caption={`Devices of project ${projectId}`} columns={COLUMNS} empty="No devices yet." isEmpty={list?.DeviceSet.length === 0}>
        {list?.DeviceSet.map((d) => (
          <DeviceRow key={d.DeviceId} id={d.DeviceId} name={d.Name} status={d.Status} reason={d.Reason || d.LastError}
            driver={d.Driver} address={d.Address} group={d.Group} mayDelete={can(s, "DeleteDevice")}
            onDeleted={reload} />
        ))}
      </ListTable>
      <Pager label="Pages of devices" offset={offset} total={total} />
    </section>
  );
}

interface RowProps {
  id: string;
  name: string;
  status: string;
  reason: string;
  driver: string;
  address: string;
  group: string;
  mayDelete: boolean;
  onDeleted(): void;
}

function DeviceRow(p: RowProps) {
  return (
    <tr data-device={p.name}>
      <th scope="row">{p.name}</th>
      <td>
        <span className={`status status-${p.status || "unknown"}`}>{p.status || "unknown"}</span>
        {p.reason && <div className="muted small">{p.reason}</div>}
      </td>
      <td className="wide-only">{p.driver}</td>
      <td className="address">{p.address}</td>
      <td className="wide-only">{p.group}</td>
      <td>
        <div className="row-actions">
          {p.mayDelete && (
            <ConfirmDelete name={p.name} action="DeleteDevice" body={{ DeviceId: p.id }} onDeleted={p.onDeleted} />
          )}
        </div>
      </td>
    </tr>
  );
}

type Form = Record<(typeof FIELDS)[number], string>;

function AddDevice(props: { projectId: string; mayProbe: boolean; onDone(added: boolean): void }) {
  const [form, setForm] = useState<Form>({ Name: "", Driver: "replay", Address: "", Username: "", Password: "", Fps: "", Group: "", Description: "" });
  const [errors, setErrors] = useState<FormErrors>(noErrors);
  const [probe, setProbe] = useState<ProbeResponse | null>(null);
  const [busy, setBusy] = useState("");

  const set = (k: keyof Form) => (v: string) => {
    setForm((f) => ({ ...f, [k]: v }));
    setProbe(null);
  };
  const device = () => {
    const d: Record<string, unknown> = { Driver: form.Driver, Address: form.Address };
    if (form.Username) d.Username = form.Username;
    if (form.Password) d.Password = form.Password;
    if (form.Fps) d.Fps = Number(form.Fps);
    return d;
  };

  async function runProbe() {
    setBusy("probe");
    setErrors(noErrors);
    try {
      setProbe(await call<ProbeResponse>("ProbeDevice", { Device: device() }));
    } catch (e) {
      setErrors(formErrors(e, FIELDS, "Device."));
    } finally {
      setBusy("");
    }
  }

  async function save(e: FormEvent) {
    e.preventDefault();
    setBusy("save");
    setErrors(noErrors);
    try {
      const body: Record<string, unknown> = { ProjectId: props.projectId, Name: form.Name, ...device() };
      if (form.Group) body.Group = form.Group;
      if (form.Description) body.Description = form.Description;
      await call("CreateDevice", body);
      props.onDone(true);
    } catch (err) {
      setErrors(formErrors(err, FIELDS));
    } finally {
      setBusy("");
    }
  }

  const credentials = form.Driver !== "replay";
  return (
    <form className="card" onSubmit={save} aria-labelledby="add-title" noValidate>
      <h2 id="add-title">Add a device</h2>
      <ErrorLine error={errors.form} />
      <div className="form-grid">
        <Field label="Name" name="Name" value={form.Name} onChange={set("Name")} error={errors.fields.Name} required />
        <Field label="Driver" name="Driver" value={form.Driver} onChange={set("Driver")} error={errors.fields.Driver} options={DRIVERS} />
        <Field label="Address" name="Address" value={form.Address} onChange={set("Address")} error={errors.fields.Address}
          hint={ADDRESS_HINT[form.Driver]} required />
        {credentials && (
          <>
            <Field label="User name" name="Username" value={form.Username} onChange={set("Username")} error={errors.fields.Username}
              autoComplete="off" />
            <Field label="Password" name="Password" type="password" value={form.Password} onChange={set("Password")}
              error={errors.fields.Password} autoComplete="new-password" />
          </>
        )}
        <Field label="Frames per second" name="Fps" type="number" value={form.Fps} onChange={set("Fps")} error={errors.fields.Fps} />
        <Field label="Group" name="Group" value={form.Group} onChange={set("Group")} error={errors.fields.Group} />
        <Field label="Description" name="Description" value={form.Description} onChange={set("Description")}
          error={errors.fields.Description} />
      </div>
      {probe && (
        <p className={probe.Online ? "probe probe-ok" : "probe probe-bad"} role="status" data-testid="probe-result">
          {probe.Online ? "Probe: online." : `Probe: offline (${probe.Reason}) ${probe.Message}`}
          {probe.Info && Object.keys(probe.Info).length > 0 && ` ${JSON.stringify(probe.Info)}`}
        </p>
      )}
      <div className="buttons">
        {props.mayProbe && (
          <button type="button" className="secondary" onClick={() => void runProbe()} disabled={busy !== ""}>
            Probe
          </button>
        )}
        <button type="submit" disabled={busy !== ""}>
          Save device
        </button>
        <button type="button" className="secondary" onClick={() => props.onDone(false)}>
          Cancel
        </button>
      </div>
    </form>
  );
}
