import { useState } from "react";
import type { FormEvent } from "react";
import { call } from "../api";
import { ConfirmDelete } from "../components/ConfirmDelete";
import { Field } from "../components/Field";
import { ErrorLine, ListTable } from "../components/ListTable";
import { closeForm, PageHead } from "../components/PageHead";
import { offsetOf, PAGE, Pager } from "../components/Pager";
import { ApiError } from "../api";
import { describe, formErrors, noErrors } from "../errors";
import type { FormErrors } from "../errors";
import { Link } from "../Layout";
import { navigate, useRoute, withQuery } from "../router";
import { can, useSession } from "../session";
import { MoveVersion } from "../components/MoveVersion";
import { TraceWaterfall } from "../components/TraceWaterfall";
import type { Device, Flow, FlowParameter, FlowVersion, NodeError, TaskEvent, TaskInfo, TaskSource, TaskStats } from "../types";
import { useLoad } from "../useLoad";
import { useAction } from "../useAction";
import { usePolled } from "../usePoll";
import { FormButtons } from "../components/FormButtons";

const REFRESH_MS = 5000;
const COLUMNS = [{ label: "Name" }, { label: "Status" }, { label: "Flow", wide: true }, { label: "Fps in / out", wide: true },
  { label: "Records", wide: true }];
const FIELDS = ["Name", "FlowId", "FlowVersion", "Sources", "Parameters", "Description"] as const;

interface Row {
  task: TaskInfo;
  stats: TaskStats | undefined;
}

// A task wants to run while it is placed or running; Stop applies then, Start otherwise.
const ACTIVE = new Set(["Pending", "Scheduled", "Running"]);

/** STATUSES are the states a task list can be narrowed to. */
export const STATUSES = ["Pending", "Scheduled", "Running", "Stopping", "Stopped", "Failed", "Completed"];

async function loadRows(projectId: string, offset: number, status: string): Promise<{ total: number; rows: Row[] }> {
  const body: Record<string, unknown> = { ProjectId: projectId, Offset: offset, Limit: PAGE };
  if (status) body.Filters = [{ Name: "Status", Values: [status] }];
  const r = await call<{ TotalCount: number; TaskSet: TaskInfo[] }>("DescribeTasks", body);
  // A task's counters are in its stats; a task deleted meanwhile has none.
  const stats = await Promise.all(
    r.TaskSet.map((t) => call<TaskStats>("DescribeTaskStats", { TaskId: t.TaskId }).catch(() => undefined)),
  );
  return { total: r.TotalCount, rows: r.TaskSet.map((task, i) => ({ task, stats: stats[i] })) };
}

/** Tasks lists the project's tasks page by page with their counters, creates, starts, stops and deletes them; ?task= shows one. */
export function Tasks() {
  const s = useSession();
  const route = useRoute();
  const projectId = s.project?.ProjectId ?? "";
  const taskId = route.query.get("task") ?? "";
  if (taskId) return <TaskDetail taskId={taskId} />;
  return (
    <TaskList projectId={projectId} offset={offsetOf(route.query)} status={route.query.get("status") ?? ""}
      adding={route.query.get("add") === "1" && can(s, "CreateTask")} />
  );
}

/** useFlowNames answers the project's flows' names by id (the first 100 flows). */
function useFlowNames(projectId: string): Record<string, string> {
  const [names, setNames] = useState<Record<string, string>>({});
  useLoad(
    () => call<{ FlowSet: Flow[] }>("DescribeFlows", { ProjectId: projectId, Limit: 100 }),
    (r) => setNames(Object.fromEntries(r.FlowSet.map((f) => [f.FlowId, f.Name]))),
    () => setNames({}), // without names the ids are shown
    [projectId],
  );
  return names;
}

