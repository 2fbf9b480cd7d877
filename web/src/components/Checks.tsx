import { useId } from "react";

/** Choice is one box of a Checks group: the value sent and what a person reads. */
export interface Choice {
  value: string;
  label: string;
  hint?: string;
}

/**
 * Checks is a labelled group of checkboxes choosing several values (roles,
 * devices, tasks), with the server's error for the field beside it. Values
 * chosen that are not among the choices (a device beyond the first page)
 * stay chosen and are shown by value.
 */
export function Checks(p: {
  legend: string;
  name: string;
  choices: readonly Choice[];
  value: readonly string[];
  onChange(value: string[]): void;
  error?: string | undefined;
  empty?: string;
}) {
  const id = useId();
  const errId = `${id}-error`;
  const known = new Set(p.choices.map((c) => c.value));
  const all: Choice[] = [...p.choices, ...p.value.filter((v) => !known.has(v)).map((v) => ({ value: v, label: v }))];
  const toggle = (v: string, on: boolean) => p.onChange(on ? [...p.value, v] : p.value.filter((x) => x !== v));
  return (
    <fieldset className={p.error ? "checks field-invalid" : "checks"} aria-describedby={p.error ? errId : undefined}>
      <legend>{p.legend}</legend>
      {all.length === 0 && p.empty && <p className="muted small">{p.empty}</p>}
      {all.map((c) => (
        <label key={c.value} className="check">
          <input type="checkbox" name={p.name} value={c.value} checked={p.value.includes(c.value)} onChange={(e) => toggle(c.value, e.target.checked)} />
          {c.label} {c.hint && <span className="muted small">{c.hint}</span>}
        </label>
      ))}
      {p.error && (
        <div className="field-error" id={errId} role="alert" data-field-error={p.name}>
          {p.error}
        </div>
      )}
    </fieldset>
  );
}
