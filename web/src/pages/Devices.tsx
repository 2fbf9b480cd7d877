import { useState } from "react";
import type { FormEvent } from "react";
import { call } from "../api";
import { ConfirmDelete } from "../components/ConfirmDelete";
import { Field } from "../components/Field";
import { ErrorLine, ListTable } from "../components/ListTable";
import { PageHead } from "../components/PageHead";
import { offsetOf, PAGE, Pager } from "../components/Pager";
import { describe, formErrors, noErrors } from "../errors";
import type { FormErrors } from "../errors";
import { navigate, useRoute, withQuery } from "../router";
import { can, useSession } from "../session";
import type { ProbeResponse } from "../types";
import { useLoad } from "../useLoad";
import { usePolled } from "../usePoll";
import { loadSites } from "./EdgeNodes";
import type { EdgeNodeInfo } from "./EdgeNodes";
import { DeviceDetail } from "./devices/DeviceDetail";
import { deviceBody, fieldNames, hint, initialValues, keyOf } from "./devices/driverForm";
import type { DriverSpec, OptionSpec, Values } from "./devices/driverForm";
import { forgetSnapshot, Thumb } from "./devices/Thumb";
import type { DeviceInfo, Discovered } from "./devices/types";

const REFRESH_MS = 5000;
const COLUMNS = [{ label: "Picture" }, { label: "Name" }, { label: "Status" }, { label: "Driver", wide: true }, { label: "Address", wide: true }, { label: "Group", wide: true },
  { label: "Site", wide: true }];
const OWN_FIELDS = ["Name", "Driver", "Group", "Description"] as const;

/** Devices lists the project's devices with their status and last picture; adds (after a probe), edits, deletes and discovers them; ?device= opens one. */
export function Devices() {
  const route = useRoute();
  const id = route.query.get("device");
  if (id) return <DeviceDetail id={id} />;
  return <DeviceList />;
}

