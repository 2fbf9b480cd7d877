// The visual flow editor, loaded on demand (pages/Flows.tsx imports it
// lazily): the flow document drawn with @xyflow/react, a palette from
// DescribeFlowNodeKinds, a config form from each kind's JSON Schema, and
// ValidateFlow's errors on the node or wire they name.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import type { DragEvent } from "react";
import { Background, Controls, Handle, Position, ReactFlow, ReactFlowProvider, applyNodeChanges, useReactFlow } from "@xyflow/react";
import type { Connection, Edge, EdgeChange, Node, NodeChange, NodeProps } from "@xyflow/react";
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
import { addNode, connect, connectionRefusal, disconnect, docToGraph, FLOW, NEXT, removeNode, uniqueId, updateNode } from "./graph";
import type { FlowDoc, FlowNode, GraphEdge, NodeKinds, Port, XY } from "./graph";
import { readValue, schemaFields, showValue } from "./schema";
import type { SchemaField } from "./schema";

/** ValidationError is one of ValidateFlow's ErrorSet. */
export interface ValidationError {
  NodeId: string;
  Edge?: { From: string; To: string } | null;
  Field: string;
  Message: string;
}

type NodeData = { node: FlowNode; inputs: Port[]; outputs: Port[]; errors: string[] };
type EditorNode = Node<NodeData, "flow">;

const VALIDATE_MS = 400;
const CATEGORIES = ["algorithm", "logic", "stream", "sink", "utility"];
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

/** errorsByPlace pins each error on the wire it names, else on its node (the top one for a body's "outer/inner"), else on the document. */
export function errorsByPlace(errors: readonly ValidationError[], edges: readonly GraphEdge[]) {
  const onNode: Record<string, string[]> = {};
  const onEdge: Record<string, string[]> = {};
  const onDoc: string[] = [];
  for (const e of errors) {
    const text = e.Field ? `${e.Field}: ${e.Message}` : e.Message;
    if (e.Edge?.From && e.Edge.To) {
      const input = e.Field.startsWith("inputs.") ? e.Field.slice(7) : "";
      const between = edges.filter((g) => g.source === e.Edge?.From && g.target === e.Edge.To);
      const wire = between.find((g) => g.data.input === input) ?? between[0];
      if (wire) {
        (onEdge[wire.id] ??= []).push(text);
        continue;
      }
    }
    const top = e.NodeId.split("/")[0] ?? "";
    if (top) (onNode[top] ??= []).push(e.NodeId.includes("/") ? `${e.NodeId}: ${text}` : text);
    else onDoc.push(text);
  }
  return { onNode, onEdge, onDoc };
}

export default function FlowEditorPage(props: { projectId: string; flowId: string; version: number }) {
  return (
    <ReactFlowProvider>
      <FlowEditor {...props} />
    </ReactFlowProvider>
  );
}

