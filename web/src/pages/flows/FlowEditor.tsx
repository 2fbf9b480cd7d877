// The visual flow editor, loaded on demand (pages/Flows.tsx imports it
// lazily): the flow document drawn with @xyflow/react, a palette from
// DescribeFlowNodeKinds, a config form from each kind's JSON Schema, and
// ValidateFlow's errors on the node or wire they name.
import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from "react";
import type { DragEvent } from "react";
import { Background, Controls, MiniMap, ReactFlow, ReactFlowProvider, applyNodeChanges, useReactFlow } from "@xyflow/react";
import type { Connection, Edge, EdgeChange, NodeChange } from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import "./editor.css";
import { call } from "../../api";
import { ErrorLine } from "../../components/ListTable";
import { describe } from "../../errors";
import { Link } from "../../Layout";
import { navigate, useRoute, withQuery } from "../../router";
import { can, useSession } from "../../session";
import { useLoad } from "../../useLoad";
import { useAction } from "../../useAction";
import { addNode, connect, connectionRefusal, disconnect, docToGraph, FLOW, idProblem, INPUT, ITEM, MORE, moreInputName, NEXT, orderInputs, OUTPUT, removeNode, renameNode, uniqueId, updateNode } from "./graph";
import type { FlowDoc, FlowNode, NodeKinds, XY } from "./graph";
import { NODE_TYPES } from "./NodeView";
import type { EditorNode } from "./NodeView";
import { NodePanel } from "./NodePanel";
import { Palette } from "./Palette";
import { TestRunBar, TestRunResults, useTestRun } from "./TestRun";
import { errorsByPlace } from "./validation";
import { History, VersionDiff } from "./History";
import { parseRange } from "./diff";
import { EditorTools, takeDraft } from "./EditorTools";
import { batch, historyReducer, start } from "./history";
import { bodyAt, bodyPorts, editBody, errorsIn, parseScope, positionsIn, posKey } from "./scope";
import type { ValidationError } from "./validation";

const VALIDATE_MS = 400;
const EMPTY: FlowDoc = { name: "new-flow", nodes: [] };

// Positions are not part of the flow document (the engine refuses unknown
// fields): they are kept in this browser, per flow.
const positionsKey = (flowId: string) => `tianshu.flow.positions.${flowId}`;

function loadPositions(flowId: string): Record<string, XY> {
  if (!flowId) return {};
  try {
    return JSON.parse(localStorage.getItem(positionsKey(flowId)) ?? "{}") as Record<string, XY>;
  } catch {
    return {};
  }
}

export default function FlowEditorPage(props: { projectId: string; flowId: string; version: number }) {
  const diff = parseRange(useRoute().query.get("diff"));
  return (
    <ReactFlowProvider>
      {diff && props.flowId ? <VersionDiff projectId={props.projectId} flowId={props.flowId} from={diff[0]} to={diff[1]} /> : <FlowEditor {...props} />}
    </ReactFlowProvider>
  );
}