function TaskList(props: { projectId: string; offset: number; status: string; adding: boolean }) {
  const s = useSession();
  const { projectId, offset, status, adding } = props;
  const { value: list, error, reload: refresh } = usePolled(() => loadRows(projectId, offset, status), REFRESH_MS, [projectId, offset, status]);
  const flows = useFlowNames(projectId);

  return (
    <section aria-labelledby="page-title">
      <PageHead title="Tasks" add={can(s, "CreateTask") && !adding && "Create task"} />
      {adding && <CreateTask projectId={projectId} onDone={closeForm(refresh)} />}
      <div className="filter-line">
        <Field label="Status" name="Status" value={status} options={[{ value: "", label: "any" }, ...STATUSES]}
          onChange={(v) => navigate(withQuery({ status: v, offset: undefined }))} />
      </div>
      <ErrorLine error={error} />
      <ListTable caption={`Tasks of project ${projectId}`} columns={COLUMNS} empty={status ? `No ${status} tasks.` : "No tasks yet."}
        isEmpty={list?.rows.length === 0}>
        {list?.rows.map((r) => <TaskRow key={r.task.TaskId} row={r} flowName={flows[r.task.FlowId]} onChanged={refresh} />)}
      </ListTable>
      <Pager label="Pages of tasks" offset={offset} total={list?.total ?? 0} />
    </section>
  );
}

function fps(n: number | undefined): string {
  return n === undefined ? "—" : n.toFixed(1);
}

function TaskStatus(props: { status: string; detail: string }) {
  return (
    <>
      <span className={`status status-${props.status || "unknown"}`} data-testid="task-status">
        {props.status || "unknown"}
      </span>
      {props.detail && <div className="muted small">{props.detail}</div>}
    </>
  );
}

/** StartStop starts a task that does not want to run and stops one that does. */
function StartStop(props: { task: TaskInfo; onChanged(): void }) {
  const s = useSession();
  const { busy, error, run } = useAction();
  const t = props.task;
  const active = ACTIVE.has(t.Status) || t.DesiredState === "Running";
  const action = active ? "StopTask" : "StartTask";
  if (!can(s, action)) return null;
  const go = () => run(async () => {
    await call(action, { TaskId: t.TaskId });
    props.onChanged();
  });
  const verb = active ? "Stop" : "Start";
  return (
    <>
      <button type="button" className="secondary" disabled={busy} onClick={() => void go()} aria-label={`${verb} ${t.Name}`}>
        {verb}
      </button>
      {error && (
        <div className="form-error" role="alert">
          {error}
        </div>
      )}
    </>
  );
}

function TaskRow(props: { row: Row; flowName: string | undefined; onChanged(): void }) {
  const s = useSession();
  const { task: t, stats } = props.row;
  return (
    <tr data-task={t.Name}>
      <th scope="row">
        <Link to={withQuery({ task: t.TaskId, offset: undefined, add: undefined })}>{t.Name}</Link>
      </th>
      <td>
        <TaskStatus status={t.Status} detail={stats?.LastError || t.Reason} />
      </td>
      <td className="wide-only" title={t.FlowId}>
        {props.flowName ?? t.FlowId} v{t.FlowVersion}
      </td>
      <td className="wide-only">
        {fps(stats?.FpsIn)} / {fps(stats?.FpsOut)}
      </td>
      <td className="wide-only">{stats?.Records ?? "—"}</td>
      <td>
        <div className="row-actions">
          <StartStop task={t} onChanged={props.onChanged} />
          {can(s, "DeleteTask") && !ACTIVE.has(t.Status) && (
            <ConfirmDelete name={t.Name} action="DeleteTask" body={{ TaskId: t.TaskId }} onDeleted={props.onChanged} />
          )}
        </div>
      </td>
    </tr>
  );
}

interface Detail {
  task: TaskInfo;
  stats: TaskStats;
  events: TaskEvent[];
}

