// A flow's versions: the History panel under the editor (who saved which
// version when, open or restore one, pick two to compare, the tasks that run
// the flow and which version each runs) and the diff between two versions,
// drawn on a canvas of its own (?flow=ID&diff=3..5, so it can be shared).
import { useEffect, useMemo, useState } from "react";
import { Background, Controls, ReactFlow, useReactFlow } from "@xyflow/react";
import type { Edge } from "@xyflow/react";
import { call } from "../../api";
import { ErrorLine } from "../../components/ListTable";
import { MoveVersion } from "../../components/MoveVersion";
import { describe } from "../../errors";
import { Link } from "../../Layout";
import { navigate, withQuery } from "../../router";
import { can, useSession } from "../../session";
import type { TaskInfo } from "../../types";
import { useAction } from "../../useAction";
import { useLoad } from "../../useLoad";
import { describeChange, diffFlows, isEmpty, merged } from "./diff";
import type { FlowDiff } from "./diff";
import { docToGraph } from "./graph";
import type { FlowDoc, NodeKinds, XY } from "./graph";
import { NODE_TYPES } from "./NodeView";
import type { EditorNode } from "./NodeView";

interface VersionRow {
  Version: number;
  Comment: string;
  CreatedBy: string;
  CreatedTime: string;
}

const when = (t: string) => (t ? new Date(t).toLocaleString() : "");

