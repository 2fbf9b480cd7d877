import { useState } from "react";
import type { FormEvent } from "react";
import { call } from "../api";
import { ConfirmDelete } from "../components/ConfirmDelete";
import { Field } from "../components/Field";
import { ErrorLine, ListTable } from "../components/ListTable";
import { PageHead } from "../components/PageHead";
import { TraceWaterfall } from "../components/TraceWaterfall";
import { offsetOf, PAGE, Pager } from "../components/Pager";
import { describe, formErrors, noErrors } from "../errors";
import type { FormErrors } from "../errors";
import { Link } from "../Layout";
import { navigate, useRoute, withQuery } from "../router";
import { can, useSession } from "../session";
import { utcTime } from "../time";
import type { Device, DescribeRecordsResponse, RecordInfo, TaskInfo } from "../types";
import { loadSites } from "./EdgeNodes";
import type { EdgeNodeInfo } from "./EdgeNodes";
import { useAction } from "../useAction";
import { useLoad } from "../useLoad";
import { usePolled } from "../usePoll";

const REFRESH_MS = 5000;
/** EXPORT_CAP is the most rows an export reads, page by page. */
export const EXPORT_CAP = 10000;
const EXPORT_PAGE = 100;
/** DELETE_BATCH is how many records one DeleteRecords call names (the action's limit). */
export const DELETE_BATCH = 100;
/** MAX_ATTRS is how many attribute filters DescribeRecords takes. */
export const MAX_ATTRS = 10;
const COLUMNS = [{ label: "Select" }, { label: "Crop" }, { label: "Time" }, { label: "Type", wide: true }, { label: "Task", wide: true }, { label: "Device", wide: true }];
const FIELDS = ["TaskIds", "DeviceIds", "EdgeNodeIds", "Types", "StartTime", "EndTime", "Attributes", ...Array.from({ length: MAX_ATTRS }, (_, i) => [`Attributes[${i}].Name`, `Attributes[${i}].Op`, `Attributes[${i}].Value`]).flat()];
/** OPS are the comparisons an attribute filter makes: text for = and !=, numbers for the others. */
export const OPS = ["=", "!=", "<", "<=", ">", ">="] as const;

/** Attr is a filter on a top-level field of a record's Data. */
export interface Attr {
  name: string;
  op: string;
  value: string;
}

/** Search is a records search as the URL holds it: ids, a type, local date-times and attribute filters. */
export interface Search {
  task: string;
  device: string;
  /** site is an edge node: the records of its devices and tasks. */
  site: string;
  type: string;
  from: string;
  to: string;
  attrs: Attr[];
}

const ATTR = /^\s*(?:Data\.)?([A-Za-z_][A-Za-z0-9_]*)\s*(!=|<=|>=|=|<|>)\s*(.*)$/s;

/** parseAttr reads a filter as written ("Quality >= 0.8", "Data.gender=female"); null when it is not one. */
export function parseAttr(text: string): Attr | null {
  const m = ATTR.exec(text);
  return m ? { name: m[1] ?? "", op: m[2] ?? "=", value: m[3] ?? "" } : null;
}

/** attrText writes a filter as the URL keeps it. */
export function attrText(a: Attr): string {
  return `${a.name}${a.op}${a.value}`;
}

export function searchOf(q: URLSearchParams): Search {
  const attrs = q.getAll("attr").map(parseAttr).filter((a): a is Attr => a !== null);
  return { task: q.get("task") ?? "", device: q.get("device") ?? "", site: q.get("site") ?? "", type: q.get("type") ?? "", from: q.get("from") ?? "", to: q.get("to") ?? "", attrs };
}

/** searchBody turns a search into DescribeRecords' filters; a time the browser cannot read goes as typed, for the server to name. */
export function searchBody(projectId: string, s: Search): Record<string, unknown> {
  const b: Record<string, unknown> = { ProjectId: projectId };
  if (s.task) b.TaskIds = [s.task];
  if (s.device) b.DeviceIds = [s.device];
  if (s.site) b.EdgeNodeIds = [s.site];
  if (s.type) b.Types = [s.type];
  if (s.from) b.StartTime = utcTime(s.from);
  if (s.to) b.EndTime = utcTime(s.to);
  const attrs = s.attrs.filter((a) => a.name !== "");
  if (attrs.length > 0) b.Attributes = attrs.map((a) => ({ Name: a.name, Op: a.op, Value: a.value }));
  return b;
}