function DeviceList() {
  const s = useSession();
  const route = useRoute();
  const projectId = s.project?.ProjectId ?? "";
  const offset = offsetOf(route.query);
  const adding = route.query.get("add") === "1" && can(s, "CreateDevice");
  const editId = can(s, "ModifyDevice") ? (route.query.get("edit") ?? "") : "";
  const discovering = route.query.get("discover") === "1" && can(s, "DiscoverDevices");
  const [drivers, setDrivers] = useState<DriverSpec[]>([]);
  const [driversError, setDriversError] = useState("");
  useLoad(
    () => (adding || editId ? call<{ DriverSet: DriverSpec[] }>("DescribeDeviceDrivers") : null),
    (r) => setDrivers(r.DriverSet),
    (e) => setDriversError(describe(e)),
    [adding, editId],
  );
  const site = route.query.get("site") ?? "";
  const [sites, setSites] = useState<EdgeNodeInfo[]>([]);
  useLoad(() => loadSites(projectId, can(s, "DescribeEdgeNodes")), setSites, () => setSites([]), [projectId]);
  const { value: list, error, reload } = usePolled(
    () => call<{ TotalCount: number; DeviceSet: DeviceInfo[] }>("DescribeDevices", {
      ProjectId: projectId, Offset: offset, Limit: PAGE, ...(site ? { Filters: [{ Name: "EdgeNode", Values: [site] }] } : {}),
    }),
    REFRESH_MS,
    [projectId, offset, site],
  );
  const editing = list?.DeviceSet.find((d) => d.DeviceId === editId);
  const prefill: Values = {};
  for (const k of ["Address", "Name"]) {
    const v = route.query.get(k.toLowerCase());
    if (v) prefill[k] = v;
  }
  const open = adding || !!editId || discovering;

  const total = list?.TotalCount ?? 0;
  return (
    <section aria-labelledby="page-title">
      <PageHead title="Devices" add={can(s, "CreateDevice") && !open && "Add device"} />
      {can(s, "DiscoverDevices") && !open && (
        <div className="buttons head-extra">
          <button type="button" className="secondary" onClick={() => navigate(withQuery({ discover: 1 }))}>
            Discover ONVIF cameras
          </button>
        </div>
      )}
      <ErrorLine error={driversError} />
      {discovering && <Discover onClose={() => navigate(withQuery({ discover: undefined }))} />}
      {adding && drivers.length > 0 && (
        <DeviceForm key={`add-${route.query.get("driver") ?? ""}-${prefill.Address ?? ""}`} drivers={drivers} projectId={projectId}
          mayProbe={can(s, "ProbeDevice")} platformAdmin={s.me.PlatformAdmin} driver={route.query.get("driver") ?? "replay"} prefill={prefill}
          onDone={(changed) => {
            // The discovery's prefill goes with the form.
            navigate(withQuery({ add: undefined, driver: undefined, address: undefined, name: undefined }));
            if (changed) reload();
          }} />
      )}
      {editing && drivers.length > 0 && (
        <DeviceForm key={`edit-${editing.DeviceId}`} drivers={drivers} projectId={projectId} device={editing} mayProbe={can(s, "ProbeDevice")}
          platformAdmin={s.me.PlatformAdmin} driver={editing.Driver} prefill={{}}
          onDone={(changed) => {
            navigate(withQuery({ edit: undefined }));
            if (changed) {
              forgetSnapshot(editing.DeviceId);
              reload();
            }
          }} />
      )}
      {(sites.length > 0 || site) && (
        <div className="filters">
          <Field label="Site" name="site" value={site} onChange={(v) => navigate(withQuery({ site: v, offset: undefined }))}
            options={[{ value: "", label: "any" }, ...sites.map((n) => ({ value: n.EdgeNodeId, label: n.Name })),
              ...(site && !sites.some((n) => n.EdgeNodeId === site) ? [{ value: site, label: site }] : [])]} />
        </div>
      )}
      <ErrorLine error={error} />
      <ListTable caption={`Devices of project ${projectId}`} columns={COLUMNS} empty="No devices yet." isEmpty={list?.DeviceSet.length === 0}>
        {list?.DeviceSet.map((d) => (
          <DeviceRow key={d.DeviceId} d={d} site={sites.find((n) => n.EdgeNodeId === d.EdgeNode)?.Name ?? d.EdgeNode}
            mayEdit={can(s, "ModifyDevice")} mayDelete={can(s, "DeleteDevice")} onDeleted={reload} />
        ))}
      </ListTable>
      <Pager label="Pages of devices" offset={offset} total={total} />
    </section>
  );
}

function DeviceRow(p: { d: DeviceInfo; site: string; mayEdit: boolean; mayDelete: boolean; onDeleted(): void }) {
  const d = p.d;
  const zones = d.Zones?.length ?? 0;
  return (
    <tr data-device={d.Name}>
      <td>
        <Thumb deviceId={d.DeviceId} name={d.Name} />
      </td>
      <th scope="row">
        <a href={withQuery({ device: d.DeviceId })} onClick={(e) => {
          e.preventDefault();
          navigate(withQuery({ device: d.DeviceId }));
        }}>
          {d.Name}
        </a>
        {zones > 0 && <div className="muted small">{zones} zone{zones === 1 ? "" : "s"}</div>}
      </th>
      <td>
        <span className={`status status-${d.Status || "unknown"}`}>{d.Status || "unknown"}</span>
        {(d.Reason || d.LastError) && <div className="muted small">{d.Reason || d.LastError}</div>}
      </td>
      <td className="wide-only">{d.Driver}</td>
      <td className="address wide-only">{d.Address}</td>
      <td className="wide-only">{d.Group}</td>
      <td className="wide-only" data-col="site">{p.site}</td>
      <td>
        <div className="row-actions">
          {p.mayEdit && (
            <button type="button" className="secondary" aria-label={`Edit ${d.Name}`} onClick={() => navigate(withQuery({ edit: d.DeviceId, add: undefined }))}>
              Edit
            </button>
          )}
          {p.mayDelete && <ConfirmDelete name={d.Name} action="DeleteDevice" body={{ DeviceId: d.DeviceId }} onDeleted={p.onDeleted} />}
        </div>
      </td>
    </tr>
  );
}

