import { useId } from "react";
import type { ReactNode } from "react";

export interface FieldProps {
  label: string;
  name: string;
  value: string;
  onChange(value: string): void;
  error?: string | undefined;
  type?: string;
  hint?: ReactNode;
  required?: boolean;
  autoComplete?: string;
  /** options make a select; an option with a label shows the label (a name) and sends the value (an id). */
  options?: readonly (string | Option)[];
  /** suggestions are offered while typing (a datalist); anything may still be typed. */
  suggestions?: readonly string[];
}

/** Option is a select's choice: the value sent and the label shown. */
export interface Option {
  value: string;
  label: string;
}

/** Field is a labelled input (or select) with the server's error for it beside it. */
export function Field(p: FieldProps) {
  const id = useId();
  const errId = `${id}-error`;
  const hintId = `${id}-hint`;
  const listId = p.suggestions ? `${id}-list` : undefined;
  const described = [p.error ? errId : "", p.hint ? hintId : ""].filter(Boolean).join(" ") || undefined;
  const common = {
    id,
    name: p.name,
    value: p.value,
    required: p.required,
    "aria-invalid": p.error ? true : undefined,
    "aria-describedby": described,
  };
  return (
    <div className={p.error ? "field field-invalid" : "field"}>
      <label htmlFor={id}>{p.label}</label>
      {p.options ? (
        <select {...common} onChange={(e) => p.onChange(e.target.value)}>
          {p.options.map((o) => {
            const { value, label } = typeof o === "string" ? { value: o, label: o } : o;
            return (
              <option key={value} value={value}>
                {label}
              </option>
            );
          })}
        </select>
      ) : (
        <input {...common} type={p.type ?? "text"} autoComplete={p.autoComplete} list={listId} onChange={(e) => p.onChange(e.target.value)} />
      )}
      {p.suggestions && (
        <datalist id={listId}>
          {p.suggestions.map((o) => (
            <option key={o} value={o} />
          ))}
        </datalist>
      )}
      {p.hint && (
        <div className="field-hint" id={hintId}>
          {p.hint}
        </div>
      )}
      {p.error && (
        <div className="field-error" id={errId} role="alert" data-field-error={p.name}>
          {p.error}
        </div>
      )}
    </div>
  );
}