function TaskDetail(props: { taskId: string }) {
  const { value: d, error, reload } = usePolled(
    async (): Promise<Detail> => {
      const [list, stats, events] = await Promise.all([
        call<{ TaskSet: TaskInfo[] }>("DescribeTasks", { TaskIds: [props.taskId], Limit: 1 }),
        call<TaskStats>("DescribeTaskStats", { TaskId: props.taskId }),
        call<{ EventSet: TaskEvent[] }>("DescribeTaskEvents", { TaskId: props.taskId, Limit: 20 }),
      ]);
      const task = list.TaskSet[0];
      if (!task) throw new Error(`no task ${props.taskId}`);
      return { task, stats, events: events.EventSet };
    },
    REFRESH_MS,
    [props.taskId],
  );
  const t = d?.task;
  const st = d?.stats;
  const flows = useFlowNames(t?.ProjectId ?? "");
  const [devices, setDevices] = useState<Record<string, string>>({});
  useLoad(
    () => (t ? call<{ DeviceSet: Device[] }>("DescribeDevices", { ProjectId: t.ProjectId, Limit: 100 }) : null),
    (r) => setDevices(Object.fromEntries(r.DeviceSet.map((x) => [x.DeviceId, x.Name]))),
    () => setDevices({}),
    [t?.ProjectId],
  );
  return (
    <section aria-labelledby="page-title">
      <p>
        <Link to={withQuery({ task: undefined })}>← All tasks</Link>
      </p>
      <div className="page-head">
        <h1 id="page-title">Task {t?.Name ?? props.taskId}</h1>
        {t && (
          <div className="row-actions">
            <StartStop task={t} onChanged={reload} />
          </div>
        )}
      </div>
      <ErrorLine error={error} />
      {t && st && (
        <>
          <dl className="facts card">
            <dt>Status</dt>
            <dd>
              <TaskStatus status={t.Status} detail={t.Reason} />
            </dd>
            <dt>Id</dt>
            <dd>{t.TaskId}</dd>
            <dt>Flow</dt>
            <dd title={t.FlowId} data-testid="task-flow">
              {flows[t.FlowId] ?? t.FlowId} v{t.FlowVersion}
              {t.LatestFlowVersion !== undefined && t.LatestFlowVersion > t.FlowVersion && <span className="muted small"> (latest: v{t.LatestFlowVersion})</span>}{" "}
              <MoveVersion task={t} onMoved={reload} />
            </dd>
            <dt>Sources</dt>
            <dd>{t.Sources.map((x) => `${x.Type} ${(x.Type === "device" && devices[x.Id]) || x.Id}`).join(", ")}</dd>
            <dt>Records</dt>
            <dd>
              <Link to={withQuery({ task: t.TaskId }, "/records")}>the records it stored</Link>
            </dd>
            <dt>Parameters</dt>
            <dd>
              <code>{JSON.stringify(t.Parameters ?? {})}</code>
            </dd>
            <dt>Worker</dt>
            <dd>{st.NodeId || "—"}</dd>
            <dt>Running since</dt>
            <dd>{st.RunningSince || "—"}</dd>
            <dt>Last error</dt>
            <dd className={st.LastError ? "form-error" : ""}>{st.LastError || "none"}</dd>
          </dl>
          <div className="stats" data-testid="task-stats">
            <Counter label="Fps in" value={fps(st.FpsIn)} />
            <Counter label="Fps out" value={fps(st.FpsOut)} />
            <Counter label="Frames received" value={st.Received} />
            <Counter label="Completed" value={st.Completed} />
            <Counter label="Dropped" value={st.Dropped} />
            <Counter label="Failed" value={st.Failed} />
            <Counter label="Records" value={st.Records} />
            <Counter label="Events" value={st.Events} />
          </div>
          <h2 className="section-title">Nodes</h2>
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Node</th>
                  <th scope="col">Runs</th>
                  <th scope="col">Errors</th>
                  <th scope="col">p50 ms</th>
                  <th scope="col">p99 ms</th>
                </tr>
              </thead>
              <tbody>
                {(st.NodeLatency ?? []).map((n) => (
                  <tr key={n.NodeId}>
                    <th scope="row">{n.NodeId}</th>
                    <td>{n.Count}</td>
                    <td className={n.Errors ? "form-error" : ""}>{n.Errors}</td>
                    <td>{n.P50Ms.toFixed(1)}</td>
                    <td>{n.P99Ms.toFixed(1)}</td>
                  </tr>
                ))}
                {(st.NodeLatency ?? []).length === 0 && (
                  <tr>
                    <td colSpan={5}>No node has run yet.</td>
                  </tr>
                )}
              </tbody>
            </table>
          </div>
          <NodeErrors errors={st.NodeErrors ?? []} />
          <h2 className="section-title">Recent events</h2>
          <ul className="events">
            {d.events.map((e, i) => (
              <li key={i}>
                <span className="muted small">{e.Time}</span> <strong>{e.Type}</strong> {e.NodeId} {e.Message}
              </li>
            ))}
            {d.events.length === 0 && <li>No events.</li>}
          </ul>
        </>
      )}
    </section>
  );
}

