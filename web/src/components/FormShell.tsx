import { useState } from "react";
import type { FormEvent, ReactNode } from "react";
import { formErrors, noErrors } from "../errors";
import type { FormErrors } from "../errors";
import { ErrorLine } from "./ListTable";

/** FormShell is a card form with its title, its error above, and its Save button (and Cancel, given onCancel). */
export function FormShell(props: { id: string; title: string; save: string; busy: boolean; error: string | undefined; onSubmit(e: FormEvent): void;
  onCancel?: () => void; children: ReactNode }) {
  return (
    <form className="card" onSubmit={props.onSubmit} aria-labelledby={props.id} noValidate>
      <h2 id={props.id}>{props.title}</h2>
      <ErrorLine error={props.error} />
      <div className="form-grid">{props.children}</div>
      <div className="buttons">
        <button type="submit" disabled={props.busy}>
          {props.save}
        </button>
        {props.onCancel && (
          <button type="button" className="secondary" onClick={props.onCancel}>
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}

/** useForm runs a form's call, placing its error next to the field it names. */
export function useForm(fields: readonly string[]) {
  const [errors, setErrors] = useState<FormErrors>(noErrors);
  const [busy, setBusy] = useState(false);
  async function submit(e: FormEvent, f: () => Promise<void>) {
    e.preventDefault();
    setBusy(true);
    setErrors(noErrors);
    try {
      await f();
    } catch (err) {
      setErrors(formErrors(err, fields));
    } finally {
      setBusy(false);
    }
  }
  return { errors, busy, submit };
}

