// The view library: find a person's faces across cameras by a photo or a
// record (SearchFaces), and records by what is stored in them
// (SearchRecords). A photo cannot live in a URL, so a search's state is
// the page's own; ?record= opens a face search from a record.
import { useState } from "react";
import type { FormEvent } from "react";
import { ApiError, call } from "../api";
import { Field } from "../components/Field";
import { ErrorLine, ListTable } from "../components/ListTable";
import { PageHead } from "../components/PageHead";
import { describe, formErrors, noErrors } from "../errors";
import type { FormErrors } from "../errors";
import { Link } from "../Layout";
import { useRoute, withQuery } from "../router";
import { can, useSession } from "../session";
import { utcTime } from "../time";
import type { Algorithm, Device, RecordInfo } from "../types";
import { useLoad } from "../useLoad";
import { nameOf, sameOrigin, Thumbnail } from "./Records";

/** FACE_PAGE is how many hits a face search shows at a time. */
export const FACE_PAGE = 24;
/** RECORD_PAGE is how many records an attribute search shows at a time. */
export const RECORD_PAGE = 20;
/** MAX_PHOTO is the largest photo sent (the API takes 4 MB of base64: 3 MB of bytes). */
export const MAX_PHOTO = 3 << 20;
/** MAX_CONDITIONS is how many conditions SearchRecords takes. */
export const MAX_CONDITIONS = 20;
/** COND_OPS are SearchRecords' operators. */
export const COND_OPS = ["=", "!=", "<", "<=", ">", ">=", "in"] as const;
/** VALUE_TYPES are the JSON types a condition's value is sent as (a number never equals the text "29"). */
export const VALUE_TYPES = ["text", "number", "boolean"] as const;
export type ValueType = (typeof VALUE_TYPES)[number];

const FACE_FIELDS = ["Image", "AlgorithmId", "RecordId", "Threshold", "StartTime", "EndTime", "DeviceIds", "Box", "Offset"];

/** FaceHit is one of SearchFaces' answers. */
export interface FaceHit {
  RecordId: string;
  Similarity: number;
  DeviceId: string;
  TaskId: string;
  Time: string;
  CropUrl: string;
}

export interface SearchFacesResponse {
  FaceSet: FaceHit[];
  HasMore: boolean;
  QueryBox?: number[];
}

/** FaceQuery is a face search as the form holds it. */
export interface FaceQuery {
  /** source is where the face comes from: a photo or a record. */
  source: "photo" | "record";
  image: string;
  algorithm: string;
  record: string;
  threshold: string;
  from: string;
  to: string;
  device: string;
}

/** faceBody turns a face search into SearchFaces' request; a value the browser cannot read goes as typed, for the server to name. */
export function faceBody(projectId: string, q: FaceQuery, offset: number): Record<string, unknown> {
  const b: Record<string, unknown> = { ProjectId: projectId, Offset: offset, Limit: FACE_PAGE };
  if (q.source === "photo") {
    b.Image = q.image;
    b.AlgorithmId = q.algorithm;
  } else {
    b.RecordId = q.record.trim();
  }
  if (q.threshold.trim() !== "") {
    const t = Number(q.threshold);
    b.Threshold = Number.isFinite(t) ? t : q.threshold;
  }
  if (q.from) b.StartTime = utcTime(q.from);
  if (q.to) b.EndTime = utcTime(q.to);
  if (q.device) b.DeviceIds = [q.device];
  return b;
}

/** unavailable tells an index being rebuilt (or an embedding algorithm not running) from other errors: trying later helps. */
export function unavailable(e: unknown): boolean {
  return e instanceof ApiError && e.code === "ResourceUnavailable";
}

/** similarityText shows a cosine similarity as a person reads it. */
export function similarityText(s: number): string {
  return s.toFixed(3);
}

