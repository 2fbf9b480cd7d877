import { useState } from "react";
import type { FormEvent } from "react";
import { call } from "../api";
import { ConfirmDelete } from "../components/ConfirmDelete";
import { Field } from "../components/Field";
import { FormButtons } from "../components/FormButtons";
import { ErrorLine, ListTable } from "../components/ListTable";
import { closeForm, PageHead } from "../components/PageHead";
import { offsetOf, PAGE, Pager } from "../components/Pager";
import { SecretOnce } from "../components/SecretOnce";
import { formErrors, noErrors } from "../errors";
import type { FormErrors } from "../errors";
import { Link } from "../Layout";
import { useRoute, withQuery } from "../router";
import { can, useSession } from "../session";
import { shortTime } from "../time";
import { usePolled } from "../usePoll";

/** EdgeNodeInfo is an edge node as DescribeEdgeNodes answers it. */
export interface EdgeNodeInfo {
  EdgeNodeId: string;
  ProjectId: string;
  Name: string;
  Description: string;
  Status: string;
  JoinedTime: string;
  LastSeenTime: string;
  LatencyMs: number;
  BufferDepth: number;
  BufferBytes: number;
  BufferOldestTime: string;
  ForwardedRecords: number;
  Versions: Record<string, string>;
  CreatedTime: string;
}

const REFRESH_MS = 5000;
const COLUMNS = [{ label: "Name" }, { label: "Status" }, { label: "Last seen" }, { label: "Latency", wide: true }, { label: "Buffer" },
  { label: "Forwarded", wide: true }, { label: "Versions deployed", wide: true }];

/** loadSites lists a project's edge nodes (the first 100), for site filters; none when the person may not read them. */
export async function loadSites(projectId: string, mayRead: boolean): Promise<EdgeNodeInfo[]> {
  if (!mayRead) return [];
  const r = await call<{ EdgeNodeSet: EdgeNodeInfo[] }>("DescribeEdgeNodes", { ProjectId: projectId, Limit: 100 });
  return r.EdgeNodeSet;
}

