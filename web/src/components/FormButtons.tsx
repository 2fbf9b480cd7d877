/** FormButtons are a form's submit button, busy while it saves, and Cancel. */
export function FormButtons(props: { save: string; busy: boolean; onCancel(): void }) {
  return (
    <div className="buttons">
      <button type="submit" disabled={props.busy}>
        {props.save}
      </button>
      <button type="button" className="secondary" onClick={props.onCancel}>
        Cancel
      </button>
    </div>
  );
}

/** FieldError is the server's error for a group of inputs (a fieldset), shown under it. */
export function FieldError(props: { name: string; error: string | undefined }) {
  if (!props.error) return null;
  return (
    <div className="field-error" role="alert" data-field-error={props.name}>
      {props.error}
    </div>
  );
}