/** readPhoto reads a chosen file as the base64 the API takes, refusing what is too big to send. */
export function readPhoto(file: Blob): Promise<string> {
  if (file.size > MAX_PHOTO) return Promise.reject(new Error(`the photo is ${(file.size / 1048576).toFixed(1)} MB; at most ${MAX_PHOTO / 1048576} MB`));
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => {
      const s = String(r.result);
      resolve(s.slice(s.indexOf(",") + 1));
    };
    r.onerror = () => reject(r.error ?? new Error("the photo could not be read"));
    r.readAsDataURL(file);
  });
}

/** embedders orders algorithms so those whose names say they describe faces come first: the likely choice for a photo. */
export function embedders(algs: readonly Algorithm[]): Algorithm[] {
  const likely = (a: Algorithm) => /descriptor|embed|faceres|recogn|attribute/i.test(`${a.Name} ${a.AlgorithmId}`);
  return [...algs.filter(likely), ...algs.filter((a) => !likely(a))];
}

/** Condition is a SearchRecords condition as the form holds it. */
export interface Condition {
  field: string;
  op: string;
  value: string;
  type: ValueType;
}

/** typed reads a value as the type chosen; undefined when it is not one (the form says so before sending). */
export function typed(v: string, t: ValueType): string | number | boolean | undefined {
  if (t === "text") return v;
  if (t === "number") {
    const n = Number(v);
    return v.trim() !== "" && Number.isFinite(n) ? n : undefined;
  }
  if (v === "true") return true;
  if (v === "false") return false;
  return undefined;
}

/** conditionsBody turns the form's rows into Conditions, leaving out rows without a field; the error names the row whose value is not of its type. */
export function conditionsBody(rows: readonly Condition[]): { conditions: Record<string, unknown>[]; errors: Record<string, string> } {
  const conditions: Record<string, unknown>[] = [];
  const errors: Record<string, string> = {};
  rows.forEach((c, i) => {
    if (c.field.trim() === "") return;
    const row = `Conditions[${i}]`;
    const out: Record<string, unknown> = { Field: c.field.trim(), Op: c.op };
    if (c.op === "in") {
      const parts = c.value.split(",").map((s) => s.trim()).filter((s) => s !== "");
      const vals = parts.map((p) => typed(p, c.type));
      if (parts.length === 0) errors[`${row}.Value`] = "give one or more values, separated by commas";
      else if (vals.some((v) => v === undefined)) errors[`${row}.Value`] = `every value must be a ${c.type}`;
      out.Values = vals;
    } else {
      const v = typed(c.value, c.type);
      if (v === undefined) errors[`${row}.Value`] = c.type === "number" ? "not a number" : "true or false";
      out.Value = v;
    }
    conditions.push(out);
  });
  return { conditions, errors };
}

/** rowOfCondition maps an error the server gives on Conditions[k] (k counts rows sent) back to the form's row. */
export function rowOfCondition(rows: readonly Condition[], k: number): number {
  let n = -1;
  for (let i = 0; i < rows.length; i++) {
    if ((rows[i]?.field.trim() ?? "") !== "") n++;
    if (n === k) return i;
  }
  return k;
}

/** AttrQuery is an attribute search as the form holds it. */
export interface AttrQuery {
  type: string;
  from: string;
  to: string;
  device: string;
  conditions: Condition[];
}

/** attrBody turns an attribute search into SearchRecords' request. */
export function attrBody(projectId: string, q: AttrQuery, offset: number): { body: Record<string, unknown>; errors: Record<string, string> } {
  const b: Record<string, unknown> = { ProjectId: projectId, Offset: offset, Limit: RECORD_PAGE };
  if (q.type.trim()) b.Types = [q.type.trim()];
  if (q.from) b.StartTime = utcTime(q.from);
  if (q.to) b.EndTime = utcTime(q.to);
  if (q.device) b.DeviceIds = [q.device];
  const { conditions, errors } = conditionsBody(q.conditions);
  if (conditions.length > 0) b.Conditions = conditions;
  return { body: b, errors };
}

interface Names {
  devices: Device[];
  algorithms: Algorithm[];
}