/**
 * NodeErrors lists the last failures of the flow's nodes; Trace on one opens
 * its message's trace waterfall below the list, at the span that failed. The
 * chosen error stays open while newer errors push it out of the list.
 */
export function NodeErrors(props: { errors: NodeError[] }) {
  const s = useSession();
  const [chosen, setChosen] = useState<NodeError | null>(null);
  if (props.errors.length === 0 && !chosen) return null;
  const traces = can(s, "DescribeTrace");
  const same = (a: NodeError | null, b: NodeError) => a !== null && a.Time === b.Time && a.NodeId === b.NodeId && a.TraceId === b.TraceId;
  return (
    <>
      <h2 className="section-title">Node errors</h2>
      <ul className="events node-errors">
        {props.errors.map((e) => (
          <li key={`${e.Time}:${e.NodeId}:${e.TraceId ?? ""}`} data-testid="node-error" data-node={e.NodeId}>
            <span className="muted small">{e.Time}</span> <strong>{e.NodeId}</strong> <span className="form-error">{e.Message}</span>{" "}
            {traces && e.TraceId && (
              <button type="button" className="secondary" aria-pressed={same(chosen, e)} onClick={() => setChosen(same(chosen, e) ? null : e)}
                aria-label={`Trace of the ${e.NodeId} error at ${e.Time}`}>
                Trace
              </button>
            )}
            {traces && !e.TraceId && <span className="muted small">(no trace: tracing is off on the worker)</span>}
          </li>
        ))}
      </ul>
      {chosen?.TraceId && (
        <div className="node-error-trace" data-testid="node-error-trace">
          <div className="page-head">
            <h3>
              Trace of the <code>{chosen.NodeId}</code> error at {chosen.Time}
            </h3>
            <button type="button" className="secondary" onClick={() => setChosen(null)}>
              Close trace
            </button>
          </div>
          <p className="form-error">{chosen.Message}</p>
          <TraceWaterfall traceId={chosen.TraceId} />
        </div>
      )}
    </>
  );
}

function Counter(props: { label: string; value: string | number }) {
  return (
    <div className="stat">
      <div className="stat-value">{props.value}</div>
      <div className="stat-label">{props.label}</div>
    </div>
  );
}

/** declaredParameters reads the parameters a flow document declares. */
export function declaredParameters(doc: unknown): Record<string, FlowParameter> {
  const p = (doc as { parameters?: unknown } | null)?.parameters;
  return p && typeof p === "object" ? (p as Record<string, FlowParameter>) : {};
}

