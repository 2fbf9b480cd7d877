import { useState } from "react";
import { call } from "../api";
import { ErrorLine } from "../components/ListTable";
import { describe } from "../errors";
import { Link } from "../Layout";
import { can, useSession } from "../session";
import type { Session } from "../session";
import type { DescribeAlgorithmsResponse, Device, Instance } from "../types";
import { usePoll } from "../usePoll";

const REFRESH_MS = 5000;
/** SUBSCRIPTIONS is how many subscriptions the overview asks the lag of (one call each). */
export const SUBSCRIPTIONS = 20;
/** ERRORS is how many recent errors the overview lists. */
export const ERRORS = 10;

/** TaskCounters is an active task in DescribeTaskOverview's answer. */
export interface TaskCounters {
  TaskId: string;
  Name: string;
  Status: string;
  NodeId: string;
  FpsIn: number;
  FpsOut: number;
  Received: number;
  Dropped: number;
  Failed: number;
  Records: number;
  LastError: string;
  UpdatedTime: string;
}

/** TaskErrorEvent is a task's failure event. */
export interface TaskErrorEvent {
  TaskId: string;
  TaskName: string;
  Time: string;
  Type: string;
  NodeId: string;
  Message: string;
}

/** TaskOverview is DescribeTaskOverview's answer. */
export interface TaskOverview {
  TotalCount: number;
  StatusSet: { Status: string; Count: number }[];
  ActiveCount: number;
  TaskSet: TaskCounters[];
  ErrorSet: TaskErrorEvent[];
}

/** SubscriptionLag is a subscription with what DescribeSubscriptionStats says of it. */
export interface SubscriptionLag {
  SubscriptionId: string;
  Name: string;
  Channel: string;
  Status: string;
  Lag: number;
  DeadLetterCount: number;
  LastError: string;
  LastErrorTime: string;
}

/** Numbers is everything the overview shows; a part the person may not read stays undefined. */
export interface Numbers {
  tasks?: TaskOverview;
  devicesOnline?: number;
  devicesOffline?: number;
  offline?: Device[];
  instancesReady?: number;
  instancesAll?: number;
  subscriptions?: SubscriptionLag[];
  subscriptionsTotal?: number;
}

/** pageLink is the URL of a page of the project, with its query. */
export function pageLink(path: string, projectId: string, query: Record<string, string> = {}): string {
  return `${path}?${new URLSearchParams({ project: projectId, ...query }).toString()}`;
}

/** statusCount is how many tasks are in a state. */
export function statusCount(t: TaskOverview | undefined, status: string): number | undefined {
  if (!t) return undefined;
  return t.StatusSet.find((s) => s.Status === status)?.Count ?? 0;
}

/** ErrorItem is one line of the recent errors: when (if known), what, the message and where it is explained. */
export interface ErrorItem {
  time: string;
  what: string;
  message: string;
  link: string;
}

/**
 * recentErrors gathers what went wrong, newest first: tasks' failure events
 * and last errors, offline devices' reasons, subscriptions' last delivery
 * errors.
 */
export function recentErrors(n: Numbers, projectId: string, max = ERRORS): ErrorItem[] {
  const out: ErrorItem[] = [];
  for (const e of n.tasks?.ErrorSet ?? []) {
    out.push({ time: e.Time, what: `Task ${e.TaskName}`, message: `${e.Type.replace("_", " ")}${e.Message ? `: ${e.Message}` : ""}`,
      link: pageLink("/tasks", projectId, { task: e.TaskId }) });
  }
  for (const t of n.tasks?.TaskSet ?? []) {
    if (t.LastError) out.push({ time: t.UpdatedTime, what: `Task ${t.Name}`, message: t.LastError, link: pageLink("/tasks", projectId, { task: t.TaskId }) });
  }
  for (const d of n.offline ?? []) {
    out.push({ time: "", what: `Device ${d.Name}`, message: `offline${d.Reason ? `: ${d.Reason}` : ""}${d.LastError ? ` (${d.LastError})` : ""}`,
      link: pageLink("/devices", projectId, { device: d.DeviceId }) });
  }
  for (const s of n.subscriptions ?? []) {
    if (s.LastError) out.push({ time: s.LastErrorTime, what: `Subscription ${s.Name}`, message: s.LastError, link: pageLink("/subscriptions", projectId) });
  }
  // Newest first; the undated (a device's state now) after the dated.
  out.sort((a, b) => (b.time || "").localeCompare(a.time || ""));
  return out.slice(0, max);
}

async function count(action: string, projectId: string, status: string): Promise<number> {
  const r = await call<{ TotalCount: number }>(action, { ProjectId: projectId, Filters: [{ Name: "Status", Values: [status] }], Limit: 1 });
  return r.TotalCount;
}