interface FormProps {
  drivers: DriverSpec[];
  projectId: string;
  device?: DeviceInfo;
  driver: string;
  prefill: Values;
  mayProbe: boolean;
  platformAdmin: boolean;
  onDone(changed: boolean): void;
}

/** DeviceForm adds or edits a device; its driver fields come from the driver's schema (DescribeDeviceDrivers). */
function DeviceForm(p: FormProps) {
  const usable = p.drivers.filter((d) => p.platformAdmin || !d.PlatformAdmin || d.Name === p.driver);
  const [driver, setDriver] = useState(usable.some((d) => d.Name === p.driver) ? p.driver : (usable[0]?.Name ?? ""));
  const spec = p.drivers.find((d) => d.Name === driver);
  const [own, setOwn] = useState<Record<(typeof OWN_FIELDS)[number], string>>({
    Name: p.device?.Name ?? p.prefill.Name ?? "",
    Driver: driver,
    Group: p.device?.Group ?? "",
    Description: p.device?.Description ?? "",
  });
  const [values, setValues] = useState<Values>(() => (spec ? initialValues(spec, p.device, p.prefill) : {}));
  const [errors, setErrors] = useState<FormErrors>(noErrors);
  const [probe, setProbe] = useState<ProbeResponse | null>(null);
  const [busy, setBusy] = useState("");
  const fields = fieldNames(spec, OWN_FIELDS);
  const edit = !!p.device;

  const setValue = (k: string) => (v: string) => {
    setValues((f) => ({ ...f, [k]: v }));
    setProbe(null);
  };
  function changeDriver(name: string) {
    setDriver(name);
    setOwn((f) => ({ ...f, Driver: name }));
    const next = p.drivers.find((d) => d.Name === name);
    if (next) setValues((old) => ({ ...initialValues(next), Address: old.Address ?? "" }));
    setProbe(null);
  }
  const body = () => (spec ? deviceBody(spec, values, p.device) : {});

  async function runProbe() {
    setBusy("probe");
    setErrors(noErrors);
    try {
      // A saved device's blank password is its stored one: probe the device itself then.
      const changedSecret = spec?.Fields.some((f) => f.Secret && values[f.Name]);
      const req = edit && !changedSecret && p.device ? { DeviceId: p.device.DeviceId } : { Device: { Driver: driver, ...body() } };
      setProbe(await call<ProbeResponse>("ProbeDevice", req));
    } catch (e) {
      setErrors(formErrors(e, fields, "Device."));
    } finally {
      setBusy("");
    }
  }

  async function save(e: FormEvent) {
    e.preventDefault();
    setBusy("save");
    setErrors(noErrors);
    try {
      const common: Record<string, unknown> = { Name: own.Name, Group: own.Group, Description: own.Description };
      if (p.device) await call("ModifyDevice", { DeviceId: p.device.DeviceId, ...common, ...body() });
      else await call("CreateDevice", { ProjectId: p.projectId, Driver: driver, ...common, ...body() });
      p.onDone(true);
    } catch (err) {
      setErrors(formErrors(err, fields));
    } finally {
      setBusy("");
    }
  }

  const title = edit ? `Edit ${p.device?.Name ?? ""}` : "Add a device";
  return (
    <form className="card" onSubmit={save} aria-labelledby="device-form-title" noValidate>
      <h2 id="device-form-title">{title}</h2>
      <ErrorLine error={errors.form} />
      <div className="form-grid">
        <Field label="Name" name="Name" value={own.Name} onChange={(v) => setOwn((f) => ({ ...f, Name: v }))} error={errors.fields.Name} required />
        {edit ? (
          <Field label="Driver" name="Driver" value={driver} onChange={() => undefined} options={[driver]} />
        ) : (
          <Field label="Driver" name="Driver" value={driver} onChange={changeDriver} error={errors.fields.Driver}
            options={usable.map((d) => d.Name)} hint={spec?.Description} />
        )}
        {spec?.Fields.map((f) => (
          <OptionField key={f.Name} o={f} option={false} value={values[f.Name] ?? ""} onChange={setValue(f.Name)} error={errors.fields[f.Name]}
            saved={edit && f.Secret && !!p.device?.HasPassword} />
        ))}
        <Field label="Group" name="Group" value={own.Group} onChange={(v) => setOwn((f) => ({ ...f, Group: v }))} error={errors.fields.Group} />
        <Field label="Description" name="Description" value={own.Description} onChange={(v) => setOwn((f) => ({ ...f, Description: v }))}
          error={errors.fields.Description} />
      </div>
      {spec && spec.Options.length > 0 && (
        <fieldset>
          <legend>{driver} options</legend>
          <div className="form-grid">
            {spec.Options.filter((o) => p.platformAdmin || !o.PlatformAdmin).map((o) => (
              <OptionField key={o.Name} o={o} option value={values[keyOf(o, true)] ?? ""} onChange={setValue(keyOf(o, true))}
                error={errors.fields[keyOf(o, true)]} saved={false} />
            ))}
          </div>
        </fieldset>
      )}
      {probe && (
        <p className={probe.Online ? "probe probe-ok" : "probe probe-bad"} role="status" data-testid="probe-result">
          {probe.Online ? "Probe: online." : `Probe: offline (${probe.Reason}) ${probe.Message}`}
          {probe.Info && Object.keys(probe.Info).length > 0 && ` ${JSON.stringify(probe.Info)}`}
        </p>
      )}
      {busy === "probe" && <p role="status" className="muted">Probing the device…</p>}
      <div className="buttons">
        {p.mayProbe && (
          <button type="button" className="secondary" onClick={() => void runProbe()} disabled={busy !== ""}>
            Probe
          </button>
        )}
        <button type="submit" disabled={busy !== ""}>
          {edit ? "Save changes" : "Save device"}
        </button>
        <button type="button" className="secondary" onClick={() => p.onDone(false)}>
          Cancel
        </button>
      </div>
    </form>
  );
}