function useNames(projectId: string): [Names, string] {
  const s = useSession();
  const [names, setNames] = useState<Names>({ devices: [], algorithms: [] });
  const [error, setError] = useState("");
  useLoad(
    () => Promise.all([
      can(s, "DescribeDevices") ? call<{ DeviceSet: Device[] }>("DescribeDevices", { ProjectId: projectId, Limit: 100 }) : { DeviceSet: [] },
      can(s, "DescribeAlgorithms") ? call<{ AlgorithmSet: Algorithm[] }>("DescribeAlgorithms", { ProjectId: projectId, Limit: 100 }) : { AlgorithmSet: [] },
    ]),
    ([d, a]) => setNames({ devices: d.DeviceSet, algorithms: embedders(a.AlgorithmSet) }),
    (e) => setError(describe(e)),
    [projectId],
  );
  return [names, error];
}

/** Search is the view library: a face search and an attribute search (?mode=attributes). */
export function Search() {
  const route = useRoute();
  const s = useSession();
  const projectId = s.project?.ProjectId ?? "";
  const mode = route.query.get("mode") === "attributes" ? "attributes" : "faces";
  const [names, namesError] = useNames(projectId);
  const devices = [{ value: "", label: "any" }, ...names.devices.map((d) => ({ value: d.DeviceId, label: d.Name }))];
  return (
    <section aria-labelledby="page-title">
      <PageHead title="Search" />
      <nav className="buttons tabs" aria-label="Kinds of search">
        <Link to={withQuery({ mode: undefined, record: undefined })} aria-current={mode === "faces" ? "page" : undefined}>
          By face
        </Link>
        <Link to={withQuery({ mode: "attributes", record: undefined })} aria-current={mode === "attributes" ? "page" : undefined}>
          By attributes
        </Link>
      </nav>
      <ErrorLine error={namesError} />
      {mode === "faces" ? (
        <FaceSearch projectId={projectId} devices={devices} names={names} record={route.query.get("record") ?? ""} />
      ) : (
        <AttrSearch projectId={projectId} devices={devices} names={names} />
      )}
    </section>
  );
}