/** parameterValue turns what was typed for a parameter into the JSON its type asks for; the server checks it. */
export function parameterValue(type: string | undefined, text: string): unknown {
  const n = Number(text);
  if ((type === "integer" || type === "number") && text.trim() !== "" && !Number.isNaN(n)) return n;
  if (type === "boolean" && (text === "true" || text === "false")) return text === "true";
  if (type === "object" || type === "array") {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  return text;
}

interface Form {
  Name: string;
  Description: string;
  FlowId: string;
  FlowVersion: string;
  /** Sources are the chosen devices and uploads. */
  Sources: TaskSource[];
  /** Topics are bus topics, one per line or separated by commas or spaces. */
  Topics: string;
  Parameters: Record<string, string>;
  Start: boolean;
}

/** Upload is a completed upload a task can read (DescribeUploads). */
interface Upload {
  UploadId: string;
  Name: string;
  Size: number;
  ContentType: string;
  State: string;
}

/** sourcesOf is the Sources a task is created with: the chosen devices and uploads, then each topic. */
export function sourcesOf(chosen: readonly TaskSource[], topics: string): TaskSource[] {
  const t = topics.split(/[\s,]+/).filter(Boolean).map((id) => ({ Type: "topic", Id: id }));
  return [...chosen, ...t];
}

function SourceChecks(props: { legend: string; type: string; items: { id: string; label: string; note: string }[]; chosen: TaskSource[]; empty: string;
  onChange(chosen: TaskSource[]): void }) {
  const has = (id: string) => props.chosen.some((x) => x.Type === props.type && x.Id === id);
  return (
    <div className="source-kind">
      <div className="source-kind-title">{props.legend}</div>
      {props.items.length === 0 && <p className="muted small">{props.empty}</p>}
      {props.items.map((it) => (
        <label key={it.id} className="check">
          <input type="checkbox" name="Sources" value={`${props.type}:${it.id}`} checked={has(it.id)}
            onChange={(e) =>
              props.onChange(e.target.checked ? [...props.chosen, { Type: props.type, Id: it.id }] : props.chosen.filter((x) => !(x.Type === props.type && x.Id === it.id)))
            } />
          {it.label} <span className="muted small">{it.note}</span>
        </label>
      ))}
    </div>
  );
}

/** CreateTask is the form that binds a flow version to devices and parameters. */
export function CreateTask(props: { projectId: string; onDone(created: boolean): void }) {
  const [flows, setFlows] = useState<Flow[]>([]);
  const [versions, setVersions] = useState<FlowVersion[]>([]);
  const [params, setParams] = useState<Record<string, FlowParameter>>({});
  const [devices, setDevices] = useState<Device[]>([]);
  const [uploads, setUploads] = useState<Upload[] | null>(null);
  const [form, setForm] = useState<Form>({ Name: "", Description: "", FlowId: "", FlowVersion: "", Sources: [], Topics: "", Parameters: {}, Start: true });
  const [errors, setErrors] = useState<FormErrors>(noErrors);
  const [busy, setBusy] = useState(false);

  const failed = (e: unknown) => setErrors({ fields: {}, form: describe(e) });
  useLoad(
    () => Promise.all([
      call<{ FlowSet: Flow[] }>("DescribeFlows", { ProjectId: props.projectId, Limit: 100 }),
      call<{ DeviceSet: Device[] }>("DescribeDevices", { ProjectId: props.projectId, Limit: 100 }),
      // A person who may not list uploads chooses devices and topics only.
      call<{ UploadSet: Upload[] }>("DescribeUploads", { ProjectId: props.projectId, Limit: 100 }).catch((e: unknown) => {
        if (e instanceof ApiError && e.code === "AuthFailure.UnauthorizedOperation") return null;
        throw e;
      }),
    ]),
    ([f, d, u]) => {
      setFlows(f.FlowSet);
      setDevices(d.DeviceSet);
      setUploads(u ? u.UploadSet.filter((x) => x.State === "completed") : null);
      setForm((x) => ({ ...x, FlowId: x.FlowId || (f.FlowSet[0]?.FlowId ?? "") }));
    },
    failed,
    [props.projectId],
  );
  useLoad(
    () => (form.FlowId ? call<{ FlowVersionSet: FlowVersion[] }>("DescribeFlowVersions", { FlowId: form.FlowId, Limit: 100 }) : null),
    (r) => setVersions(r.FlowVersionSet),
    failed,
    [form.FlowId],
  );
  // The parameters the chosen version (or the latest) declares get a field each.
  useLoad(
    () => (form.FlowId ? call<FlowVersion>("DescribeFlowVersion", { FlowId: form.FlowId, Version: Number(form.FlowVersion) || 0 }) : null),
    (v) => setParams(declaredParameters(v.Document)),
    failed,
    [form.FlowId, form.FlowVersion],
  );

  const set = <K extends keyof Form>(k: K) => (v: Form[K]) => setForm((f) => ({ ...f, [k]: v }));
  const paramFields = Object.keys(params).map((n) => `Parameters.${n}`);

  async function save(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setErrors(noErrors);
    try {
      const parameters: Record<string, unknown> = {};
      for (const [name, text] of Object.entries(form.Parameters)) {
        if (text !== "" && name in params) parameters[name] = parameterValue(params[name]?.type, text);
      }
      const body: Record<string, unknown> = {
        ProjectId: props.projectId,
        Name: form.Name,
        FlowId: form.FlowId,
        Sources: sourcesOf(form.Sources, form.Topics),
        Parameters: parameters,
        Start: form.Start,
      };
      if (form.FlowVersion) body.FlowVersion = Number(form.FlowVersion);
      if (form.Description) body.Description = form.Description;
      await call("CreateTask", body);
      props.onDone(true);
    } catch (err) {
      setErrors(formErrors(err, [...FIELDS, ...paramFields]));
    } finally {
      setBusy(false);
    }
  }

  const flowOptions = flows.map((f) => ({ value: f.FlowId, label: f.Name }));
  const sourcesError = errors.fields.Sources;
  return (
    <form className="card" onSubmit={save} aria-labelledby="create-title" noValidate>
      <h2 id="create-title">Create a task</h2>
      <ErrorLine error={errors.form} />
      <div className="form-grid">
        <Field label="Name" name="Name" value={form.Name} onChange={set("Name")} error={errors.fields.Name} required />
        <Field label="Flow" name="FlowId" value={form.FlowId} onChange={(v) => setForm((f) => ({ ...f, FlowId: v, FlowVersion: "" }))}
          error={errors.fields.FlowId} options={flowOptions} hint={form.FlowId} />
        <Field label="Flow version" name="FlowVersion" value={form.FlowVersion} onChange={set("FlowVersion")}
          error={errors.fields.FlowVersion} options={["", ...versions.map((v) => String(v.Version))]} hint="Empty: the latest." />
        <Field label="Description" name="Description" value={form.Description} onChange={set("Description")}
          error={errors.fields.Description} />
      </div>
      <fieldset className={sourcesError ? "sources field-invalid" : "sources"} aria-describedby={sourcesError ? "sources-error" : undefined}>
        <legend>Sources</legend>
        <SourceChecks legend="Devices (live)" type="device" chosen={form.Sources} onChange={set("Sources")} empty="The project has no devices."
          items={devices.map((d) => ({ id: d.DeviceId, label: d.Name, note: d.Status }))} />
        {uploads && (
          <SourceChecks legend="Uploads (read once, then the task completes)" type="upload" chosen={form.Sources} onChange={set("Sources")}
            empty="No completed uploads in the project."
            items={uploads.map((u) => ({ id: u.UploadId, label: u.Name || u.UploadId, note: `${u.ContentType}, ${(u.Size / 1024).toFixed(0)} KiB` }))} />
        )}
        <Field label="Topics (another task's output, a data channel)" name="Topics" value={form.Topics} onChange={set("Topics")}
          hint="One or more bus topics, separated by spaces or commas; nothing on them is dropped." />
        {sourcesError && (
          <div className="field-error" id="sources-error" role="alert" data-field-error="Sources">
            {sourcesError}
          </div>
        )}
      </fieldset>
      {Object.keys(params).length > 0 && (
        <fieldset className="form-grid">
          <legend>Parameters</legend>
          {Object.entries(params).map(([name, p]) => (
            <Field key={name} label={name} name={`Parameters.${name}`} value={form.Parameters[name] ?? ""}
              onChange={(v) => setForm((f) => ({ ...f, Parameters: { ...f.Parameters, [name]: v } }))}
              error={errors.fields[`Parameters.${name}`]}
              hint={`${p.type ?? "any"}${p.default !== undefined ? `, default ${JSON.stringify(p.default)}` : ""}${p.description ? `: ${p.description}` : ""}`} />
          ))}
        </fieldset>
      )}
      {errors.fields.Parameters && (
        <div className="field-error" role="alert" data-field-error="Parameters">
          Parameters: {errors.fields.Parameters}
        </div>
      )}
      <label className="check">
        <input type="checkbox" checked={form.Start} onChange={(e) => set("Start")(e.target.checked)} /> Start it now
      </label>
      <FormButtons save="Save task" busy={busy} onCancel={() => props.onDone(false)} />
    </form>
  );
}