/** searchUrl is the URL of a search: the current page with the search's keys, from its first page. */
export function searchUrl(s: Search): string {
  const q = new URLSearchParams(window.location.search);
  for (const k of ["task", "device", "site", "type", "from", "to", "attr", "offset"]) q.delete(k);
  for (const k of ["task", "device", "site", "type", "from", "to"] as const) if (s[k]) q.set(k, s[k]);
  for (const a of s.attrs) if (a.name) q.append("attr", attrText(a));
  const qs = q.toString();
  return qs ? `${window.location.pathname}?${qs}` : window.location.pathname;
}

/**
 * sameOrigin makes an object's signed URL relative when it is one of the
 * platform's /objects/ URLs, so the image comes from the console's own
 * origin (the Content-Security-Policy allows no other).
 */
export function sameOrigin(url: string): string {
  try {
    const u = new URL(url, window.location.href);
    return u.pathname.startsWith("/objects/") ? u.pathname + u.search : url;
  } catch {
    return url;
  }
}

/** Records searches the project's records page by page, shows one (?record=), deletes and exports them. */
export function Records() {
  const route = useRoute();
  const id = route.query.get("record") ?? "";
  if (id) return <RecordDetail id={id} />;
  return <RecordList search={searchOf(route.query)} offset={offsetOf(route.query)} />;
}

/** Names are the project's tasks and devices by id, for showing names where records hold ids. */
interface Names {
  tasks: TaskInfo[];
  devices: Device[];
  sites: EdgeNodeInfo[];
}

/** nameOf is the name of the task or device with id, or the id when it is not (or no longer) known. */
export function nameOf(list: readonly { id: string; name: string }[], id: string): string {
  return list.find((x) => x.id === id)?.name ?? id;
}

function useNames(projectId: string): [Names, string] {
  const [names, setNames] = useState<Names>({ tasks: [], devices: [], sites: [] });
  const [error, setError] = useState("");
  const s = useSession();
  useLoad(
    () => Promise.all([
      can(s, "DescribeTasks") ? call<{ TaskSet: TaskInfo[] }>("DescribeTasks", { ProjectId: projectId, Limit: 100 }) : { TaskSet: [] },
      can(s, "DescribeDevices") ? call<{ DeviceSet: Device[] }>("DescribeDevices", { ProjectId: projectId, Limit: 100 }) : { DeviceSet: [] },
      loadSites(projectId, can(s, "DescribeEdgeNodes")),
    ]),
    ([t, d, e]) => setNames({ tasks: t.TaskSet, devices: d.DeviceSet, sites: e }),
    (e) => setError(describe(e)),
    [projectId],
  );
  return [names, error];
}