function FlowEditor(props: { projectId: string; flowId: string; version: number }) {
  const s = useSession();
  const route = useRoute();
  const selected = route.query.get("node") ?? "";
  const editable = can(s, props.flowId ? "ModifyFlow" : "CreateFlow");
  const [kinds, setKinds] = useState<NodeKinds>();
  const [doc, setDoc] = useState<FlowDoc | undefined>(props.flowId ? undefined : EMPTY);
  const [saved, setSaved] = useState<FlowDoc | undefined>(props.flowId ? undefined : EMPTY);
  const [loadError, setLoadError] = useState<string>();
  const [errors, setErrors] = useState<ValidationError[]>([]);
  const [checking, setChecking] = useState(false);
  const [notice, setNotice] = useState("");
  const [comment, setComment] = useState("");
  const positions = useRef<Record<string, XY>>(loadPositions(props.flowId));
  const save = useAction();
  const flow = useReactFlow();

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

  const graph = useMemo(() => docToGraph(doc ?? EMPTY, kinds, positions.current), [doc, kinds]);
  const places = useMemo(() => errorsByPlace(errors, graph.edges), [errors, graph.edges]);

  // React Flow keeps each node's measured size and drag state: merge them into the nodes drawn from the document.
  const [nodes, setNodes] = useState<EditorNode[]>([]);
  useEffect(() => {
    setNodes((prev) => {
      const old = new Map(prev.map((n) => [n.id, n]));
      return graph.nodes.map((g) => {
        const o = old.get(g.id);
        const data = { ...g.data, errors: places.onNode[g.id] ?? [] };
        return o ? { ...o, data, selected: g.id === selected } : { id: g.id, type: "flow", position: g.position, data, selected: g.id === selected };
      });
    });
  }, [graph.nodes, places.onNode, selected]);

  const edges = useMemo<Edge[]>(
    () => graph.edges.map((e) => {
      const problems = places.onEdge[e.id];
      return {
        id: e.id, source: e.source, target: e.target, sourceHandle: e.sourceHandle, targetHandle: e.targetHandle, data: e.data,
        className: problems ? "edge-invalid" : e.data.origin === "input" ? "edge-data" : "edge-control",
        label: problems?.join("; "), deletable: editable, ariaLabel: `${e.source} to ${e.target}${problems ? ": " + problems.join("; ") : ""}`,
      };
    }),
    [graph.edges, places.onEdge, editable],
  );

  const change = useCallback((f: (d: FlowDoc) => FlowDoc) => setDoc((d) => (d ? f(d) : d)), []);
  const select = (id: string) => navigate(withQuery({ node: id || undefined }), true);

  const onNodesChange = (changes: NodeChange<EditorNode>[]) => {
    for (const c of changes) {
      if (c.type === "remove" && editable) change((d) => removeNode(d, c.id));
      if (c.type === "position" && c.position) positions.current = { ...positions.current, [c.id]: c.position };
      if (c.type === "select" && c.selected) select(c.id);
    }
    setNodes((ns) => applyNodeChanges(changes.filter((c) => c.type !== "remove" && c.type !== "select"), ns));
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
    const src = graph.nodes.find((n) => n.id === c.source);
    const dst = graph.nodes.find((n) => n.id === c.target);
    if (!src || !dst || !kinds) return;
    const sh = c.sourceHandle ?? NEXT;
    const th = c.targetHandle ?? FLOW;
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

  const place = (): XY => {
    const xs = graph.nodes.map((n) => n.position.x);
    return { x: (xs.length ? Math.max(...xs) : -260) + 260, y: 0 }; // right of everything, where nothing is in the way
  };
  const add = (kind: string, config: Record<string, unknown> | undefined, base: string, at?: XY) => {
    if (!doc) return;
    const id = uniqueId(doc, base);
    positions.current = { ...positions.current, [id]: at ?? place() };
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

  const dirty = doc !== saved;
  const node = doc?.nodes?.find((n) => n.id === selected);
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
      <div className="flow-editor">
        {editable && kinds && <Palette kinds={kinds} onAdd={(k, c, b) => add(k, c, b)} />}
        <div className="flow-canvas" onDragOver={(e) => e.preventDefault()} onDrop={onDrop} data-testid="flow-canvas">
          {doc && (
            <ReactFlow<EditorNode> nodes={nodes} edges={edges} nodeTypes={NODE_TYPES} onNodesChange={onNodesChange} onEdgesChange={onEdgesChange}
              onConnect={onConnect} nodesConnectable={editable} nodesDraggable elementsSelectable deleteKeyCode={editable ? ["Delete", "Backspace"] : null}
              onPaneClick={() => select("")} fitView minZoom={0.2} proOptions={{ hideAttribution: true }}>
              <Background />
              <Controls showInteractive={false} />
            </ReactFlow>
          )}
        </div>
        {node && kinds && (
          <NodePanel key={node.id} node={node} kinds={kinds} errors={errors.filter((e) => e.NodeId === node.id)} editable={editable}
            onChange={(n) => change((d) => updateNode(d, node.id, () => n))}
            onRemove={() => {
              change((d) => removeNode(d, node.id));
              select("");
            }} onClose={() => select("")} />
        )}
        {!node && editable && (
          <label className="flow-name inline-field">
            <span>Flow name</span>
            <input value={doc?.name ?? ""} maxLength={128} onChange={(e) => change((d) => ({ ...d, name: e.target.value }))} />
          </label>
        )}
      </div>
    </section>
  );
}

function FlowNodeView(props: NodeProps<EditorNode>) {
  const { node, inputs, outputs, errors } = props.data;
  return (
    <div className={errors.length ? "flow-node flow-node-invalid" : "flow-node"} data-node={node.id} aria-invalid={errors.length ? true : undefined}>
      <Handle type="target" position={Position.Left} id={FLOW} className="handle-control" />
      <div className="flow-node-head">
        <strong>{node.id}</strong> <span className="muted small">{node.kind === "algorithm" ? String(node.config?.algorithm ?? "algorithm") : node.kind}</span>
      </div>
      <div className="flow-node-ports">
        <ul>
          {inputs.map((p) => (
            <li key={p.Name} className="port port-in" title={`${p.Name}: ${p.Type}${p.Required ? " (required)" : ""}`}>
              <Handle type="target" position={Position.Left} id={`in:${p.Name}`} className={`handle-${p.Type}`} />
              {p.Name} <span className="muted">{p.Type}</span>
            </li>
          ))}
        </ul>
        <ul>
          {outputs.map((p) => (
            <li key={p.Name} className="port port-out" title={`${p.Name}: ${p.Type}`}>
              {p.Name} <span className="muted">{p.Type}</span>
              <Handle type="source" position={Position.Right} id={`out:${p.Name}`} className={`handle-${p.Type}`} />
            </li>
          ))}
        </ul>
      </div>
      {errors.length > 0 && (
        <ul className="flow-node-errors" data-testid="node-errors">
          {errors.map((m) => <li key={m}>{m}</li>)}
        </ul>
      )}
      <Handle type="source" position={Position.Right} id={NEXT} className="handle-control" />
    </div>
  );
}

const NODE_TYPES = { flow: FlowNodeView };

function Palette(props: { kinds: NodeKinds; onAdd(kind: string, config: Record<string, unknown> | undefined, base: string): void }) {
  const drag = (e: DragEvent, payload: object) => {
    e.dataTransfer.setData("application/x-tianshu-node", JSON.stringify(payload));
    e.dataTransfer.effectAllowed = "copy";
  };
  const others = props.kinds.KindSet.filter((k) => !CATEGORIES.includes(k.Category));
  return (
    <nav className="flow-palette" aria-label="Node kinds">
      {CATEGORIES.map((cat) => {
        const entries = cat === "algorithm"
          ? props.kinds.AlgorithmSet.map((a) => ({ key: a.AlgorithmId, label: a.Name || a.AlgorithmId, doc: a.Description, kind: a.Kind || "algorithm", config: a.Config, base: baseName(a.AlgorithmId) }))
          : props.kinds.KindSet.filter((k) => k.Category === cat).map((k) => ({ key: k.Name, label: k.Name, doc: k.Doc, kind: k.Name, config: undefined, base: k.Name }));
        if (entries.length === 0) return null;
        return (
          <details key={cat} open={cat === "algorithm"}>
            <summary>{cat}</summary>
            <ul>
              {entries.map((x) => (
                <li key={x.key}>
                  <button type="button" className="secondary palette-entry" draggable title={x.doc} aria-label={`Add ${x.label}`}
                    onDragStart={(e) => drag(e, { kind: x.kind, config: x.config, base: x.base })} onClick={() => props.onAdd(x.kind, x.config, x.base)}>
                    {x.label}
                  </button>
                </li>
              ))}
            </ul>
          </details>
        );
      })}
      {others.length > 0 && <p className="muted small">Also: {others.map((k) => k.Name).join(", ")}</p>}
    </nav>
  );
}

function baseName(algorithmId: string): string {
  return algorithmId.replace(/^alg-/, "").replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function NodePanel(props: { node: FlowNode; kinds: NodeKinds; errors: ValidationError[]; editable: boolean; onChange(n: FlowNode): void; onRemove(): void; onClose(): void }) {
  const { node } = props;
  const kind = props.kinds.KindSet.find((k) => k.Name === node.kind);
  const fields = schemaFields(kind?.ConfigSchema);
  const errorOf = (field: string) => props.errors.filter((e) => e.Field === field || e.Field.startsWith(`${field}.`) || e.Field.startsWith(`${field}[`)).map((e) => e.Message).join("; ");
  const placed = new Set([...fields.map((f) => `config.${f.name}`), "inputs"]);
  const rest = props.errors.filter((e) => ![...placed].some((p) => e.Field === p || e.Field.startsWith(`${p}.`) || e.Field.startsWith(`${p}[`)));
  const setConfig = (name: string, v: unknown) => {
    const config = Object.fromEntries(Object.entries(node.config ?? {}).filter(([k]) => k !== name));
    if (v !== undefined) config[name] = v;
    props.onChange({ ...node, config });
  };
  return (
    <aside className="flow-panel card" aria-labelledby="node-panel-title">
      <div className="page-head">
        <h2 id="node-panel-title">Node {node.id}</h2>
        <button type="button" className="secondary" onClick={props.onClose}>
          Close
        </button>
      </div>
      <p className="muted small">
        {node.kind}
        {kind?.Doc ? `: ${kind.Doc}` : ""}
      </p>
      {rest.length > 0 && (
        <ul className="form-error">
          {rest.map((e) => <li key={`${e.Field}|${e.Message}`}>{e.Field ? `${e.Field}: ${e.Message}` : e.Message}</li>)}
        </ul>
      )}
      <fieldset disabled={!props.editable}>
        <legend>Config</legend>
        {fields.length === 0 && <p className="muted small">No settings.</p>}
        {fields.map((f) => (
          <ConfigField key={f.name} field={f} value={node.config?.[f.name]} error={errorOf(`config.${f.name}`)} onChange={(v) => setConfig(f.name, v)} />
        ))}
        <JsonArea label="Inputs (JSON)" name="inputs" value={node.inputs ?? {}} error={errorOf("inputs")}
          onChange={(v) => props.onChange({ ...node, inputs: v as Record<string, unknown> })} />
      </fieldset>
      {props.editable && (
        <button type="button" className="danger" onClick={props.onRemove}>
          Delete node {node.id}
        </button>
      )}
    </aside>
  );
}

function ConfigField(props: { field: SchemaField; value: unknown; error: string; onChange(v: unknown): void }) {
  const f = props.field;
  const [text, setText] = useState(() => showValue(f, props.value));
  const id = `cfg-${f.name}`;
  const hint = [f.doc, f.default !== undefined ? `default ${JSON.stringify(f.default)}` : "", f.min !== undefined ? `min ${f.min}` : "", f.max !== undefined ? `max ${f.max}` : ""]
    .filter(Boolean).join("; ");
  const set = (t: string) => {
    setText(t);
    props.onChange(readValue(f, t));
  };
  const common = { id, name: `config.${f.name}`, "aria-invalid": props.error ? true : undefined, "aria-describedby": `${id}-hint${props.error ? ` ${id}-error` : ""}` };
  return (
    <div className={props.error ? "field field-invalid" : "field"} data-field={`config.${f.name}`}>
      <label htmlFor={id}>
        {f.name}
        {f.required ? " (required)" : ""}
      </label>
      {f.widget === "enum" || f.widget === "bool" ? (
        <select {...common} value={text} onChange={(e) => set(e.target.value)}>
          <option value="">{f.default !== undefined ? `default (${String(f.default)})` : "unset"}</option>
          {(f.widget === "bool" ? ["true", "false"] : f.options).map((o) => <option key={o} value={o}>{o}</option>)}
        </select>
      ) : f.widget === "json" ? (
        <textarea {...common} rows={3} value={text} onChange={(e) => set(e.target.value)} />
      ) : (
        <input {...common} type={f.widget === "text" ? "text" : "number"} step={f.widget === "integer" ? 1 : "any"} value={text} onChange={(e) => set(e.target.value)} />
      )}
      <div className="field-hint" id={`${id}-hint`}>
        {hint}
      </div>
      {props.error && (
        <div className="field-error" id={`${id}-error`} data-field-error={`config.${f.name}`}>
          {props.error}
        </div>
      )}
    </div>
  );
}

function JsonArea(props: { label: string; name: string; value: unknown; error: string; onChange(v: unknown): void }) {
  const shown = JSON.stringify(props.value, null, 1);
  const [text, setText] = useState(shown);
  const [bad, setBad] = useState("");
  // A wire drawn on the canvas changes the inputs while the panel is open: show them, unless what is typed says the same.
  const [seen, setSeen] = useState(shown);
  if (shown !== seen) {
    setSeen(shown);
    if (!sameJson(text, props.value)) {
      setText(shown);
      setBad("");
    }
  }
  const id = `json-${props.name}`;
  const error = bad || props.error;
  return (
    <div className={error ? "field field-invalid" : "field"}>
      <label htmlFor={id}>{props.label}</label>
      <textarea id={id} name={props.name} rows={5} value={text} aria-invalid={error ? true : undefined} onChange={(e) => {
        setText(e.target.value);
        try {
          props.onChange(JSON.parse(e.target.value));
          setBad("");
        } catch {
          setBad("not valid JSON");
        }
      }} />
      {error && (
        <div className="field-error" data-field-error={props.name}>
          {error}
        </div>
      )}
    </div>
  );
}

function sameJson(text: string, v: unknown): boolean {
  try {
    return JSON.stringify(JSON.parse(text)) === JSON.stringify(v);
  } catch {
    return false;
  }
}