function FaceSearch(props: { projectId: string; devices: { value: string; label: string }[]; names: Names; record: string }) {
  const [q, setQ] = useState<FaceQuery>({ source: props.record ? "record" : "photo", image: "", algorithm: "", record: props.record, threshold: "0.5", from: "", to: "", device: "" });
  const [photoName, setPhotoName] = useState("");
  const [preview, setPreview] = useState("");
  const [errors, setErrors] = useState<FormErrors>(noErrors);
  const [busy, setBusy] = useState(false);
  const [rebuilding, setRebuilding] = useState("");
  const [result, setResult] = useState<{ hits: FaceHit[]; more: boolean; offset: number; box?: number[] } | null>(null);
  const algorithm = q.algorithm || props.names.algorithms[0]?.AlgorithmId || "";
  const set = (k: keyof FaceQuery) => (v: string) => setQ((x) => ({ ...x, [k]: v }));

  async function run(offset: number) {
    setBusy(true);
    setRebuilding("");
    try {
      if (q.source === "photo" && !q.image) {
        setErrors({ fields: { Image: "choose a photo with a face" } });
        return;
      }
      const r = await call<SearchFacesResponse>("SearchFaces", faceBody(props.projectId, { ...q, algorithm }, offset));
      setErrors(noErrors);
      setResult({ hits: r.FaceSet, more: r.HasMore, offset, box: r.QueryBox });
    } catch (e) {
      setResult(null);
      if (unavailable(e)) {
        setErrors(noErrors);
        setRebuilding(describe(e));
      } else setErrors(formErrors(e, FACE_FIELDS));
    } finally {
      setBusy(false);
    }
  }
  function submit(e: FormEvent) {
    e.preventDefault();
    void run(0);
  }
  async function choose(files: FileList | null) {
    const f = files?.[0];
    if (!f) return;
    try {
      const b64 = await readPhoto(f);
      setQ((x) => ({ ...x, image: b64 }));
      setPhotoName(f.name);
      setPreview(`data:${f.type || "image/jpeg"};base64,${b64}`);
      setErrors(noErrors);
    } catch (err) {
      setErrors({ fields: { Image: String(err instanceof Error ? err.message : err) } });
    }
  }
  const f = errors.fields;
  const deviceName = (id: string) => nameOf(props.names.devices.map((d) => ({ id: d.DeviceId, name: d.Name })), id);
  return (
    <>
      <form className="card" onSubmit={submit} aria-label="Search by face" noValidate>
        <fieldset className="buttons">
          <legend>The face to look for</legend>
          <label className="check">
            <input type="radio" name="source" checked={q.source === "photo"} onChange={() => setQ((x) => ({ ...x, source: "photo" }))} /> A photo
          </label>
          <label className="check">
            <input type="radio" name="source" checked={q.source === "record"} onChange={() => setQ((x) => ({ ...x, source: "record" }))} /> A record
          </label>
        </fieldset>
        <div className="form-grid">
          {q.source === "photo" ? (
            <>
              <div className={f.Image ? "field field-invalid" : "field"}>
                <label htmlFor="search-photo">Photo</label>
                <input id="search-photo" name="Image" type="file" accept="image/jpeg,image/png" aria-invalid={f.Image ? true : undefined}
                  onChange={(e) => void choose(e.target.files)} />
                <div className="field-hint">{photoName ? `${photoName}: its largest face is searched for.` : "JPEG or PNG, at most 3 MB; its largest face is searched for."}</div>
                {f.Image && (
                  <div className="field-error" role="alert" data-field-error="Image">
                    {f.Image}
                  </div>
                )}
              </div>
              <Field label="Embedding algorithm" name="AlgorithmId" value={algorithm} onChange={set("algorithm")} error={f.AlgorithmId}
                options={props.names.algorithms.length ? props.names.algorithms.map((a) => ({ value: a.AlgorithmId, label: a.Name })) : [{ value: "", label: "none onboarded" }]}
                hint="The one the records' embeddings were made with." />
            </>
          ) : (
            <Field label="Record" name="RecordId" value={q.record} onChange={set("record")} error={f.RecordId} hint="A face record's id (rec-…): its stored embedding is searched for." />
          )}
          <Field label="Threshold" name="Threshold" value={q.threshold} onChange={set("threshold")} error={f.Threshold} hint="Cosine similarity 0–1; hits below it are left out." />
          <Field label="Device" name="DeviceIds" value={q.device} onChange={set("device")} options={props.devices} error={f.DeviceIds} />
          <Field label="From" name="StartTime" type="datetime-local" value={q.from} onChange={set("from")} error={f.StartTime} />
          <Field label="Until" name="EndTime" type="datetime-local" value={q.to} onChange={set("to")} error={f.EndTime} />
        </div>
        <ErrorLine error={errors.form} />
        {rebuilding && (
          <p className="form-error" role="alert" data-testid="search-unavailable">
            Face search is not available right now: {rebuilding}. The face index may be rebuilding from the store (nothing is lost); try again in a
            minute.
          </p>
        )}
        <div className="buttons">
          <button type="submit" disabled={busy}>
            {busy ? "Searching…" : "Search"}
          </button>
        </div>
      </form>
      {preview && q.source === "photo" && <img className="thumb query-photo" src={preview} alt="the photo searched with" />}
      {result && (
        <>
          <p className="muted" role="status" data-testid="face-count">
            {result.hits.length === 0
              ? "No faces at or above the threshold."
              : `Hits ${result.offset + 1}–${result.offset + result.hits.length}, most similar first${result.more ? "; more on the next page" : ""}.`}
          </p>
          <ul className="face-grid" aria-label="Faces found">
            {result.hits.map((h) => (
              <li key={h.RecordId} className="face-card card" data-record={h.RecordId}>
                <Link to={withQuery({ record: h.RecordId, mode: undefined }, "/records")}>
                  {h.CropUrl ? <img className="face-crop" src={sameOrigin(h.CropUrl)} alt={`face ${h.RecordId}`} loading="lazy" /> : <span className="face-crop thumb-empty muted small">no crop</span>}
                </Link>
                <div className="face-facts">
                  <strong data-testid="similarity">{similarityText(h.Similarity)}</strong>
                  <span className="small" title={h.DeviceId}>{deviceName(h.DeviceId)}</span>
                  <span className="small muted">{h.Time}</span>
                </div>
              </li>
            ))}
          </ul>
          <nav className="pager" aria-label="Pages of faces">
            {result.offset > 0 && (
              <button type="button" className="secondary" disabled={busy} onClick={() => void run(Math.max(0, result.offset - FACE_PAGE))}>
                Previous
              </button>
            )}
            {result.more && (
              <button type="button" className="secondary" disabled={busy} onClick={() => void run(result.offset + FACE_PAGE)}>
                Next
              </button>
            )}
          </nav>
        </>
      )}
    </>
  );
}

