// The editor's toolbar: undo and redo, copy and paste, auto-layout, export
// and import, and the way into (and back out of) a foreach body or the flow
// a subflow runs. Keyboard: Ctrl/Cmd+Z undo, Ctrl/Cmd+Shift+Z or Ctrl+Y
// redo, Ctrl/Cmd+C copy the selected nodes, Ctrl/Cmd+V paste them.
import { useEffect, useState } from "react";
import type { Dispatch, RefObject } from "react";
import { useReactFlow, useStoreApi } from "@xyflow/react";
import type { NodePositionChange } from "@xyflow/react";
import { Link } from "../../Layout";
import { navigate, withQuery } from "../../router";
import { autoLayout } from "./autolayout";
import { copyNodes, loadClip, pasteNodes, storeClip } from "./clipboard";
import { download, exportDoc, fileName, MAX_BYTES, parseDoc } from "./docio";
import type { Format } from "./docio";
import type { FlowDoc, XY } from "./graph";
import type { History, HistoryAction } from "./history";
import { posKey } from "./scope";
import type { Scope } from "./scope";

/** DRAFT_KEY holds a document imported "as a new flow" until the new flow's editor opens it (?flow=new&draft=1). */
export const DRAFT_KEY = "tianshu.flow.draft";

/** takeDraft answers the imported draft, when the new-flow editor was opened for one. */
export function takeDraft(wanted: boolean): FlowDoc | undefined {
  if (!wanted) return undefined;
  try {
    return (JSON.parse(sessionStorage.getItem(DRAFT_KEY) ?? "null") as FlowDoc | null) ?? undefined;
  } catch {
    return undefined;
  }
}

type Doc = FlowDoc | undefined;

export interface ToolsProps {
  doc: Doc; // the whole document
  view: Doc; // the flow on the canvas: the document, or the body the scope names
  scope: Scope;
  history: History<Doc>;
  dispatch: Dispatch<HistoryAction<Doc>>;
  change(f: (d: FlowDoc) => FlowDoc): void; // an edit of the view
  positions: RefObject<Record<string, XY>>;
  selected: string;
  flowId: string;
  version: number;
  parent: string; // "flowId@version" of the flow whose subflow node opened this one (read-only then)
  editable: boolean;
  onPasted(ids: string[]): void; // the pasted nodes' ids: they become the selection
}

// The event's own target: the script editor lives in a shadow root, whose host is what window sees.
const typing = (e: KeyboardEvent) => {
  const t = e.composedPath()[0] ?? e.target;
  return t instanceof HTMLElement && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName));
};

