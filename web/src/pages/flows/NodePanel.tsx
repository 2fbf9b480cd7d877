// The panel of the selected node: its settings as a form generated from its kind's JSON Schema, its inputs, its problems.
import { useState } from "react";
import { portsOf } from "./graph";
import type { FlowNode, NodeKinds } from "./graph";
import { InputFields } from "./InputFields";
import { readValue, schemaFields, showValue } from "./schema";
import type { SchemaField } from "./schema";
import { ScriptField } from "./ScriptField";
import { ZonePicker } from "./ZonePicker";
import { scriptMarks } from "./scriptMarks";
import type { ScriptMark } from "./scriptMarks";
import type { ValidationError } from "./validation";

export function NodePanel(props: { node: FlowNode; kinds: NodeKinds; errors: ValidationError[]; editable: boolean; projectId: string; onChange(n: FlowNode): void;
  onRename(to: string): string; onRemove(): void; onClose(): void }) {
  const { node } = props;
  // Bumped when a picker rewrites the config, so the fields show what it wrote.
  const [picked, setPicked] = useState(0);
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
      {props.editable && <RenameField id={node.id} onRename={props.onRename} />}
      {rest.length > 0 && (
        <ul className="form-error">
          {rest.map((e) => <li key={`${e.Field}|${e.Message}`}>{e.Field ? `${e.Field}: ${e.Message}` : e.Message}</li>)}
        </ul>
      )}
      <fieldset disabled={!props.editable}>
        <legend>Config</legend>
        {node.kind === "zone" && (
          <ZonePicker projectId={props.projectId} config={node.config ?? {}} editable={props.editable} onChange={(config) => {
            props.onChange({ ...node, config });
            setPicked((n) => n + 1);
          }} />
        )}
        {fields.length === 0 && <p className="muted small">No settings.</p>}
        {fields.map((f) => (
          <ConfigField key={`${f.name}:${picked}`} field={f} value={node.config?.[f.name]} error={errorOf(`config.${f.name}`)} onChange={(v) => setConfig(f.name, v)}
            marks={scriptMarks(props.errors, `config.${f.name}`)} readOnly={!props.editable} />
        ))}
      </fieldset>
      <fieldset disabled={!props.editable}>
        <InputFields ports={portsOf(node, props.kinds).inputs} inputs={node.inputs ?? {}} error={(name) => errorOf(`inputs.${name}`)}
          onChange={(inputs) => props.onChange({ ...node, inputs })} />
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

function ConfigField(props: { field: SchemaField; value: unknown; error: string; marks: ScriptMark[]; readOnly: boolean; onChange(v: unknown): void }) {
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
      ) : f.widget === "script" ? (
        <ScriptField id={id} value={text} readOnly={props.readOnly} marks={props.marks} label={f.name} onChange={set} />
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

// The node's id, renamed in place: the wires that read it follow.
function RenameField(props: { id: string; onRename(to: string): string }) {
  const [text, setText] = useState(props.id);
  const [problem, setProblem] = useState("");
  const submit = () => setProblem(text === props.id ? "" : props.onRename(text.trim()));
  return (
    <form className={problem ? "field field-invalid" : "field"} onSubmit={(e) => {
      e.preventDefault();
      submit();
    }}>
      <label htmlFor="node-id">Id</label>
      <div className="row-actions start">
        <input id="node-id" value={text} maxLength={64} aria-invalid={problem ? true : undefined} aria-describedby={problem ? "node-id-error" : undefined}
          onChange={(e) => setText(e.target.value)} />
        <button type="submit" className="secondary small" disabled={text === props.id}>Rename</button>
      </div>
      {problem && <div className="field-error" id="node-id-error" data-field-error="id">{problem}</div>}
    </form>
  );
}