function RecordList(props: { search: Search; offset: number }) {
  const s = useSession();
  const projectId = s.project?.ProjectId ?? "";
  const { search, offset } = props;
  const body = searchBody(projectId, search);
  const key = JSON.stringify(body);
  const [errors, setErrors] = useState<FormErrors>(noErrors);
  const [selected, setSelected] = useState<ReadonlySet<string>>(new Set());
  // Pictures of records being deleted may be gone before they load (a 404): while a delete runs,
  // and until a list asked for after it arrives, the rows show none. epoch counts deletes begun
  // and ended; a list carries the epoch it was asked in.
  const [deleting, setDeleting] = useState(false);
  const [epoch, setEpoch] = useState(0);
  const [names, namesError] = useNames(projectId);
  const { value: list, error, reload } = usePolled(
    async () => {
      try {
        const asked = epoch;
        const r = await call<DescribeRecordsResponse>("DescribeRecords", { ...body, Offset: offset, Limit: PAGE });
        setErrors(noErrors);
        return { ...r, epoch: asked };
      } catch (e) {
        const f = formErrors(e, FIELDS);
        setErrors(f);
        throw e;
      }
    },
    REFRESH_MS,
    [key, offset],
  );
  const fieldError = Object.keys(errors.fields).length > 0;
  const tasks = names.tasks.map((t) => ({ id: t.TaskId, name: t.Name }));
  const devices = names.devices.map((d) => ({ id: d.DeviceId, name: d.Name }));
  const mayDelete = can(s, "DeleteRecords");
  const toggle = (id: string, on: boolean) =>
    setSelected((x) => {
      const y = new Set(x);
      if (on) y.add(id);
      else y.delete(id);
      return y;
    });
  const beforeDelete = () => {
    setEpoch((e) => e + 1);
    setDeleting(true);
  };
  const afterDelete = () => {
    setEpoch((e) => e + 1);
    setDeleting(false);
    setSelected(new Set());
    reload();
  };
  return (
    <section aria-labelledby="page-title">
      <PageHead title="Records" />
      <SearchForm key={JSON.stringify(search)} search={search} errors={errors} tasks={tasks} devices={devices}
        sites={names.sites.map((n) => ({ id: n.EdgeNodeId, name: n.Name }))} error={namesError} />
      <Export body={body} />
      {mayDelete && (
        <BulkDelete projectId={projectId} body={body} total={list?.TotalCount ?? 0} selected={[...selected]}
          onSelectPage={() => setSelected(new Set(list?.RecordSet.map((r) => r.RecordId)))} onClear={() => setSelected(new Set())} onStart={beforeDelete} onDone={afterDelete} />
      )}
      <ErrorLine error={fieldError ? undefined : error} />
      <ListTable caption={`Records of project ${projectId}`} columns={mayDelete ? COLUMNS : COLUMNS.slice(1)} empty="No records match."
        isEmpty={list?.RecordSet.length === 0}>
        {list?.RecordSet.map((r) => (
          <tr key={r.RecordId} data-record={r.RecordId} data-type={r.Type}>
            {mayDelete && (
              <td>
                <input type="checkbox" checked={selected.has(r.RecordId)} onChange={(e) => toggle(r.RecordId, e.target.checked)}
                  aria-label={`Select record ${r.Time}`} />
              </td>
            )}
            <td>
              {deleting || list.epoch !== epoch ? <span className="thumb" /> : <Thumbnail record={r} />}
            </td>
            <th scope="row">
              <Link to={withQuery({ record: r.RecordId })}>{r.Time}</Link>
            </th>
            <td className="wide-only">{r.Type}</td>
            <td className="wide-only" data-col="task" title={r.TaskId}>
              {nameOf(tasks, r.TaskId)}
            </td>
            <td className="wide-only" data-col="device" title={r.DeviceId}>
              {nameOf(devices, r.DeviceId)}
            </td>
            <td>
              <div className="row-actions">
                {mayDelete && (
                  <ConfirmDelete name={`record ${r.RecordId}`} action="DeleteRecords" body={{ ProjectId: projectId, RecordIds: [r.RecordId] }}
                    onDeleted={afterDelete} />
                )}
              </div>
            </td>
          </tr>
        ))}
      </ListTable>
      <Pager label="Pages of records" offset={offset} total={list?.TotalCount ?? 0} />
    </section>
  );
}

/** objectKeyOf is the object key a Data field refers to ({"ObjectKey": …}, as the record sink stores images). */
export function objectKeyOf(data: unknown, field: string): string | undefined {
  const v = (data as Record<string, unknown> | null)?.[field];
  const k = (v as { ObjectKey?: unknown } | null | undefined)?.ObjectKey;
  return typeof k === "string" ? k : undefined;
}

/** objectUrl is the signed URL of one of a record's objects, served from the console's origin. */
export function objectUrl(r: RecordInfo, key: string | undefined): string | undefined {
  if (key === undefined) return undefined;
  const i = r.ObjectKeys.indexOf(key);
  const u = i >= 0 ? r.ObjectUrls[i] : undefined;
  return u ? sameOrigin(u) : undefined;
}

/** FRAME_FIELDS are the Data fields that hold the whole frame a record was found in (a store wired in the flow editor names them in lower case). */
const FRAME_FIELDS = ["Image", "Frame", "Snapshot", "image", "frame", "snapshot"];

/** frameKey is the object key of the frame a record was found in, if it stored one. */
export function frameKey(r: RecordInfo): string | undefined {
  for (const f of FRAME_FIELDS) {
    const k = objectKeyOf(r.Data, f);
    if (k) return k;
  }
  return undefined;
}