export function EditorTools(p: ToolsProps) {
  const flow = useReactFlow();
  const store = useStoreApi();
  const [importing, setImporting] = useState(false);
  const [notice, setNotice] = useState("");
  const { doc, view, scope, dispatch, editable } = p;

  const selectedIds = () => {
    const ids = flow.getNodes().filter((n) => n.selected).map((n) => n.id);
    return ids.length > 0 ? ids : p.selected ? [p.selected] : [];
  };
  const copy = () => {
    if (!view) return;
    const clip = copyNodes(view, selectedIds(), Object.fromEntries(flow.getNodes().map((n) => [n.id, n.position])));
    if (!clip) return setNotice("Select the nodes to copy first (click, Shift+click, or Shift+drag a box).");
    storeClip(clip);
    setNotice(`Copied ${clip.nodes.length} node${clip.nodes.length === 1 ? "" : "s"}.`);
  };
  const paste = () => {
    const clip = loadClip();
    if (!view || !clip || !editable) return;
    const r = pasteNodes(view, clip);
    for (const [id, at] of Object.entries(r.positions)) p.positions.current[posKey(scope, id)] = at;
    p.change((d) => pasteNodes(d, clip).doc);
    p.onPasted(Object.values(r.ids));
    setNotice(`Pasted ${Object.values(r.ids).join(", ")}.`);
  };
  const undo = () => dispatch({ type: "undo" });
  const redo = () => dispatch({ type: "redo" });

  const layout = () => {
    const nodes = flow.getNodes();
    const at = autoLayout(nodes.map((n) => ({ id: n.id, width: n.measured?.width ?? 0, height: n.measured?.height ?? 0 })), flow.getEdges());
    const changes: NodePositionChange[] = nodes.map((n) => ({ type: "position", id: n.id, position: at[n.id] ?? n.position, dragging: false }));
    store.getState().triggerNodeChanges(changes);
    requestAnimationFrame(() => void flow.fitView({ duration: 0 }));
  };

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (!(e.ctrlKey || e.metaKey) || e.altKey || typing(e)) return;
      const k = e.key.toLowerCase();
      if (k === "c" && selectedIds().length === 0) return; // nothing to copy: the browser copies the selected text
      const act = k === "c" ? copy : !editable ? undefined : k === "v" ? paste : k === "y" || (k === "z" && e.shiftKey) ? redo : k === "z" ? undo : undefined;
      if (!act) return;
      e.preventDefault();
      act();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  });

  // A body opened (or left): show all of it.
  const scopeKey = scope.join("/");
  useEffect(() => {
    const t = setTimeout(() => void flow.fitView({ duration: 0 }), 60);
    return () => clearTimeout(t);
  }, [scopeKey, flow]);

  const exportAs = async (format: Format) => {
    if (!doc) return;
    download(await exportDoc(doc, format), fileName(doc, format), format === "json" ? "application/json" : "application/yaml");
  };

  const node = view?.nodes?.find((n) => n.id === p.selected);
  const sub = node?.kind === "subflow" && typeof node.config?.flow === "string" ? node.config.flow : "";
  const [parentFlow, parentVersion] = p.parent.split("@");
  return (
    <>
      {(scope.length > 0 || p.parent) && (
        <nav aria-label="Nested flows" className="flow-crumbs small">
          {p.parent ? (
            <Link to={withQuery({ flow: parentFlow, version: parentVersion, parent: undefined, node: undefined, scope: undefined })}>← Back to the flow that runs this one</Link>
          ) : (
            <>
              <Link to={withQuery({ scope: undefined, node: undefined })}>{doc?.name || "flow"}</Link>
              {scope.map((id, i) => (
                <span key={id}>
                  {" › "}
                  {i === scope.length - 1 ? <strong aria-current="page">body of {id}</strong> : <Link to={withQuery({ scope: scope.slice(0, i + 1).join("/"), node: undefined })}>body of {id}</Link>}
                </span>
              ))}
            </>
          )}
        </nav>
      )}
      <div className="flow-tools row-actions start" role="toolbar" aria-label="Flow tools">
        {editable && (
          <>
            <button type="button" className="secondary small" disabled={p.history.past.length === 0} onClick={undo} title="Ctrl+Z">Undo</button>
            <button type="button" className="secondary small" disabled={p.history.future.length === 0} onClick={redo} title="Ctrl+Shift+Z">Redo</button>
          </>
        )}
        <button type="button" className="secondary small" onClick={copy} title="Ctrl+C">Copy</button>
        {editable && <button type="button" className="secondary small" onClick={paste} title="Ctrl+V">Paste</button>}
        <button type="button" className="secondary small" onClick={layout}>Auto-layout</button>
        <button type="button" className="secondary small" onClick={() => void exportAs("json")}>Export JSON</button>
        <button type="button" className="secondary small" onClick={() => void exportAs("yaml")}>Export YAML</button>
        {editable && <button type="button" className="secondary small" onClick={() => setImporting(!importing)} aria-expanded={importing}>Import…</button>}
        {node?.kind === "foreach" && (
          <button type="button" className="small" onClick={() => navigate(withQuery({ scope: [...scope, node.id].join("/"), node: undefined }))}>Open body of {node.id}</button>
        )}
        {sub && (
          <button type="button" className="small" onClick={() => navigate(withQuery({ flow: sub, version: Number(node?.config?.version) || undefined, parent: `${p.flowId || "new"}@${p.version || ""}`, node: undefined, scope: undefined }))}>
            Open flow {sub}
          </button>
        )}
      </div>
      {notice && <p className="muted small" role="status" data-testid="tools-notice">{notice}</p>}
      {importing && <ImportForm flowId={p.flowId} onCancel={() => setImporting(false)} onImport={(d, asNew) => {
        setImporting(false);
        if (asNew) {
          sessionStorage.setItem(DRAFT_KEY, JSON.stringify(d));
          navigate(withQuery({ flow: "new", version: undefined, node: undefined, scope: undefined, draft: 1 }));
          return;
        }
        if (scope.length) navigate(withQuery({ scope: undefined, node: undefined }));
        dispatch({ type: "apply", edit: () => d });
        requestAnimationFrame(() => void flow.fitView({ duration: 0 }));
      }} />}
    </>
  );
}

function ImportForm(props: { flowId: string; onImport(d: FlowDoc, asNew: boolean): void; onCancel(): void }) {
  const [text, setText] = useState("");
  const [asNew, setAsNew] = useState(false);
  const [error, setError] = useState("");
  const read = async (f: File | undefined) => {
    if (!f) return;
    if (f.size > MAX_BYTES) return setError(`${f.name} is over ${MAX_BYTES >> 10} KiB`);
    setText(await f.text());
    setError("");
  };
  const submit = async () => {
    try {
      props.onImport(await parseDoc(text), asNew);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  };
  return (
    <section className="card flow-import" aria-label="Import a flow document">
      <label className="field">
        <span>JSON or YAML file</span>
        <input type="file" accept=".json,.yaml,.yml,application/json,application/yaml,text/yaml" onChange={(e) => void read(e.target.files?.[0])} />
      </label>
      <label className="field">
        <span>Or paste the document</span>
        <textarea rows={8} value={text} maxLength={MAX_BYTES} onChange={(e) => setText(e.target.value)} aria-invalid={error ? true : undefined} />
      </label>
      {props.flowId && (
        <fieldset className="row-actions start">
          <legend className="visually-hidden">Import as</legend>
          <label><input type="radio" name="import-as" checked={!asNew} onChange={() => setAsNew(false)} /> the next version of this flow</label>
          <label><input type="radio" name="import-as" checked={asNew} onChange={() => setAsNew(true)} /> a new flow</label>
        </fieldset>
      )}
      {error && <p className="form-error" role="alert" data-testid="import-error">{error}</p>}
      <div className="row-actions start">
        <button type="button" onClick={() => void submit()} disabled={!text.trim()}>Import</button>
        <button type="button" className="secondary" onClick={props.onCancel}>Cancel</button>
      </div>
      <p className="muted small">The document is checked as you edit; nothing is saved until you save.</p>
    </section>
  );
}