/** History lists a flow's versions newest first, compares two, restores one, and moves the flow's tasks to the latest. */
export function History(props: { flowId: string; version: number; open: boolean }) {
  const s = useSession();
  const [versions, setVersions] = useState<VersionRow[]>([]);
  const [tasks, setTasks] = useState<TaskInfo[]>([]);
  const [error, setError] = useState<string>();
  const [tick, setTick] = useState(0);
  const [pick, setPick] = useState<{ from: number; to: number }>();
  const restore = useAction();
  useLoad(
    () => call<{ FlowVersionSet: VersionRow[] }>("DescribeFlowVersions", { FlowId: props.flowId, Limit: 100 }),
    (r) => setVersions(r.FlowVersionSet),
    (e) => setError(describe(e)),
    [props.flowId, props.version],
  );
  useLoad(
    () => (can(s, "DescribeTasks") ? call<{ TaskSet: TaskInfo[] }>("DescribeTasks", { Filters: [{ Name: "FlowId", Values: [props.flowId] }], Limit: 100 }) : null),
    (r) => setTasks(r.TaskSet),
    (e) => setError(describe(e)),
    [props.flowId, props.version, tick],
  );
  const latest = versions[0]?.Version ?? 0;
  const current = props.version || latest;
  const from = pick?.from ?? versions[1]?.Version ?? latest;
  const to = pick?.to ?? latest;
  const doRestore = (v: number) => restore.run(async () => {
    const old = await call<{ Document: FlowDoc }>("DescribeFlowVersion", { FlowId: props.flowId, Version: v });
    const r = await call<{ Version: number }>("ModifyFlow", { FlowId: props.flowId, Document: old.Document, Comment: `Rollback to v${v}` });
    navigate(withQuery({ version: r.Version, node: undefined }));
  });
  const options = versions.map((v) => <option key={v.Version} value={v.Version}>v{v.Version}</option>);
  return (
    <details className="card flow-history" open={props.open} data-testid="flow-history"
      onToggle={(e) => navigate(withQuery({ history: (e.currentTarget as HTMLDetailsElement).open ? 1 : undefined }), true)}>
      <summary>History</summary>
      <ErrorLine error={error || restore.error} />
      <div className="table-wrap">
        <table>
          <caption className="visually-hidden">Versions of this flow, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">Comment</th>
              <th scope="col">By</th>
              <th scope="col" className="wide-only">When</th>
              <th scope="col"><span className="visually-hidden">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {versions.map((v) => (
              <tr key={v.Version} data-version={v.Version} aria-current={v.Version === current ? "true" : undefined}>
                <th scope="row">v{v.Version}{v.Version === latest && <span className="muted small"> latest</span>}</th>
                <td>{v.Comment || <span className="muted">—</span>}</td>
                <td>{v.CreatedBy || "—"}</td>
                <td className="wide-only">{when(v.CreatedTime)}</td>
                <td>
                  <div className="row-actions">
                    {v.Version !== current && <Link to={withQuery({ version: v.Version, node: undefined })}>Open</Link>}
                    {v.Version !== latest && can(s, "ModifyFlow") && (
                      <button type="button" className="secondary" disabled={restore.busy} onClick={() => void doRestore(v.Version)} aria-label={`Restore v${v.Version}`}>
                        Restore this version
                      </button>
                    )}
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {versions.length > 1 && (
        <div className="row-actions flow-compare">
          <label className="inline-field">
            <span>Compare</span>
            <select aria-label="Older version" value={from} onChange={(e) => setPick({ from: Number(e.target.value), to })}>{options}</select>
          </label>
          <label className="inline-field">
            <span>with</span>
            <select aria-label="Newer version" value={to} onChange={(e) => setPick({ from, to: Number(e.target.value) })}>{options}</select>
          </label>
          {from !== to && <Link to={withQuery({ diff: `${from}..${to}`, node: undefined })}>Show the changes</Link>}
        </div>
      )}
      <h3>Tasks running this flow</h3>
      {tasks.length === 0 ? (
        <p className="muted small">No task runs this flow.</p>
      ) : (
        <ul className="flow-tasks">
          {tasks.map((t) => (
            <li key={t.TaskId} data-task={t.Name}>
              <Link to={withQuery({ task: t.TaskId, flow: undefined, version: undefined, history: undefined, node: undefined }, "/tasks")}>{t.Name}</Link>{" "}
              <span className="muted small">{t.Status}</span> <span data-testid="task-version">v{t.FlowVersion}</span>{" "}
              <MoveVersion task={{ ...t, LatestFlowVersion: latest || t.LatestFlowVersion }} onMoved={() => setTick((n) => n + 1)} />
            </li>
          ))}
        </ul>
      )}
    </details>
  );
}

// Positions are the editor's, kept in this browser per flow (FlowEditor.tsx).
function savedPositions(flowId: string): Record<string, XY> {
  try {
    return JSON.parse(localStorage.getItem(`tianshu.flow.positions.${flowId}`) ?? "{}") as Record<string, XY>;
  } catch {
    return {};
  }
}

/** VersionDiff draws what changed from one version to another: added green, removed grey and dashed, changed amber, and lists it. */
export function VersionDiff(props: { projectId: string; flowId: string; from: number; to: number }) {
  const [docs, setDocs] = useState<{ a: FlowDoc; b: FlowDoc; name: string }>();
  const [kinds, setKinds] = useState<NodeKinds>();
  const [error, setError] = useState<string>();
  useLoad(() => call<NodeKinds>("DescribeFlowNodeKinds", { ProjectId: props.projectId }), setKinds, () => setKinds(undefined), [props.projectId]);
  useLoad(
    async () => {
      const [a, b] = await Promise.all([props.from, props.to].map((v) => call<{ Document: FlowDoc }>("DescribeFlowVersion", { FlowId: props.flowId, Version: v })));
      return { a: a?.Document ?? {}, b: b?.Document ?? {}, name: b?.Document.name ?? props.flowId };
    },
    setDocs,
    (e) => setError(describe(e)),
    [props.flowId, props.from, props.to],
  );
  const diff = useMemo(() => (docs ? diffFlows(docs.a, docs.b) : undefined), [docs]);
  const drawn = useMemo(() => {
    if (!docs || !diff) return undefined;
    const g = docToGraph(merged(docs.a, docs.b), kinds, savedPositions(props.flowId));
    const status = new Map(diff.nodes.map((n) => [n.id, n.status]));
    const edgeStatus = new Map(diff.edges.map((e) => [e.id, e.status]));
    const nodes: EditorNode[] = g.nodes.map((n) => ({
      id: n.id, type: "flow", position: n.position, data: { ...n.data, errors: [] },
      className: status.has(n.id) ? `diff-${status.get(n.id) ?? ""}` : undefined, draggable: false, connectable: false, deletable: false,
    }));
    const edges: Edge[] = g.edges.map((e) => ({
      id: e.id, source: e.source, target: e.target, sourceHandle: e.sourceHandle, targetHandle: e.targetHandle, deletable: false,
      className: edgeStatus.has(e.id) ? `diff-edge-${edgeStatus.get(e.id) ?? ""}` : e.data.origin === "input" ? "edge-data" : "edge-control",
    }));
    return { nodes, edges };
  }, [docs, diff, kinds, props.flowId]);
  return (
    <section aria-labelledby="page-title" className="flow-editor-page">
      <p>
        <Link to={withQuery({ diff: undefined, version: props.to, history: 1 })}>← Back to the editor</Link>
      </p>
      <div className="page-head">
        <h1 id="page-title">Flow {docs?.name ?? props.flowId}: v{props.from} → v{props.to}</h1>
      </div>
      <ErrorLine error={error} />
      <p className="muted small diff-legend">
        <span className="diff-key diff-key-added">added</span> <span className="diff-key diff-key-changed">changed</span>{" "}
        <span className="diff-key diff-key-removed">removed</span>
      </p>
      <div className="flow-diff">
        <div className="flow-canvas" data-testid="diff-canvas">
          {drawn && (
            <ReactFlow<EditorNode> nodes={drawn.nodes} edges={drawn.edges} nodeTypes={NODE_TYPES} nodesConnectable={false} nodesDraggable={false}
              elementsSelectable={false} deleteKeyCode={null} fitView minZoom={0.2} proOptions={{ hideAttribution: true }}>
              <Background />
              <Controls showInteractive={false} />
              <FitOnResize />
            </ReactFlow>
          )}
        </div>
        {diff && <DiffList diff={diff} />}
      </div>
    </section>
  );
}

// The diff is for looking at: it fits the window again when the window changes (a phone turned, a window resized).
function FitOnResize() {
  const flow = useReactFlow();
  useEffect(() => {
    const fit = () => void flow.fitView();
    window.addEventListener("resize", fit);
    return () => window.removeEventListener("resize", fit);
  }, [flow]);
  return null;
}

function DiffList(props: { diff: FlowDiff }) {
  const d = props.diff;
  if (isEmpty(d)) return <p className="card flow-panel" data-testid="diff-list">The two versions are the same document.</p>;
  return (
    <div className="card flow-panel" data-testid="diff-list">
      <h2>Changes</h2>
      {d.nodes.length > 0 && (
        <ul className="diff-items">
          {d.nodes.map((n) => (
            <li key={n.id} className={`diff-item-${n.status}`} data-diff-node={n.id} data-status={n.status}>
              <strong>{n.id}</strong> <span className="muted small">{n.kind}</span> {n.status}
              {n.changes.length > 0 && (
                <ul>
                  {n.changes.map((c) => <li key={c.path}><code>{describeChange(c)}</code></li>)}
                </ul>
              )}
            </li>
          ))}
        </ul>
      )}
      {d.edges.length > 0 && (
        <>
          <h3>Wires</h3>
          <ul className="diff-items">
            {d.edges.map((e) => <li key={e.id} className={`diff-item-${e.status}`} data-status={e.status}><code>{e.label}</code> {e.status}</li>)}
          </ul>
        </>
      )}
      {d.parameters.length > 0 && (
        <>
          <h3>Flow parameters</h3>
          <ul className="diff-items">{d.parameters.map((c) => <li key={c.path}><code>{describeChange(c)}</code></li>)}</ul>
        </>
      )}
      {d.other.length > 0 && (
        <>
          <h3>Document</h3>
          <ul className="diff-items">{d.other.map((c) => <li key={c.path}><code>{describeChange(c)}</code></li>)}</ul>
        </>
      )}
    </div>
  );
}
