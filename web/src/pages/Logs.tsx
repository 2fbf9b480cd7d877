import { useState } from "react";
import { call } from "../api";
import { Field } from "../components/Field";
import { ErrorLine, ListTable } from "../components/ListTable";
import { PageHead } from "../components/PageHead";
import { navigate, useRoute, withQuery } from "../router";
import { can, useSession } from "../session";
import { usePolled } from "../usePoll";

/** REFRESH_MS is how often the page reads the lines again while auto-refresh is on. */
export const REFRESH_MS = 5000;
/** LIMIT is how many lines, the newest, the page asks for. */
export const LIMIT = 200;
const LEVELS = ["debug", "info", "warn", "error"] as const;
const COLUMNS = [{ label: "Time", wide: true }, { label: "Level" }, { label: "Component" }, { label: "Message" }, { label: "Fields", wide: true }];

/** LogLine is a line as DescribeLogs answers it. */
export interface LogLine {
  Time: string;
  Level: string;
  Component: string;
  Message: string;
  Fields: string;
  /** Process names the process that logged the line (its worker name or host, and its targets). */
  Process?: string;
}

interface Logs {
  LogSet: LogLine[];
  ComponentSet: string[];
  /** ProcessSet names the processes whose lines were read: this one first, then every other that answered. */
  ProcessSet?: string[];
  UnansweredProcesses?: string[];
  Truncated: boolean;
}

/** logsBody turns the URL's search (component, process, level, contains) into DescribeLogs' request. */
export function logsBody(q: URLSearchParams): Record<string, unknown> {
  const b: Record<string, unknown> = { Limit: LIMIT };
  const component = q.get("component");
  const process = q.get("process");
  if (process) b.Process = process;
  const level = q.get("level");
  const contains = q.get("contains");
  if (component) b.Component = component;
  if (level && (LEVELS as readonly string[]).includes(level)) b.Level = level;
  if (contains) b.Contains = contains;
  return b;
}

/** levelClass is the status colour of a line's level. */
export function levelClass(level: string): string {
  if (level === "error") return "status-error";
  if (level === "warn") return "status-warn";
  return "status-online";
}

/** Logs is the platform admin's: the last lines each component of the server logged, newest first, refreshed every few seconds. */
export function Logs() {
  const s = useSession();
  if (!can(s, "DescribeLogs")) return <p role="alert">Only platform administrators read the server's logs.</p>;
  return <LogList />;
}

/** PAUSED_MS is the poll interval with auto-refresh off: in effect never (Refresh now still reads). */
const PAUSED_MS = 24 * 3600 * 1000;

function LogList() {
  const route = useRoute();
  const [auto, setAuto] = useState(true);
  const body = logsBody(route.query);
  const key = JSON.stringify(body);
  const { value, error, reload } = usePolled(() => call<Logs>("DescribeLogs", body), auto ? REFRESH_MS : PAUSED_MS, [key, auto]);
  const set = (k: string) => (v: string) => navigate(withQuery({ [k]: v || undefined }));
  const components = value?.ComponentSet ?? [];
  const processes = value?.ProcessSet ?? [];
  // With the platform's roles in one process, its name says nothing: shown only when there are several.
  const several = processes.length > 1 || Boolean(route.query.get("process"));
  return (
    <section aria-labelledby="page-title">
      <PageHead title="Logs" />
      <p className="muted small">
        The last lines the server's processes kept in memory (<code>--log.recent-lines</code> per component), newest first. Search a request's lines by its RequestId.
      </p>
      <form className="card" aria-label="Filter log lines" noValidate onSubmit={(e) => e.preventDefault()}>
        <div className="form-grid">
          <Field label="Component" name="Component" value={route.query.get("component") ?? ""} onChange={set("component")}
            options={[{ value: "", label: "every component" }, ...components.map((c) => ({ value: c, label: c }))]} />
          {several && (
            <Field label="Process" name="Process" value={route.query.get("process") ?? ""} onChange={set("process")}
              options={[{ value: "", label: "every process" }, ...processes.map((p) => ({ value: p, label: p }))]} />
          )}
          <Field label="Lowest level" name="Level" value={route.query.get("level") ?? ""} onChange={set("level")}
            options={[{ value: "", label: "info (default)" }, ...LEVELS.map((l) => ({ value: l, label: l }))]} />
          <Contains value={route.query.get("contains") ?? ""} />
        </div>
        <label className="check small">
          <input type="checkbox" checked={auto} onChange={(e) => setAuto(e.target.checked)} /> Refresh every {REFRESH_MS / 1000} s
        </label>
        <div className="buttons">
          <button type="button" onClick={reload}>Refresh now</button>
        </div>
      </form>
      <ErrorLine error={error} />
      {value?.Truncated && <p className="muted small">Only the newest lines fit in one answer: narrow the filters.</p>}
      {(value?.UnansweredProcesses ?? []).length > 0 && (
        <p className="form-error" role="status">
          Not answered in time, their lines are missing: {value?.UnansweredProcesses?.join(", ")}
        </p>
      )}
      <ListTable caption="Log lines, newest first" columns={COLUMNS} empty="No lines match." isEmpty={value?.LogSet.length === 0}>
        {value?.LogSet.map((l, i) => (
          <tr key={`${l.Time}-${i}`} data-level={l.Level}>
            <td className="wide-only small">{l.Time}</td>
            <td><span className={`status ${levelClass(l.Level)}`}>{l.Level}</span></td>
            <td>
              {l.Component}
              {several && l.Process && <div className="muted small" data-testid="line-process">{l.Process}</div>}
            </td>
            <td>{l.Message}</td>
            <td className="wide-only small detail"><code>{l.Fields}</code></td>
            <td />
          </tr>
        ))}
      </ListTable>
    </section>
  );
}

/** Contains is the text search, applied when submitted (not on every key). */
function Contains(props: { value: string }) {
  const [v, setV] = useState(props.value);
  return (
    <div>
      <Field label="Contains" name="Contains" value={v} onChange={setV} hint="a RequestId, a trace id, a task id…" />
      <button type="button" onClick={() => navigate(withQuery({ contains: v || undefined }))}>Search</button>
    </div>
  );
}
