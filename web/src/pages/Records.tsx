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
import { Link } from "../Layout";
import { navigate, useRoute, withQuery } from "../router";
import { can, useSession } from "../session";
import { utcTime } from "../time";
import type { Device, DescribeRecordsResponse, RecordInfo, TaskInfo } from "../types";
import { useAction } from "../useAction";
import { useLoad } from "../useLoad";
import { usePolled } from "../usePoll";

const REFRESH_MS = 5000;
/** EXPORT_CAP is the most rows an export reads, page by page. */
export const EXPORT_CAP = 10000;
const EXPORT_PAGE = 100;
const COLUMNS = [{ label: "Crop" }, { label: "Time" }, { label: "Type" }, { label: "Task", wide: true }, { label: "Device", wide: true }];
const FIELDS = ["TaskIds", "DeviceIds", "Types", "StartTime", "EndTime"] as const;

/** Search is a records search as the URL holds it: ids, a type, and local date-times. */
export interface Search {
  task: string;
  device: string;
  type: string;
  from: string;
  to: string;
}

function searchOf(q: URLSearchParams): Search {
  return { task: q.get("task") ?? "", device: q.get("device") ?? "", type: q.get("type") ?? "", from: q.get("from") ?? "", to: q.get("to") ?? "" };
}

/** searchBody turns a search into DescribeRecords' filters; a time the browser cannot read goes as typed, for the server to name. */
export function searchBody(projectId: string, s: Search): Record<string, unknown> {
  const b: Record<string, unknown> = { ProjectId: projectId };
  if (s.task) b.TaskIds = [s.task];
  if (s.device) b.DeviceIds = [s.device];
  if (s.type) b.Types = [s.type];
  if (s.from) b.StartTime = utcTime(s.from);
  if (s.to) b.EndTime = utcTime(s.to);
  return b;
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

function RecordList(props: { search: Search; offset: number }) {
  const s = useSession();
  const projectId = s.project?.ProjectId ?? "";
  const { search, offset } = props;
  const body = searchBody(projectId, search);
  const key = JSON.stringify(body);
  const [errors, setErrors] = useState<FormErrors>(noErrors);
  const { value: list, error, reload } = usePolled(
    async () => {
      try {
        const r = await call<DescribeRecordsResponse>("DescribeRecords", { ...body, Offset: offset, Limit: PAGE });
        setErrors(noErrors);
        return r;
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
  return (
    <section aria-labelledby="page-title">
      <PageHead title="Records" />
      <SearchForm key={JSON.stringify(search)} projectId={projectId} search={search} errors={errors} />
      <Export body={body} />
      <ErrorLine error={fieldError ? undefined : error} />
      <ListTable caption={`Records of project ${projectId}`} columns={COLUMNS} empty="No records match." isEmpty={list?.RecordSet.length === 0}>
        {list?.RecordSet.map((r) => (
          <tr key={r.RecordId} data-record={r.RecordId} data-type={r.Type}>
            <td>
              <Thumbnail record={r} />
            </td>
            <th scope="row">
              <Link to={withQuery({ record: r.RecordId })}>{r.Time}</Link>
            </th>
            <td>{r.Type}</td>
            <td className="wide-only">{r.TaskId}</td>
            <td className="wide-only">{r.DeviceId}</td>
            <td>
              <div className="row-actions">
                {can(s, "DeleteRecords") && (
                  <ConfirmDelete name={`record ${r.RecordId}`} action="DeleteRecords" body={{ ProjectId: projectId, RecordIds: [r.RecordId] }}
                    onDeleted={reload} />
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

function Thumbnail(props: { record: RecordInfo }) {
  const url = props.record.ObjectUrls[0];
  if (!url) return <span className="muted small">none</span>;
  return <img className="thumb" src={sameOrigin(url)} alt={`${props.record.Type} ${props.record.RecordId}`} loading="lazy" />;
}

function SearchForm(props: { projectId: string; search: Search; errors: FormErrors }) {
  const [form, setForm] = useState<Search>(props.search);
  const [tasks, setTasks] = useState<TaskInfo[]>([]);
  const [devices, setDevices] = useState<Device[]>([]);
  const [error, setError] = useState("");
  useLoad(
    () => Promise.all([
      call<{ TaskSet: TaskInfo[] }>("DescribeTasks", { ProjectId: props.projectId, Limit: 100 }),
      call<{ DeviceSet: Device[] }>("DescribeDevices", { ProjectId: props.projectId, Limit: 100 }),
    ]),
    ([t, d]) => {
      setTasks(t.TaskSet);
      setDevices(d.DeviceSet);
    },
    (e) => setError(describe(e)),
    [props.projectId],
  );
  const set = (k: keyof Search) => (v: string) => setForm((f) => ({ ...f, [k]: v }));
  function submit(e: FormEvent) {
    e.preventDefault();
    navigate(withQuery({ ...form, offset: undefined }));
  }
  const f = props.errors.fields;
  const name = (list: { id: string; name: string }[], id: string) => list.find((x) => x.id === id)?.name ?? id;
  const taskList = tasks.map((t) => ({ id: t.TaskId, name: t.Name }));
  const deviceList = devices.map((d) => ({ id: d.DeviceId, name: d.Name }));
  return (
    <form className="card" onSubmit={submit} aria-label="Search records" noValidate>
      <ErrorLine error={error} />
      <div className="form-grid">
        <Field label="Task" name="TaskIds" value={form.task} onChange={set("task")} error={f.TaskIds} options={["", ...taskList.map((t) => t.id)]}
          hint={form.task ? name(taskList, form.task) : "Any task."} />
        <Field label="Device" name="DeviceIds" value={form.device} onChange={set("device")} error={f.DeviceIds}
          options={["", ...deviceList.map((d) => d.id)]} hint={form.device ? name(deviceList, form.device) : "Any device."} />
        <Field label="Type" name="Types" value={form.type} onChange={set("type")} error={f.Types} hint="e.g. face; empty: any." />
        <Field label="From" name="StartTime" type="datetime-local" value={form.from} onChange={set("from")} error={f.StartTime} />
        <Field label="Until" name="EndTime" type="datetime-local" value={form.to} onChange={set("to")} error={f.EndTime} />
      </div>
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

function RecordDetail(props: { id: string }) {
  const s = useSession();
  const projectId = s.project?.ProjectId ?? "";
  const [record, setRecord] = useState<RecordInfo | null>(null);
  const [error, setError] = useState("");
  useLoad(
    () => call<{ Record: RecordInfo }>("DescribeRecord", { ProjectId: projectId, RecordId: props.id }),
    (r) => setRecord(r.Record),
    (e) => setError(describe(e)),
    [projectId, props.id],
  );
  const back = withQuery({ record: undefined });
  return (
    <section aria-labelledby="page-title">
      <p>
        <Link to={back}>← All records</Link>
      </p>
      <PageHead title={`Record ${props.id}`} />
      <ErrorLine error={error} />
      {record && (
        <>
          <div className="images">
            {record.ObjectUrls.map((u, i) => (
              <figure key={u}>
                <img src={sameOrigin(u)} alt={`object ${record.ObjectKeys[i] ?? i}`} data-testid="record-image" />
                <figcaption className="muted small">{record.ObjectKeys[i]}</figcaption>
              </figure>
            ))}
          </div>
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
