import { useState } from "react";
import { call } from "../api";
import { describe } from "../errors";

/** ConfirmDelete is a Delete button (or verb: Remove, Revoke) that asks once more, then calls action with body and shows its error. */
export function ConfirmDelete(props: { name: string; action: string; body: object; onDeleted(): void; verb?: string }) {
  const verb = props.verb ?? "Delete";
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState("");
  async function run() {
    try {
      await call(props.action, props.body);
      props.onDeleted();
    } catch (e) {
      setError(describe(e));
      setConfirming(false);
    }
  }
  return (
    <>
      {!confirming && (
        <button type="button" className="secondary" onClick={() => setConfirming(true)} aria-label={`${verb} ${props.name}`}>
          {verb}
        </button>
      )}
      {confirming && (
        <>
          <button type="button" className="danger" onClick={() => void run()} aria-label={`Confirm ${verb === "Delete" ? "deleting" : verb.toLowerCase()} ${props.name}`}>
            Confirm {verb.toLowerCase()}
          </button>
          <button type="button" className="secondary" onClick={() => setConfirming(false)}>
            Cancel
          </button>
        </>
      )}
      {error && (
        <div className="form-error" role="alert">
          {error}
        </div>
      )}
    </>
  );
}