/** thumbUrl is the picture that stands for a record: its crop, else an object that is not the frame, else any. */
export function thumbUrl(r: RecordInfo): string | undefined {
  const frame = frameKey(r);
  const key = objectKeyOf(r.Data, "Crop") ?? r.ObjectKeys.find((k) => k !== frame) ?? r.ObjectKeys[0];
  return objectUrl(r, key);
}

/** Thumbnail is a record's crop (or its first picture) as a small image. */
export function Thumbnail(props: { record: RecordInfo }) {
  const url = thumbUrl(props.record);
  if (!url) return <span className="muted small">none</span>;
  return <img className="thumb" src={url} alt={`${props.record.Type} ${props.record.RecordId}`} loading="lazy" />;
}

function SearchForm(props: { search: Search; errors: FormErrors; tasks: { id: string; name: string }[]; devices: { id: string; name: string }[];
  sites: { id: string; name: string }[];
  error: string }) {
  const [form, setForm] = useState<Search>(props.search);
  const set = (k: "task" | "device" | "site" | "type" | "from" | "to") => (v: string) => setForm((f) => ({ ...f, [k]: v }));
  const setAttr = (i: number, a: Partial<Attr>) => setForm((f) => ({ ...f, attrs: f.attrs.map((x, j) => (j === i ? { ...x, ...a } : x)) }));
  function submit(e: FormEvent) {
    e.preventDefault();
    navigate(searchUrl(form));
  }
  const f = props.errors.fields;
  const options = (list: { id: string; name: string }[], id: string) => {
    const o = [{ value: "", label: "any" }, ...list.map((x) => ({ value: x.id, label: x.name }))];
    // A search for an id not in the list (deleted, or past the first 100) keeps it.
    return id && !list.some((x) => x.id === id) ? [...o, { value: id, label: id }] : o;
  };
  return (
    <form className="card" onSubmit={submit} aria-label="Search records" noValidate>
      <ErrorLine error={props.error} />
      <div className="form-grid">
        <Field label="Task" name="TaskIds" value={form.task} onChange={set("task")} error={f.TaskIds} options={options(props.tasks, form.task)} />
        <Field label="Device" name="DeviceIds" value={form.device} onChange={set("device")} error={f.DeviceIds} options={options(props.devices, form.device)} />
        {(props.sites.length > 0 || form.site) && (
          <Field label="Site" name="EdgeNodeIds" value={form.site} onChange={set("site")} error={f.EdgeNodeIds} options={options(props.sites, form.site)} />
        )}
        <Field label="Type" name="Types" value={form.type} onChange={set("type")} error={f.Types} hint="e.g. face; empty: any." />
        <Field label="From" name="StartTime" type="datetime-local" value={form.from} onChange={set("from")} error={f.StartTime} />
        <Field label="Until" name="EndTime" type="datetime-local" value={form.to} onChange={set("to")} error={f.EndTime} />
      </div>
      <fieldset className="attrs">
        <legend>Attribute filters</legend>
        <p className="field-hint">
          A top-level field of the record&apos;s data, e.g. <code>Quality &gt;= 0.8</code> or <code>gender = female</code>: = and != compare text,
          &lt; &lt;= &gt; &gt;= numbers.
        </p>
        {form.attrs.map((a, i) => (
          <div className="attr-row" key={i} data-attr={i}>
            <Field label={`Field ${i + 1}`} name={`Attributes[${i}].Name`} value={a.name} onChange={(v) => setAttr(i, { name: v })}
              error={f[`Attributes[${i}].Name`]} />
            <Field label={`Comparison ${i + 1}`} name={`Attributes[${i}].Op`} value={a.op} onChange={(v) => setAttr(i, { op: v })} options={OPS}
              error={f[`Attributes[${i}].Op`]} />
            <Field label={`Value ${i + 1}`} name={`Attributes[${i}].Value`} value={a.value} onChange={(v) => setAttr(i, { value: v })}
              error={f[`Attributes[${i}].Value`]} />
            <button type="button" className="secondary" aria-label={`Remove filter ${i + 1}`}
              onClick={() => setForm((x) => ({ ...x, attrs: x.attrs.filter((_, j) => j !== i) }))}>
              Remove
            </button>
          </div>
        ))}
        {f.Attributes && (
          <div className="field-error" role="alert" data-field-error="Attributes">
            {f.Attributes}
          </div>
        )}
        {form.attrs.length < MAX_ATTRS && (
          <button type="button" className="secondary" onClick={() => setForm((x) => ({ ...x, attrs: [...x.attrs, { name: "", op: "=", value: "" }] }))}>
            Add a filter
          </button>
        )}
      </fieldset>
      <div className="buttons">
        <button type="submit">Search</button>
      </div>
    </form>
  );
}