const LABELS: Record<string, string> = { Address: "Address", Username: "User name", Password: "Password", Fps: "Frames per second", Width: "Width" };

/** OptionField is one schema field: a select for an enum or a boolean, a text area for text and lists, else an input. */
function OptionField(p: { o: OptionSpec; option: boolean; value: string; onChange(v: string): void; error?: string | undefined; saved: boolean }) {
  const o = p.o;
  const name = keyOf(o, p.option);
  const label = p.option ? o.Name : (LABELS[o.Name] ?? o.Name);
  const help = hint(o) + (p.saved ? " A password is saved." : "");
  if (o.Type === "text" || o.Type === "strings") {
    return <ListOrTextField label={label} name={name} value={p.value} onChange={p.onChange} error={p.error} hint={help} />;
  }
  const choices = o.Enum ?? (o.Type === "boolean" ? ["true", "false"] : undefined);
  if (choices) {
    const unset = o.Default !== undefined && o.Default !== null && o.Default !== "" ? `default (${String(o.Default)})` : "default";
    return <ListOrTextField label={label} name={name} value={p.value} onChange={p.onChange} error={p.error} hint={help} choices={["", ...choices]} unset={unset} />;
  }
  const type = o.Secret ? "password" : o.Type === "integer" || o.Type === "number" ? "number" : "text";
  return (
    <Field label={label} name={name} value={p.value} onChange={p.onChange} error={p.error} hint={help} type={type}
      required={o.Required} autoComplete={o.Secret ? "new-password" : "off"} />
  );
}