/** bytesText shows a byte count in the largest unit that keeps it at least 1 ("3.2 MiB"). */
export function bytesText(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** deployedOf splits a node's reported versions into its software and what the cloud deployed there (flow/… and algorithm/… entries). */
export function deployedOf(v: Record<string, string>): { software: string; flows: [string, string][]; algorithms: [string, string][] } {
  const entries = Object.entries(v).sort(([a], [b]) => a.localeCompare(b));
  return {
    software: v.tianshu ?? "",
    flows: entries.filter(([k]) => k.startsWith("flow/")).map(([k, x]) => [k.slice(5), x]),
    algorithms: entries.filter(([k]) => k.startsWith("algorithm/")).map(([k, x]) => [k.slice(10), x]),
  };
}

/** EdgeNodes lists the project's sites (edge nodes) with their link status, last heartbeat, latency, buffer and deployed versions; adds one (showing its join token once) and deletes one. */
export function EdgeNodes() {
  const s = useSession();
  const route = useRoute();
  const projectId = s.project?.ProjectId ?? "";
  const offset = offsetOf(route.query);
  const adding = route.query.get("add") === "1" && can(s, "CreateEdgeNode");
  const [joined, setJoined] = useState<{ id: string; token: string } | null>(null);
  const [deleted, setDeleted] = useState("");
  const { value: list, error, reload } = usePolled(
    () => call<{ TotalCount: number; EdgeNodeSet: EdgeNodeInfo[] }>("DescribeEdgeNodes", { ProjectId: projectId, Offset: offset, Limit: PAGE }),
    REFRESH_MS,
    [projectId, offset],
  );
  return (
    <section aria-labelledby="page-title">
      <PageHead title="Sites" add={can(s, "CreateEdgeNode") && !adding && "Add site"} />
      <p className="muted">
        Edge nodes: boxes at a site, next to its cameras, with their own store and bus. They keep working when the link is down and forward what
        they buffered once it is back.
      </p>
      {adding && (
        <SiteForm projectId={projectId} onDone={(r) => {
          if (r) setJoined(r);
          closeForm(reload)(r !== null);
        }} />
      )}
      {joined && (
        <SecretOnce title="Site added" what="join token" values={[{ label: "Edge node", value: joined.id }, { label: "Join token", value: joined.token }]}
          onClose={() => setJoined(null)} />
      )}
      {deleted && (
        <p className="muted" role="status" data-testid="site-deleted">
          {deleted}
        </p>
      )}
      <ErrorLine error={error} />
      <ListTable caption={`Sites of project ${projectId}`} columns={COLUMNS} empty="No sites yet." isEmpty={list?.EdgeNodeSet.length === 0}>
        {list?.EdgeNodeSet.map((n) => (
          <SiteRow key={n.EdgeNodeId} n={n} mayDelete={can(s, "DeleteEdgeNode")} onDeleted={(msg) => {
            setDeleted(msg);
            reload();
          }} />
        ))}
      </ListTable>
      <Pager label="Pages of sites" offset={offset} total={list?.TotalCount ?? 0} />
    </section>
  );
}

function SiteRow(p: { n: EdgeNodeInfo; mayDelete: boolean; onDeleted(msg: string): void }) {
  const n = p.n;
  const d = deployedOf(n.Versions);
  return (
    <tr data-site={n.Name}>
      <th scope="row">
        <span title={n.EdgeNodeId}>{n.Name}</span>
        {n.Description && <div className="muted small">{n.Description}</div>}
        <div className="row-links small">
          <Link to={withQuery({ site: n.EdgeNodeId, offset: undefined }, "/devices")}>Devices</Link>{" "}
          <Link to={withQuery({ site: n.EdgeNodeId, offset: undefined }, "/records")}>Records</Link>
        </div>
      </th>
      <td data-col="status">
        <span className={`status status-${n.Status}`}>{n.Status}</span>
      </td>
      <td data-col="last-seen">{n.LastSeenTime ? shortTime(n.LastSeenTime) : "never"}</td>
      <td className="wide-only" data-col="latency">{n.Status === "pending" ? "" : `${n.LatencyMs.toFixed(1)} ms`}</td>
      <td data-col="buffer">
        {n.BufferDepth} {n.BufferDepth === 1 ? "item" : "items"}
        <div className="muted small">
          {bytesText(n.BufferBytes)}
          {n.BufferOldestTime && `, oldest ${shortTime(n.BufferOldestTime)}`}
        </div>
      </td>
      <td className="wide-only" data-col="forwarded">{n.ForwardedRecords}</td>
      <td className="wide-only" data-col="versions">
        {d.software && <div>tianshu {d.software}</div>}
        {d.flows.map(([id, v]) => (
          <div key={`f-${id}`} className="small">
            flow <Link to={withQuery({ flow: id }, "/flows")}>{id}</Link> v{v}
          </div>
        ))}
        {d.algorithms.map(([id, v]) => (
          <div key={`a-${id}`} className="small">
            algorithm <Link to={withQuery({ algorithm: id }, "/algorithms")}>{id}</Link> v{v}
          </div>
        ))}
      </td>
      <td>
        <div className="row-actions">
          {p.mayDelete && (
            <ConfirmDelete name={n.Name} action="DeleteEdgeNode" body={{ EdgeNodeId: n.EdgeNodeId }}
              onDeleted={() => p.onDeleted(`Site ${n.Name} deleted: its link is revoked, its tasks stopped, its devices taken off it.`)} />
          )}
        </div>
      </td>
    </tr>
  );
}

const FIELDS = ["Name", "Description"] as const;

function SiteForm(props: { projectId: string; onDone(r: { id: string; token: string } | null): void }) {
  const [form, setForm] = useState({ Name: "", Description: "" });
  const [errors, setErrors] = useState<FormErrors>(noErrors);
  const [busy, setBusy] = useState(false);
  async function save(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setErrors(noErrors);
    try {
      const r = await call<{ EdgeNodeId: string; JoinToken: string }>("CreateEdgeNode", { ProjectId: props.projectId, ...form });
      props.onDone({ id: r.EdgeNodeId, token: r.JoinToken });
    } catch (err) {
      setErrors(formErrors(err, FIELDS));
    } finally {
      setBusy(false);
    }
  }
  return (
    <form className="card" onSubmit={save} aria-labelledby="site-form-title" noValidate>
      <h2 id="site-form-title">Add a site</h2>
      <ErrorLine error={errors.form} />
      <div className="form-grid">
        <Field label="Name" name="Name" value={form.Name} onChange={(v) => setForm((f) => ({ ...f, Name: v }))} error={errors.fields.Name} required />
        <Field label="Description" name="Description" value={form.Description} onChange={(v) => setForm((f) => ({ ...f, Description: v }))}
          error={errors.fields.Description} />
      </div>
      <p className="field-hint">
        The join token is shown once. On the edge box: <code>TIANSHU_JOIN_TOKEN=… tianshu serve --target=edge --cloud {window.location.origin}</code>
      </p>
      <FormButtons busy={busy} save="Add site" onCancel={() => props.onDone(null)} />
    </form>
  );
}