async function instances(projectId: string): Promise<[number, number]> {
  const algos = await call<DescribeAlgorithmsResponse>("DescribeAlgorithms", { ProjectId: projectId, Limit: 100 });
  const sets = await Promise.all(
    algos.AlgorithmSet.map((a) => call<{ InstanceSet: Instance[] }>("DescribeAlgorithmInstances", { AlgorithmId: a.AlgorithmId })),
  );
  const all = sets.flatMap((s) => s.InstanceSet);
  return [all.filter((i) => i.Status === "ready").length, all.length];
}

async function subscriptions(projectId: string): Promise<[SubscriptionLag[], number]> {
  const list = await call<{ TotalCount: number; SubscriptionSet: { SubscriptionId: string; Name: string; Channel: string; Status: string }[] }>(
    "DescribeSubscriptions", { ProjectId: projectId, Limit: SUBSCRIPTIONS });
  const stats = await Promise.all(
    list.SubscriptionSet.map((s) =>
      call<Omit<SubscriptionLag, "Name" | "Channel">>("DescribeSubscriptionStats", { ProjectId: projectId, SubscriptionId: s.SubscriptionId })
        // A subscription deleted meanwhile has no stats: it is left out.
        .catch(() => undefined),
    ),
  );
  const rows: SubscriptionLag[] = [];
  list.SubscriptionSet.forEach((s, i) => {
    const st = stats[i];
    if (st) rows.push({ ...st, SubscriptionId: s.SubscriptionId, Name: s.Name, Channel: s.Channel, Status: st.Status || s.Status });
  });
  return [rows, list.TotalCount];
}

/** load reads the parts of the overview the person may read, all at once. */
export async function load(s: Session, projectId: string): Promise<Numbers> {
  const n: Numbers = {};
  const jobs: Promise<void>[] = [];
  if (can(s, "DescribeTaskOverview")) {
    jobs.push(call<TaskOverview>("DescribeTaskOverview", { ProjectId: projectId, Limit: 20, ErrorLimit: ERRORS }).then((t) => void (n.tasks = t)));
  }
  if (can(s, "DescribeDevices")) {
    jobs.push(count("DescribeDevices", projectId, "online").then((c) => void (n.devicesOnline = c)));
    jobs.push(
      call<{ TotalCount: number; DeviceSet: Device[] }>("DescribeDevices", { ProjectId: projectId, Filters: [{ Name: "Status", Values: ["offline"] }], Limit: 5 })
        .then((r) => void ((n.devicesOffline = r.TotalCount), (n.offline = r.DeviceSet))),
    );
  }
  if (can(s, "DescribeAlgorithms") && can(s, "DescribeAlgorithmInstances")) {
    jobs.push(instances(projectId).then(([ready, all]) => void ((n.instancesReady = ready), (n.instancesAll = all))));
  }
  if (can(s, "DescribeSubscriptions") && can(s, "DescribeSubscriptionStats")) {
    jobs.push(subscriptions(projectId).then(([rows, total]) => void ((n.subscriptions = rows), (n.subscriptionsTotal = total))));
  }
  await Promise.all(jobs);
  return n;
}

function Stat(props: { label: string; value: number | undefined; tone?: "bad" | "good"; to: string }) {
  return (
    <Link to={props.to} className={`stat stat-link ${props.value ? (props.tone ?? "") : ""}`}>
      <div className="stat-value">{props.value ?? "—"}</div>
      <div className="stat-label">{props.label}</div>
    </Link>
  );
}

function fps(n: number): string {
  return n.toFixed(1);
}