/** ListOrTextField is a labelled text area, or a select of choices whose empty one reads unset, with its hint and the server's error. */
function ListOrTextField(p: { label: string; name: string; value: string; onChange(v: string): void; error?: string | undefined; hint: string;
  choices?: string[]; unset?: string }) {
  const id = `ta-${p.name}`;
  const common = { id, name: p.name, value: p.value, "aria-describedby": `${id}-hint`, "aria-invalid": p.error ? true : undefined };
  return (
    <div className={p.error ? "field field-invalid" : "field"}>
      <label htmlFor={id}>{p.label}</label>
      {p.choices ? (
        <select {...common} onChange={(e) => p.onChange(e.target.value)}>
          {p.choices.map((c) => (
            <option key={c} value={c}>
              {c === "" ? p.unset : c}
            </option>
          ))}
        </select>
      ) : (
        <textarea {...common} rows={3} onChange={(e) => p.onChange(e.target.value)} />
      )}
      <div className="field-hint" id={`${id}-hint`}>{p.hint}</div>
      {p.error && <div className="field-error" role="alert" data-field-error={p.name}>{p.error}</div>}
    </div>
  );
}

/** Discover finds ONVIF cameras with WS-Discovery and prefills the add form with one. */
function Discover(props: { onClose(): void }) {
  const [target, setTarget] = useState("");
  const [timeout, setTimeoutS] = useState("3");
  const [found, setFound] = useState<Discovered[] | null>(null);
  const [errors, setErrors] = useState<FormErrors>(noErrors);
  const [busy, setBusy] = useState(false);

  async function search(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setErrors(noErrors);
    setFound(null);
    try {
      const body: Record<string, unknown> = { TimeoutMs: Math.round(Number(timeout) * 1000) || 0 };
      if (target) body.Target = target;
      setFound((await call<{ DeviceSet: Discovered[] }>("DiscoverDevices", body)).DeviceSet);
    } catch (err) {
      setErrors(formErrors(err, ["Target", "TimeoutMs"]));
    } finally {
      setBusy(false);
    }
  }
  const nameOf = (d: Discovered) => {
    const s = d.Scopes?.find((x) => x.includes("/name/"));
    return s ? decodeURIComponent(s.split("/name/")[1] ?? "") : "";
  };
  return (
    <form className="card" onSubmit={search} aria-labelledby="discover-title" noValidate>
      <h2 id="discover-title">Discover ONVIF cameras</h2>
      <ErrorLine error={errors.form} />
      <div className="form-grid">
        <Field label="Target" name="Target" value={target} onChange={setTarget} error={errors.fields.Target}
          hint="Empty: multicast on the local network. host:port asks one responder." />
        <Field label="Seconds to listen" name="TimeoutMs" type="number" value={timeout} onChange={setTimeoutS} error={errors.fields.TimeoutMs} />
      </div>
      <div className="buttons">
        <button type="submit" disabled={busy}>
          Search
        </button>
        <button type="button" className="secondary" onClick={props.onClose}>
          Close
        </button>
      </div>
      {busy && (
        <p role="status" className="muted">
          <progress aria-label="Searching" /> Listening for answers for {timeout} s…
        </p>
      )}
      {found && found.length === 0 && <p role="status">No camera answered.</p>}
      {found && found.length > 0 && (
        <ul className="events" aria-label="Cameras found">
          {found.map((d) => {
            const addr = d.XAddrs?.[0] ?? "";
            return (
              <li key={d.Endpoint} data-discovered={d.Endpoint}>
                <strong>{nameOf(d) || d.Endpoint}</strong> <span className="muted small">{addr} from {d.From}</span>
                {addr && (
                  <button type="button" className="secondary small" aria-label={`Add ${nameOf(d) || d.Endpoint}`}
                    onClick={() => navigate(withQuery({ discover: undefined, add: 1, driver: "onvif", address: addr, name: nameOf(d) }))}>
                    Add
                  </button>
                )}
              </li>
            );
          })}
        </ul>
      )}
    </form>
  );
}
