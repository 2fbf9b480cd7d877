// The node's inputs, one field per port: a wire shows as the path it maps
// ($detect.faces), and a value typed here is the input's literal (op "crop",
// margin 0.25), so no input needs the flow document's JSON.
import { useState } from "react";
import type { Port } from "./graph";

/** showInput is the text a field shows for an input's value. */
export function showInput(v: unknown): string {
  if (v === undefined) return "";
  return typeof v === "string" ? v : JSON.stringify(v);
}

/** readInput is the value typed text stands for, by the port's type: "" unsets; numbers, bools and JSON where the type takes them; else the text. */
export function readInput(text: string, type: string): unknown {
  const t = text.trim();
  if (t === "") return undefined;
  if (t.startsWith("$") || type === "string" || type === "image") return text;
  try {
    const v: unknown = JSON.parse(t);
    if ((type === "number" || type === "integer") && typeof v !== "number") return text;
    if (type === "bool" && typeof v !== "boolean") return text;
    return v;
  } catch {
    return text;
  }
}

export function InputFields(props: { ports: Port[]; inputs: Record<string, unknown>; error(name: string): string; onChange(inputs: Record<string, unknown>): void }) {
  const set = (name: string, v: unknown) => {
    const next = Object.fromEntries(Object.entries(props.inputs).filter(([k]) => k !== name));
    if (v !== undefined) next[name] = v;
    props.onChange(next);
  };
  if (props.ports.length === 0) return null;
  return (
    <fieldset className="flow-inputs">
      <legend>Inputs</legend>
      {props.ports.map((p) => <InputField key={p.Name} port={p} value={props.inputs[p.Name]} error={props.error(p.Name)} onChange={(v) => set(p.Name, v)} />)}
    </fieldset>
  );
}

function InputField(props: { port: Port; value: unknown; error: string; onChange(v: unknown): void }) {
  const p = props.port;
  const shown = showInput(props.value);
  const [text, setText] = useState(shown);
  // A wire drawn while the panel is open changes the value: show it, unless what is typed says the same.
  const [seen, setSeen] = useState(shown);
  if (shown !== seen) {
    setSeen(shown);
    if (showInput(readInput(text, p.Type)) !== shown) setText(shown);
  }
  const id = `input-${p.Name}`;
  return (
    <div className={props.error ? "field field-invalid" : "field"} data-field={`inputs.${p.Name}`}>
      <label htmlFor={id}>
        {p.Name}
        {p.Required ? " (required)" : ""}
      </label>
      <input id={id} name={`inputs.${p.Name}`} value={text} aria-invalid={props.error ? true : undefined} aria-describedby={`${id}-hint`} onChange={(e) => {
        setText(e.target.value);
        props.onChange(readInput(e.target.value, p.Type));
      }} />
      <div className="field-hint" id={`${id}-hint`}>
        {p.Type}: wire it on the canvas, or type a value{p.Doc ? `; ${p.Doc}` : ""}
      </div>
      {props.error && <div className="field-error" data-field-error={`inputs.${p.Name}`}>{props.error}</div>}
    </div>
  );
}