/** Overview shows the project's tasks, devices, algorithm instances, subscriptions and recent errors, refreshed live. */
export function Overview() {
  const s = useSession();
  const projectId = s.project?.ProjectId ?? "";
  const [n, setN] = useState<Numbers>({});
  const [error, setError] = useState("");
  const [updated, setUpdated] = useState<Date | null>(null);

  usePoll(
    async (signal) => {
      try {
        const v = await load(s, projectId);
        if (signal.stopped) return true;
        setN(v);
        setError("");
        setUpdated(new Date());
        return true;
      } catch (e) {
        if (!signal.stopped) setError(describe(e));
        return false;
      }
    },
    REFRESH_MS,
    [projectId],
  );

  const link = (path: string, query: Record<string, string> = {}) => pageLink(path, projectId, query);
  const lag = n.subscriptions?.reduce((sum, x) => sum + x.Lag, 0);
  const errors = recentErrors(n, projectId);
  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title">Overview</h1>
      <ErrorLine error={error} />
      <div className="stats" data-testid="overview-stats">
        <Stat label="Tasks running" value={statusCount(n.tasks, "Running")} tone="good" to={link("/tasks", { status: "Running" })} />
        <Stat label="Tasks failed" value={statusCount(n.tasks, "Failed")} tone="bad" to={link("/tasks", { status: "Failed" })} />
        <Stat label="Devices online" value={n.devicesOnline} tone="good" to={link("/devices")} />
        <Stat label="Devices offline" value={n.devicesOffline} tone="bad" to={link("/devices")} />
        <Stat label="Algorithm instances ready" value={n.instancesReady} tone="good" to={link("/algorithms")} />
        <Stat label="Algorithm instances" value={n.instancesAll} to={link("/algorithms")} />
        <Stat label="Subscription lag (events)" value={lag} tone="bad" to={link("/subscriptions")} />
      </div>
      <p className="muted small" aria-live="polite">
        {updated ? `Updated ${updated.toLocaleTimeString()}; refreshed every ${REFRESH_MS / 1000} s while this tab is shown.` : "Loading…"}
      </p>

      {n.tasks && (
        <>
          <h2 className="section-title">Active tasks</h2>
          <div className="table-wrap">
            <table data-testid="overview-tasks">
              <caption className="visually-hidden">Active tasks with their frame rates and drops</caption>
              <thead>
                <tr>
                  <th scope="col">Task</th>
                  <th scope="col">Status</th>
                  <th scope="col">Fps in</th>
                  <th scope="col">Fps out</th>
                  <th scope="col">Dropped</th>
                  <th scope="col" className="wide-only">Failed</th>
                  <th scope="col" className="wide-only">Records</th>
                </tr>
              </thead>
              <tbody>
                {n.tasks.TaskSet.map((t) => (
                  <tr key={t.TaskId} data-task={t.Name}>
                    <th scope="row">
                      <Link to={link("/tasks", { task: t.TaskId })}>{t.Name}</Link>
                    </th>
                    <td>
                      <span className={`status status-${t.Status}`}>{t.Status}</span>
                    </td>
                    <td data-col="fps-in">{fps(t.FpsIn)}</td>
                    <td data-col="fps-out">{fps(t.FpsOut)}</td>
                    <td data-col="dropped" className={t.Dropped ? "form-error" : ""}>
                      {t.Dropped}
                    </td>
                    <td className={`wide-only ${t.Failed ? "form-error" : ""}`}>{t.Failed}</td>
                    <td className="wide-only">
                      <Link to={link("/records", { task: t.TaskId })}>{t.Records}</Link>
                    </td>
                  </tr>
                ))}
                {n.tasks.TaskSet.length === 0 && (
                  <tr>
                    <td colSpan={7}>No task is running, starting or failed.</td>
                  </tr>
                )}
              </tbody>
            </table>
          </div>
          {n.tasks.ActiveCount > n.tasks.TaskSet.length && (
            <p className="muted small">
              The newest {n.tasks.TaskSet.length} of {n.tasks.ActiveCount} active tasks; <Link to={link("/tasks")}>all tasks</Link>.
            </p>
          )}
        </>
      )}

      {n.subscriptions && (
        <>
          <h2 className="section-title">Subscriptions</h2>
          <div className="table-wrap">
            <table data-testid="overview-subscriptions">
              <caption className="visually-hidden">Subscriptions with their lag</caption>
              <thead>
                <tr>
                  <th scope="col">Subscription</th>
                  <th scope="col" className="wide-only">Channel</th>
                  <th scope="col">Status</th>
                  <th scope="col">Lag</th>
                  <th scope="col">Dead letters</th>
                </tr>
              </thead>
              <tbody>
                {n.subscriptions.map((x) => (
                  <tr key={x.SubscriptionId} data-subscription={x.Name}>
                    <th scope="row">
                      <Link to={link("/subscriptions")}>{x.Name}</Link>
                    </th>
                    <td className="wide-only">{x.Channel}</td>
                    <td>
                      <span className="status">{x.Status}</span>
                    </td>
                    <td data-col="lag">{x.Lag}</td>
                    <td className={x.DeadLetterCount ? "form-error" : ""}>{x.DeadLetterCount}</td>
                  </tr>
                ))}
                {n.subscriptions.length === 0 && (
                  <tr>
                    <td colSpan={5}>No subscriptions.</td>
                  </tr>
                )}
              </tbody>
            </table>
          </div>
          {(n.subscriptionsTotal ?? 0) > n.subscriptions.length && (
            <p className="muted small">
              The newest {n.subscriptions.length} of {n.subscriptionsTotal}; <Link to={link("/subscriptions")}>all subscriptions</Link>.
            </p>
          )}
        </>
      )}

      <h2 className="section-title">Recent errors</h2>
      <ul className="events card" data-testid="overview-errors">
        {errors.map((e, i) => (
          <li key={i}>
            {e.time && <span className="muted small">{e.time} </span>}
            <Link to={e.link}>{e.what}</Link> <span className="form-error">{e.message}</span>
          </li>
        ))}
        {errors.length === 0 && <li>None.</li>}
      </ul>
    </section>
  );
}