function AttrSearch(props: { projectId: string; devices: { value: string; label: string }[]; names: Names }) {
  const [q, setQ] = useState<AttrQuery>({ type: "face", from: "", to: "", device: "", conditions: [{ field: "", op: "=", value: "", type: "text" }] });
  const [errors, setErrors] = useState<FormErrors>(noErrors);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ records: RecordInfo[]; total: number; offset: number } | null>(null);
  const set = (k: "type" | "from" | "to" | "device") => (v: string) => setQ((x) => ({ ...x, [k]: v }));
  const setCond = (i: number, c: Partial<Condition>) => setQ((x) => ({ ...x, conditions: x.conditions.map((y, j) => (j === i ? { ...y, ...c } : y)) }));

  async function run(offset: number) {
    const { body, errors: local } = attrBody(props.projectId, q, offset);
    if (Object.keys(local).length > 0) {
      setErrors({ fields: local });
      return;
    }
    setBusy(true);
    try {
      const r = await call<{ TotalCount: number; RecordSet: RecordInfo[] }>("SearchRecords", body);
      setErrors(noErrors);
      setResult({ records: r.RecordSet, total: r.TotalCount, offset });
    } catch (e) {
      setResult(null);
      // The server counts the rows sent; the form shows the row typed.
      const fields = q.conditions.flatMap((_, i) => [`Conditions[${i}].Field`, `Conditions[${i}].Op`, `Conditions[${i}].Value`]);
      let err = e;
      if (e instanceof ApiError && e.field) {
        const m = /^Conditions\[(\d+)\](.*)$/.exec(e.field);
        if (m) {
          const row = rowOfCondition(q.conditions, Number(m[1]));
          const rest = (m[2] ?? "").replace(/^\.Values(\[\d+\])?$/, ".Value");
          err = new ApiError(e.code, `Conditions[${row}]${rest}: ${e.detail}`);
        }
      }
      setErrors(formErrors(err, ["Types", "StartTime", "EndTime", "DeviceIds", "Conditions", ...fields]));
    } finally {
      setBusy(false);
    }
  }
  function submit(e: FormEvent) {
    e.preventDefault();
    void run(0);
  }
  const f = errors.fields;
  const deviceName = (id: string) => nameOf(props.names.devices.map((d) => ({ id: d.DeviceId, name: d.Name })), id);
  return (
    <>
      <form className="card" onSubmit={submit} aria-label="Search by attributes" noValidate>
        <div className="form-grid">
          <Field label="Record type" name="Types" value={q.type} onChange={set("type")} error={f.Types} suggestions={["face", "person", "vehicle", "watchlist_hit"]}
            hint="e.g. face, vehicle; empty: any." />
          <Field label="Device" name="DeviceIds" value={q.device} onChange={set("device")} options={props.devices} error={f.DeviceIds} />
          <Field label="From" name="StartTime" type="datetime-local" value={q.from} onChange={set("from")} error={f.StartTime} />
          <Field label="Until" name="EndTime" type="datetime-local" value={q.to} onChange={set("to")} error={f.EndTime} />
        </div>
        <fieldset className="attrs">
          <legend>Conditions</legend>
          <p className="field-hint">
            A field of the record&apos;s data, nested ones by a dotted path (<code>Attributes.age</code>); &lt; &lt;= &gt; &gt;= compare numbers, in
            takes values separated by commas. The value is sent as the type chosen: the number 29 never equals the text &quot;29&quot;.
          </p>
          {q.conditions.map((c, i) => (
            <div className="attr-row cond-row" key={i} data-condition={i}>
              <Field label={`Field ${i + 1}`} name={`Conditions[${i}].Field`} value={c.field} onChange={(v) => setCond(i, { field: v })} error={f[`Conditions[${i}].Field`]} />
              <Field label={`Operator ${i + 1}`} name={`Conditions[${i}].Op`} value={c.op} onChange={(v) => setCond(i, { op: v })} options={COND_OPS}
                error={f[`Conditions[${i}].Op`]} />
              <Field label={`Value ${i + 1}`} name={`Conditions[${i}].Value`} value={c.value} onChange={(v) => setCond(i, { value: v })} error={f[`Conditions[${i}].Value`]} />
              <Field label={`Value type ${i + 1}`} name={`Conditions[${i}].Type`} value={c.type} onChange={(v) => setCond(i, { type: v as ValueType })} options={VALUE_TYPES} />
              <button type="button" className="secondary" aria-label={`Remove condition ${i + 1}`}
                onClick={() => setQ((x) => ({ ...x, conditions: x.conditions.filter((_, j) => j !== i) }))}>
                Remove
              </button>
            </div>
          ))}
          {f.Conditions && (
            <div className="field-error" role="alert" data-field-error="Conditions">
              {f.Conditions}
            </div>
          )}
          {q.conditions.length < MAX_CONDITIONS && (
            <button type="button" className="secondary" onClick={() => setQ((x) => ({ ...x, conditions: [...x.conditions, { field: "", op: "=", value: "", type: "text" }] }))}>
              Add a condition
            </button>
          )}
        </fieldset>
        <ErrorLine error={errors.form} />
        <div className="buttons">
          <button type="submit" disabled={busy}>
            {busy ? "Searching…" : "Search"}
          </button>
        </div>
      </form>
      {result && (
        <>
          <ListTable caption="Records found" columns={[{ label: "Crop" }, { label: "Time" }, { label: "Type", wide: true }, { label: "Device", wide: true }]}
            empty="No records match." isEmpty={result.records.length === 0}>
            {result.records.map((r) => (
              <tr key={r.RecordId} data-record={r.RecordId} data-type={r.Type}>
                <td>
                  <Thumbnail record={r} />
                </td>
                <th scope="row">
                  <Link to={withQuery({ record: r.RecordId, mode: undefined }, "/records")}>{r.Time}</Link>
                </th>
                <td className="wide-only">{r.Type}</td>
                <td className="wide-only" title={r.DeviceId}>
                  {deviceName(r.DeviceId)}
                </td>
                <td />
              </tr>
            ))}
          </ListTable>
          <nav className="pager" aria-label="Pages of records found">
            <span>
              {result.total === 0 ? "0" : `${result.offset + 1}–${Math.min(result.offset + RECORD_PAGE, result.total)}`} of {result.total}
            </span>
            {result.offset > 0 && (
              <button type="button" className="secondary" disabled={busy} onClick={() => void run(Math.max(0, result.offset - RECORD_PAGE))}>
                Previous
              </button>
            )}
            {result.offset + RECORD_PAGE < result.total && (
              <button type="button" className="secondary" disabled={busy} onClick={() => void run(result.offset + RECORD_PAGE)}>
                Next
              </button>
            )}
          </nav>
        </>
      )}
    </>
  );
}