/** csvCell quotes a value for CSV when it must be. */
export function csvCell(v: string): string {
  return /[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

const CSV_HEAD = ["RecordId", "Time", "Type", "TaskId", "DeviceId", "ObjectKeys", "Data"];

/** toCsv writes records as CSV, one row each, Data as its JSON. */
export function toCsv(records: readonly RecordInfo[]): string {
  const rows = records.map((r) =>
    [r.RecordId, r.Time, r.Type, r.TaskId, r.DeviceId, r.ObjectKeys.join(" "), JSON.stringify(r.Data)].map(csvCell).join(","),
  );
  return [CSV_HEAD.join(","), ...rows].join("\r\n") + "\r\n";
}

/** toJsonLines writes records as JSON lines, without their signed URLs (they expire). */
export function toJsonLines(records: readonly RecordInfo[]): string {
  return records.map((r) => JSON.stringify({ ...r, ObjectUrls: undefined })).join("\n") + "\n";
}

/** readAll reads a search's records page by page, at most cap of them. */
export async function readAll(body: Record<string, unknown>, cap = EXPORT_CAP): Promise<{ records: RecordInfo[]; total: number }> {
  const records: RecordInfo[] = [];
  let total = 0;
  while (records.length < cap) {
    const r = await call<DescribeRecordsResponse>("DescribeRecords", { ...body, Offset: records.length, Limit: Math.min(EXPORT_PAGE, cap - records.length) });
    total = r.TotalCount;
    records.push(...r.RecordSet);
    if (r.RecordSet.length === 0 || records.length >= total) break;
  }
  return { records, total };
}

function Export(props: { body: Record<string, unknown> }) {
  const [note, setNote] = useState("");
  const { busy, error, run: act } = useAction();
  const run = (kind: "csv" | "jsonl") =>
    act(async () => {
      setNote("Exporting…");
      const { records, total } = await readAll(props.body);
      const text = kind === "csv" ? toCsv(records) : toJsonLines(records);
      const url = URL.createObjectURL(new Blob([text], { type: kind === "csv" ? "text/csv" : "application/x-ndjson" }));
      const a = document.createElement("a");
      a.href = url;
      a.download = `records.${kind}`;
      a.click();
      window.setTimeout(() => URL.revokeObjectURL(url), 0);
      setNote(
        total > records.length
          ? `Exported the first ${records.length} of ${total} records (at most ${EXPORT_CAP}): narrow the search for the rest.`
          : `Exported ${records.length} records.`,
      );
    });
  return (
    <div className="buttons export">
      <button type="button" className="secondary" disabled={busy} onClick={() => void run("csv")}>
        Export CSV
      </button>
      <button type="button" className="secondary" disabled={busy} onClick={() => void run("jsonl")}>
        Export JSON lines
      </button>
      {(error || note) && (
        <span className={error ? "form-error" : "muted"} role="status" data-testid="export-note">
          {error || note}
        </span>
      )}
    </div>
  );
}

/** Progress is how far a bulk delete has come. */
export interface Progress {
  done: number;
  total: number;
}

/** deleteIds deletes records by id, DELETE_BATCH at a time, telling progress after each call; it answers how many were deleted. */
export async function deleteIds(projectId: string, ids: readonly string[], progress: (p: Progress) => void): Promise<number> {
  let done = 0;
  for (let i = 0; i < ids.length; i += DELETE_BATCH) {
    const r = await call<{ DeletedCount: number }>("DeleteRecords", { ProjectId: projectId, RecordIds: ids.slice(i, i + DELETE_BATCH) });
    done += r.DeletedCount;
    progress({ done: Math.min(i + DELETE_BATCH, ids.length), total: ids.length });
  }
  return done;
}

/**
 * deleteMatching deletes the records a search matches, at most total of
 * them (what the person confirmed: records that arrive meanwhile are not
 * taken beyond that): it reads the newest page, deletes it, and again, until
 * total are gone or nothing matches. It answers how many were deleted.
 */
export async function deleteMatching(body: Record<string, unknown>, total: number, progress: (p: Progress) => void): Promise<number> {
  let done = 0;
  while (done < total) {
    const page = await call<DescribeRecordsResponse>("DescribeRecords", { ...body, Offset: 0, Limit: Math.min(DELETE_BATCH, total - done) });
    if (page.RecordSet.length === 0) break;
    const r = await call<{ DeletedCount: number }>("DeleteRecords", { ProjectId: body.ProjectId, RecordIds: page.RecordSet.map((x) => x.RecordId) });
    // Nothing deleted (another person deleted them first, say) would loop forever.
    if (r.DeletedCount === 0) break;
    done += r.DeletedCount;
    progress({ done, total });
  }
  return done;
}

/** BulkDelete deletes the selected records, or all a search matches, after a confirmation, showing progress. */
export function BulkDelete(props: { projectId: string; body: Record<string, unknown>; total: number; selected: string[]; onSelectPage(): void; onClear(): void;
  onStart?(): void; onDone(): void }) {
  // What the person is asked to confirm, with the count they see: the search's total may grow meanwhile.
  const [confirm, setConfirm] = useState<{ what: "selected" | "matching"; count: number } | null>(null);
  const [progress, setProgress] = useState<Progress | null>(null);
  const [note, setNote] = useState("");
  const { busy, error, run } = useAction();
  const n = props.selected.length;
  const go = (what: "selected" | "matching", total: number) =>
    run(async () => {
      setConfirm(null);
      setNote("");
      props.onStart?.();
      setProgress({ done: 0, total });
      try {
        const deleted = what === "selected" ? await deleteIds(props.projectId, props.selected, setProgress) : await deleteMatching(props.body, total, setProgress);
        setNote(`Deleted ${deleted} records.`);
      } finally {
        setProgress(null);
        props.onDone();
      }
    });
  return (
    <div className="buttons bulk" aria-label="Delete many records" role="group">
      <button type="button" className="secondary" disabled={busy} onClick={props.onSelectPage}>
        Select this page
      </button>
      {n > 0 && (
        <button type="button" className="secondary" disabled={busy} onClick={props.onClear}>
          Clear selection
        </button>
      )}
      {!confirm && (
        <>
          <button type="button" className="secondary" disabled={busy || n === 0} onClick={() => setConfirm({ what: "selected", count: n })}>
            Delete selected ({n})
          </button>
          <button type="button" className="secondary" disabled={busy || props.total === 0} onClick={() => setConfirm({ what: "matching", count: props.total })}>
            Delete all {props.total} matching
          </button>
        </>
      )}
      {confirm && (
        <>
          <span role="alert">
            Delete {confirm.count} records{confirm.what === "matching" ? " that match this search" : ""}, with their crops and frames? This cannot be
            undone.
          </span>
          <button type="button" className="danger" onClick={() => void go(confirm.what, confirm.count)}>
            Confirm deleting {confirm.count} records
          </button>
          <button type="button" className="secondary" onClick={() => setConfirm(null)}>
            Cancel
          </button>
        </>
      )}
      {progress && (
        <span role="status" data-testid="delete-progress">
          <progress max={progress.total} value={progress.done} aria-label="Records deleted" /> Deleted {progress.done} of {progress.total}…
        </span>
      )}
      {(error || note) && !progress && (
        <span className={error ? "form-error" : "muted"} role="status" data-testid="delete-note">
          {error || note}
        </span>
      )}
    </div>
  );
}

/** Box is a box in a frame's pixels: left, top, width, height. */
export type Box = [number, number, number, number];

function isBox(v: unknown): v is Box {
  return Array.isArray(v) && v.length === 4 && v.every((x) => typeof x === "number" && Number.isFinite(x)) && (v[2] as number) > 0 && (v[3] as number) > 0;
}

/** boxesOf reads the boxes a record's data holds: Box, or Boxes, or the box of each item of Objects. */
export function boxesOf(data: unknown): Box[] {
  const d = (data ?? {}) as Record<string, unknown>;
  const one = d.Box ?? d.box;
  if (isBox(one)) return [one];
  const many = d.Boxes ?? d.boxes;
  if (Array.isArray(many)) return many.filter(isBox);
  const objs = d.Objects ?? d.objects;
  if (Array.isArray(objs)) return objs.map((o) => (o as Record<string, unknown> | null)?.Box ?? (o as Record<string, unknown> | null)?.box).filter(isBox);
  return [];
}

/** FrameView draws a record's boxes over the frame it was found in, scaled with the picture. */
export function FrameView(props: { url: string; boxes: Box[]; label: string }) {
  const [size, setSize] = useState<{ w: number; h: number } | null>(null);
  return (
    <figure className="frame">
      <div className="frame-box">
        <img src={props.url} alt={`frame of ${props.label}`} data-testid="record-frame"
          onLoad={(e) => setSize({ w: e.currentTarget.naturalWidth, h: e.currentTarget.naturalHeight })} />
        {size && (
          <svg className="frame-overlay" viewBox={`0 0 ${size.w} ${size.h}`} preserveAspectRatio="none" aria-hidden="true" data-testid="record-boxes">
            {props.boxes.map((b, i) => (
              <rect key={i} x={b[0]} y={b[1]} width={b[2]} height={b[3]} data-testid="record-box" vectorEffect="non-scaling-stroke" />
            ))}
          </svg>
        )}
      </div>
      <figcaption className="muted small">
        The frame, with {props.boxes.length === 1 ? "the box" : `${props.boxes.length} boxes`} the record holds.
      </figcaption>
    </figure>
  );
}

function RecordDetail(props: { id: string }) {
  const s = useSession();
  const projectId = s.project?.ProjectId ?? "";
  const [record, setRecord] = useState<RecordInfo | null>(null);
  const [error, setError] = useState("");
  const [names] = useNames(projectId);
  useLoad(
    () => call<{ Record: RecordInfo }>("DescribeRecord", { ProjectId: projectId, RecordId: props.id }),
    (r) => setRecord(r.Record),
    (e) => setError(describe(e)),
    [projectId, props.id],
  );
  const back = withQuery({ record: undefined });
  const frame = record ? objectUrl(record, frameKey(record)) : undefined;
  const others = record ? record.ObjectKeys.map((k, i) => ({ key: k, url: record.ObjectUrls[i] ?? "" })).filter((o) => o.key !== frameKey(record)) : [];
  return (
    <section aria-labelledby="page-title">
      <p>
        <Link to={back}>← All records</Link>
      </p>
      <PageHead title={`Record ${props.id}`} />
      <ErrorLine error={error} />
      {record && (
        <>
          <dl className="facts card">
            <dt>Time</dt>
            <dd>{record.Time}</dd>
            <dt>Type</dt>
            <dd>{record.Type}</dd>
            <dt>Task</dt>
            <dd>
              <Link to={withQuery({ task: record.TaskId, record: undefined }, "/tasks")}>{nameOf(names.tasks.map((t) => ({ id: t.TaskId, name: t.Name })), record.TaskId)}</Link>
            </dd>
            <dt>Device</dt>
            <dd>{nameOf(names.devices.map((d) => ({ id: d.DeviceId, name: d.Name })), record.DeviceId)}</dd>
          </dl>
          <div className="images">
            {frame ? (
              <FrameView url={frame} boxes={boxesOf(record.Data)} label={`record ${record.RecordId}`} />
            ) : (
              <p className="muted" data-testid="no-frame">
                This record holds no frame: the flow that stored it kept only {others.length ? "the crop" : "its data"} (store the frame in a field
                named Image to see the box on it).
              </p>
            )}
            {others.map((o) => (
              <figure key={o.key}>
                <img src={sameOrigin(o.url)} alt={`object ${o.key}`} data-testid="record-image" />
                <figcaption className="muted small">{o.key}</figcaption>
              </figure>
            ))}
          </div>
          {can(s, "DescribeTrace") && (
            <>
              <h2>Trace</h2>
              <TraceWaterfall recordId={record.RecordId} />
            </>
          )}
          <pre className="json card" data-testid="record-json">
            {JSON.stringify({ ...record, ObjectUrls: undefined }, null, 2)}
          </pre>
          {can(s, "DeleteRecords") && (
            <div className="row-actions start">
              <ConfirmDelete name={`record ${record.RecordId}`} action="DeleteRecords" body={{ ProjectId: projectId, RecordIds: [record.RecordId] }}
                onDeleted={() => navigate(back)} />
            </div>
          )}
        </>
      )}
    </section>
  );
}
