import { useState } from "react";
import type { FormEvent } from "react";
import { call } from "../api";
import { Field } from "../components/Field";
import { ErrorLine, ListTable } from "../components/ListTable";
import { PageHead } from "../components/PageHead";
import { offsetOf, PAGE, Pager } from "../components/Pager";
import { navigate, useRoute, withQuery } from "../router";
import { can, useSession } from "../session";
import { utcTime } from "../time";
import { useAction } from "../useAction";
import { usePolled } from "../usePoll";

const REFRESH_MS = 10000;
const COLUMNS = [{ label: "Seq" }, { label: "Time", wide: true }, { label: "Actor" }, { label: "Action" }, { label: "Resource", wide: true },
  { label: "Result" }, { label: "Source", wide: true }];
/** FILTERS are the audit log's filters, as the API names them and as the URL keeps them. */
const FILTERS = [
  ["Actor", "actor"],
  ["Action", "action"],
  ["Resource", "resource"],
  ["Result", "result"],
] as const;

interface AuditEvent {
  Seq: number;
  Time: string;
  ProjectId: string;
  Actor: string;
  Action: string;
  Resource: string;
  Result: string;
  SourceIp: string;
  RequestId: string;
  Detail: string;
}

interface Verify {
  Valid: boolean;
  CheckedCount: number;
  CheckpointSeq: number;
  HeadSeq: number;
  HeadHash: string;
  BrokenSeq: number;
  Reason: string;
  PendingCount: number;
}

type Search = Record<"actor" | "action" | "resource" | "result" | "from" | "to", string>;

/** auditBody turns the URL's search into DescribeAuditEvents' filters. */
export function auditBody(projectId: string, q: URLSearchParams): Record<string, unknown> {
  const b: Record<string, unknown> = { ProjectId: projectId };
  const filters = FILTERS.filter(([, k]) => q.get(k)).map(([name, k]) => ({ Name: name, Values: [q.get(k) ?? ""] }));
  if (filters.length > 0) b.Filters = filters;
  const from = q.get("from");
  const to = q.get("to");
  if (from) b.StartTime = utcTime(from);
  if (to) b.EndTime = utcTime(to);
  return b;
}

/** Audit lists the project's audit events, oldest first, filtered and paged, and verifies the log's hash chain. */
export function Audit() {
  const s = useSession();
  const route = useRoute();
  const projectId = s.project?.ProjectId ?? "";
  const offset = offsetOf(route.query);
  const body = auditBody(projectId, route.query);
  const key = JSON.stringify(body);
  const { value: list, error } = usePolled(
    () => call<{ TotalCount: number; AuditEventSet: AuditEvent[] }>("DescribeAuditEvents", { ...body, Offset: offset, Limit: PAGE }),
    REFRESH_MS,
    [key, offset],
  );
  const search = Object.fromEntries(["actor", "action", "resource", "result", "from", "to"].map((k) => [k, route.query.get(k) ?? ""])) as Search;
  return (
    <section aria-labelledby="page-title">
      <PageHead title="Audit" />
      {can(s, "VerifyAuditLog") && <VerifyChain />}
      <AuditSearch key={JSON.stringify(search)} search={search} />
      <ErrorLine error={error} />
      <ListTable caption={`Audit events of project ${projectId}`} columns={COLUMNS} empty="No events match." isEmpty={list?.AuditEventSet.length === 0}>
        {list?.AuditEventSet.map((e) => (
          <tr key={e.Seq} data-action={e.Action}>
            <th scope="row">{e.Seq}</th>
            <td className="wide-only">{e.Time}</td>
            <td>{e.Actor}</td>
            <td>{e.Action}</td>
            <td className="wide-only">{e.Resource}</td>
            <td>
              <span className={`status ${e.Result === "OK" ? "status-online" : "status-error"}`}>{e.Result}</span>
              {e.Detail && <div className="muted small detail wide-only">{e.Detail}</div>}
            </td>
            <td className="wide-only">{e.SourceIp}</td>
            <td />
          </tr>
        ))}
      </ListTable>
      <Pager label="Pages of audit events" offset={offset} total={list?.TotalCount ?? 0} />
    </section>
  );
}

function AuditSearch(props: { search: Search }) {
  const [form, setForm] = useState<Search>(props.search);
  const set = (k: keyof Search) => (v: string) => setForm((f) => ({ ...f, [k]: v }));
  function submit(e: FormEvent) {
    e.preventDefault();
    navigate(withQuery({ ...form, offset: undefined }));
  }
  return (
    <form className="card" onSubmit={submit} aria-label="Search audit events" noValidate>
      <div className="form-grid">
        {FILTERS.map(([label, k]) => (
          <Field key={k} label={label} name={label} value={form[k]} onChange={set(k)} />
        ))}
        <Field label="From" name="StartTime" type="datetime-local" value={form.from} onChange={set("from")} />
        <Field label="Until" name="EndTime" type="datetime-local" value={form.to} onChange={set("to")} />
      </div>
      <div className="buttons">
        <button type="submit">Search</button>
      </div>
    </form>
  );
}

function VerifyChain() {
  const [result, setResult] = useState<Verify | null>(null);
  const { busy, error, run } = useAction();
  const verify = () => run(async () => setResult(await call<Verify>("VerifyAuditLog")));
  return (
    <div className="buttons export">
      <button type="button" className="secondary" disabled={busy} onClick={() => void verify()}>
        Verify chain
      </button>
      {result && (
        <span className={result.Valid ? "probe probe-ok" : "probe probe-bad"} role="status" data-testid="verify-result">
          {result.Valid
            ? `Valid: ${result.CheckedCount} events checked from ${result.CheckpointSeq} to ${result.HeadSeq}` +
              (result.PendingCount ? `, ${result.PendingCount} pending` : "") + "."
            : `Broken at event ${result.BrokenSeq}: ${result.Reason}`}
        </span>
      )}
      <ErrorLine error={error} />
    </div>
  );
}