function FlowEditor(props: { projectId: string; flowId: string; version: number }) {
  const s = useSession();
  const route = useRoute();
  const selected = route.query.get("node") ?? "";
  const parent = route.query.get("parent") ?? ""; // opened from a subflow node: read-only
  const editable = can(s, props.flowId ? "ModifyFlow" : "CreateFlow") && !parent;
  const [kinds, setKinds] = useState<NodeKinds>();
  const [history, dispatch] = useReducer(historyReducer<FlowDoc | undefined>, props.flowId ? undefined : (takeDraft(route.query.has("draft")) ?? EMPTY), start);
  const doc = history.present;
  const setDoc = (d: FlowDoc) => dispatch({ type: "reset", present: d });
  const scopeText = route.query.get("scope");
  const scope = useMemo(() => parseScope(scopeText), [scopeText]);
  const view = useMemo(() => (doc ? bodyAt(doc, scope) : undefined), [doc, scope]);
  const [saved, setSaved] = useState<FlowDoc | undefined>(props.flowId ? undefined : EMPTY);
  const [loadError, setLoadError] = useState<string>();
  const [errors, setErrors] = useState<ValidationError[]>([]);
  const [checking, setChecking] = useState(false);
  const [notice, setNotice] = useState("");
  const [comment, setComment] = useState("");
  const positions = useRef<Record<string, XY>>(loadPositions(props.flowId));
  const save = useAction();
  const flow = useReactFlow();
  const runnable = can(s, "RunFlowTest");
  const testRun = useTestRun(props.projectId, props.flowId, doc, runnable);

  useLoad(() => call<NodeKinds>("DescribeFlowNodeKinds", { ProjectId: props.projectId }), setKinds, (e) => setLoadError(describe(e)), [props.projectId]);
  useLoad(
    () => (props.flowId ? call<{ Document: FlowDoc }>("DescribeFlowVersion", { FlowId: props.flowId, Version: props.version }) : null),
    (v) => {
      setDoc(v.Document);
      setSaved(v.Document);
    },
    (e) => setLoadError(describe(e)),
    [props.flowId, props.version],
  );

  // Validate as the person edits, once they pause.
  useEffect(() => {
    if (!doc) return;
    let stale = false;
    const t = setTimeout(() => {
      setChecking(true);
      call<{ ErrorSet: ValidationError[] | null }>("ValidateFlow", { ProjectId: props.projectId, Document: doc })
        .then((r) => !stale && setErrors(r.ErrorSet ?? []))
        .catch((e: unknown) => !stale && setErrors([{ NodeId: "", Field: "", Message: describe(e) }]))
        .finally(() => !stale && setChecking(false));
    }, VALIDATE_MS);
    return () => {
      stale = true;
      clearTimeout(t);
    };
  }, [doc, props.projectId]);

  // A body's canvas draws what it reads (its foreach's inputs, the element) and its output mapping beside its nodes.
  const body = useMemo(() => (doc ? bodyPorts(doc, scope, kinds) : undefined), [doc, scope, kinds]);
  const graph = useMemo(() => docToGraph(view ?? EMPTY, kinds, positionsIn(positions.current, scope), body), [view, kinds, scope, body]);
  const places = useMemo(() => errorsByPlace(errorsIn(errors, scope), graph.edges), [errors, graph.edges, scope]);
  const drawn = useMemo(() => [graph.input, graph.item, ...graph.nodes, graph.output].filter((n) => !!n), [graph]);
  // Pasted nodes become the selection, once they are drawn.
  const selectNext = useRef<ReadonlySet<string>>(new Set());

  // React Flow keeps each node's measured size and drag state: merge them into the nodes drawn from the document.
  // The URL's node is selected; others stay selected beside it (Shift+click, a box), none without it.
  const [nodes, setNodes] = useState<EditorNode[]>([]);
  useEffect(() => {
    const chosen = selectNext.current;
    if (chosen.size > 0 && drawn.some((g) => chosen.has(g.id))) selectNext.current = new Set();
    setNodes((prev) => {
      const old = new Map(prev.map((n) => [n.id, n]));
      return drawn.map((g) => {
        const o = old.get(g.id);
        const data = { ...g.data, errors: places.onNode[g.id] ?? [], result: testRun.shown[g.id] };
        if (chosen.size > 0) return { ...(o ?? { id: g.id, type: "flow", position: g.position }), data, selected: chosen.has(g.id) };
        // The Output node stays below the nodes (as drawn now: the document loaded, nodes added or imported) until it is moved.
        const position = g.id === OUTPUT && !o?.dragging ? (positions.current[posKey(scope, OUTPUT)] ?? g.position) : o?.position;
        return o
          ? { ...o, data, position: position ?? o.position, selected: g.id === selected || (!!o.selected && selected !== "") }
          : { id: g.id, type: "flow", position: g.position, data, selected: g.id === selected, deletable: ![INPUT, ITEM, OUTPUT].includes(g.id) };
      });
    });
  }, [drawn, places.onNode, selected, testRun.shown, scope]);

  const edges = useMemo<Edge[]>(
    () => graph.edges.map((e) => {
      const problems = places.onEdge[e.id];
      return {
        id: e.id, source: e.source, target: e.target, sourceHandle: e.sourceHandle, targetHandle: e.targetHandle, data: e.data,
        className: problems ? "edge-invalid" : e.data.origin === "input" || e.data.origin === "output" ? "edge-data" : "edge-control",
        label: problems?.join("; "), deletable: editable, ariaLabel: `${e.source} to ${e.target}${problems ? ": " + problems.join("; ") : ""}`,
      };
    }),
    [graph.edges, places.onEdge, editable],
  );

  // The edits of one event (a node and its wires deleted) are one undo step.
  const change = useCallback((f: (d: FlowDoc) => FlowDoc) => dispatch({ type: "apply", edit: (d) => (d ? editBody(d, scope, f) : d), group: batch() }), [scope]);
  const select = (id: string) => navigate(withQuery({ node: id || undefined }), true);

  const onNodesChange = (changes: NodeChange<EditorNode>[]) => {
    for (const c of changes) {
      if (c.type === "remove" && editable) change((d) => removeNode(d, c.id));
      if (c.type === "position" && c.position) positions.current = { ...positions.current, [posKey(scope, c.id)]: c.position };
      if (c.type === "select" && c.selected) select(c.id);
    }
    setNodes((ns) => applyNodeChanges(changes.filter((c) => c.type !== "remove"), ns));
    if (props.flowId && changes.some((c) => c.type === "position" && !c.dragging)) {
      localStorage.setItem(positionsKey(props.flowId), JSON.stringify(positions.current));
    }
  };
  const onEdgesChange = (changes: EdgeChange[]) => {
    for (const c of changes) {
      if (c.type !== "remove" || !editable) continue;
      const e = graph.edges.find((g) => g.id === c.id);
      if (e) change((d) => disconnect(d, e));
    }
  };
  const onConnect = (c: Connection) => {
    const src = drawn.find((n) => n.id === c.source);
    const dst = drawn.find((n) => n.id === c.target);
    if (!src || !dst || !kinds) return;
    const sh = c.sourceHandle ?? NEXT;
    // A wire to "+ input" adds an input named after the source's field.
    const th = c.targetHandle === MORE ? `in:${sh.startsWith("out:") ? moreInputName(dst.data.node, sh.slice(4), src.id) : moreInputName(dst.data.node, src.id)}` : (c.targetHandle ?? FLOW);
    const from = src.data.outputs.find((p) => `out:${p.Name}` === sh);
    const to = dst.data.inputs.find((p) => `in:${p.Name}` === th);
    if (from && to) {
      const why = connectionRefusal(kinds.PortTypeSet, src.id, from, dst.id, to);
      if (why) {
        setNotice(`Not connected: ${why}.`);
        return;
      }
    }
    setNotice("");
    change((d) => connect(d, src.id, sh, dst.id, th));
  };

  // A new node goes right of everything, by each node's drawn width, where nothing is in the way.
  const place = (): XY => {
    const right = nodes.map((n) => n.position.x + (n.measured?.width ?? 240));
    return { x: right.length ? Math.max(...right) + 40 : 0, y: 0 };
  };
  const add = (kind: string, config: Record<string, unknown> | undefined, base: string, at?: XY) => {
    if (!view) return;
    const id = uniqueId(view, base);
    positions.current = { ...positions.current, [posKey(scope, id)]: at ?? place() };
    const node: FlowNode = { id, kind };
    if (config) node.config = { ...config };
    change((d) => addNode(d, node));
    select(id);
  };
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    const raw = e.dataTransfer.getData("application/x-tianshu-node");
    if (!raw) return;
    const p = JSON.parse(raw) as { kind: string; config?: Record<string, unknown>; base: string };
    add(p.kind, p.config, p.base, flow.screenToFlowPosition({ x: e.clientX, y: e.clientY }));
  };

  const doSave = () => save.run(async () => {
    if (!doc) return;
    const r = props.flowId
      ? await call<{ FlowId: string; Version: number }>("ModifyFlow", { FlowId: props.flowId, Document: doc, Comment: comment })
      : await call<{ FlowId: string; Version: number }>("CreateFlow", { ProjectId: props.projectId, Name: doc.name ?? "", Document: doc });
    localStorage.setItem(positionsKey(r.FlowId), JSON.stringify(positions.current));
    setSaved(doc);
    setComment("");
    navigate(withQuery({ flow: r.FlowId, version: r.Version, node: undefined }));
  });

  // A node renamed: the wires follow (renameNode); its position and its body's are kept under the new id too.
  const rename = (from: string, to: string): string => {
    const why = view ? idProblem(view, to, from) : "";
    if (why) return why;
    const key = posKey(scope, from);
    for (const [k, at] of Object.entries(positions.current)) {
      if (k === key || k.startsWith(`${key}/`)) positions.current[posKey(scope, to) + k.slice(key.length)] = at;
    }
    change((d) => renameNode(d, from, to));
    navigate(withQuery({ node: to }), true);
    return "";
  };

  const dirty = doc !== saved;
  const node = view?.nodes?.find((n) => n.id === selected);
  const title = props.flowId ? `Flow ${doc?.name ?? props.flowId} v${props.version || ""}` : "New flow";
  return (
    <section aria-labelledby="page-title" className="flow-editor-page">
      <p>
        <Link to={withQuery({ flow: undefined, version: undefined, node: undefined })}>← All flows</Link>
      </p>
      <div className="page-head">
        <h1 id="page-title">{title}</h1>
        {editable && (
          <div className="row-actions">
            {props.flowId && (
              <label className="inline-field">
                <span>Comment</span>
                <input value={comment} maxLength={1024} onChange={(e) => setComment(e.target.value)} />
              </label>
            )}
            <button type="button" disabled={save.busy || !doc || (!dirty && !!props.flowId)} onClick={() => void doSave()}>
              {save.busy ? "Saving…" : props.flowId ? "Save new version" : "Save flow"}
            </button>
          </div>
        )}
      </div>
      <ErrorLine error={loadError || save.error} />
      {notice && (
        <p className="form-error" role="alert" data-testid="connect-refused">
          {notice}
        </p>
      )}
      <p className="muted small" role="status" data-testid="validation-status">
        {checking ? "Checking…" : errors.length === 0 ? "No problems found." : `${errors.length} problem${errors.length === 1 ? "" : "s"} found.`}
        {dirty && props.flowId && " Unsaved changes."}
      </p>
      {places.onDoc.length > 0 && (
        <ul className="form-error" data-testid="document-errors">
          {places.onDoc.map((m) => <li key={m}>{m}</li>)}
        </ul>
      )}
      <EditorTools doc={doc} view={view} scope={scope} history={history} dispatch={dispatch} change={change} positions={positions} selected={selected}
        flowId={props.flowId} version={props.version} parent={parent} editable={editable} onPasted={(ids) => {
          selectNext.current = new Set(ids);
          select(ids[0] ?? "");
        }} />
      {runnable && <TestRunBar t={testRun} nodeId={node ? node.id : ""} />}
      <div className="flow-editor">
        {editable && kinds && <Palette kinds={kinds} onAdd={(k, c, b) => add(k, c, b)} />}
        <div className="flow-canvas" onDragOver={(e) => e.preventDefault()} onDrop={onDrop} data-testid="flow-canvas">
          {doc && (
            <ReactFlow<EditorNode> nodes={nodes} edges={edges} nodeTypes={NODE_TYPES} onNodesChange={onNodesChange} onEdgesChange={onEdgesChange}
              onConnect={onConnect} nodesConnectable={editable} nodesDraggable elementsSelectable deleteKeyCode={editable ? ["Delete", "Backspace"] : null}
              onPaneClick={() => select("")} fitView minZoom={0.05} proOptions={{ hideAttribution: true }} multiSelectionKeyCode={["Shift", "Meta", "Control"]}
              onNodeClick={(e, n) => !(e.shiftKey || e.metaKey || e.ctrlKey) && select(n.id)}
              onNodeDoubleClick={(_, n) => n.data.node.kind === "foreach" && navigate(withQuery({ scope: [...scope, n.id].join("/"), node: undefined }))}>
              <Background />
              <Controls showInteractive={false} />
              <MiniMap pannable zoomable ariaLabel="Minimap" />
            </ReactFlow>
          )}
        </div>
        {node && kinds && (
          <NodePanel key={node.id} node={node} kinds={kinds} projectId={props.projectId} errors={errors.filter((e) => e.NodeId === node.id)} editable={editable}
            onChange={(n) => change((d) => orderInputs(updateNode(d, node.id, () => n), node.id))} onRename={(to) => rename(node.id, to)}
            onRemove={() => {
              change((d) => removeNode(d, node.id));
              select("");
            }} onClose={() => select("")} />
        )}
        {!node && editable && scope.length === 0 && (
          <label className="flow-name inline-field">
            <span>Flow name</span>
            <input value={doc?.name ?? ""} maxLength={128} onChange={(e) => change((d) => ({ ...d, name: e.target.value }))} />
          </label>
        )}
      </div>
      {runnable && <TestRunResults t={testRun} nodeId={node ? node.id : ""} onSelect={select} />}
      {props.flowId && <History flowId={props.flowId} version={props.version} open={route.query.has("history")} />}
    </section>
  );
}

