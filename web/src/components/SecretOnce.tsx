import { useEffect, useId, useRef, useState } from "react";
import type { KeyboardEvent } from "react";

/** Shown is one value the dialog shows: an id or the secret itself. */
export interface Shown {
  label: string;
  value: string;
}

/**
 * SecretOnce is the dialog that shows a secret the server answered once
 * (a key pair's SecretKey, a webhook secret), with a copy button per value
 * and a warning that it will not be shown again. It keeps the secret only
 * in the caller's state: not in the URL, not in storage, so closing the
 * dialog or reloading the page loses it for good. It closes only on its
 * button, so that a stray Escape does not lose a secret not yet copied.
 */
export function SecretOnce(props: { title: string; what: string; values: readonly Shown[]; onClose(): void }) {
  const id = useId();
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    box.current?.querySelector<HTMLElement>("button")?.focus();
  }, []);
  // Tab stays within the dialog while it is open.
  function trap(e: KeyboardEvent<HTMLDivElement>) {
    if (e.key !== "Tab" || !box.current) return;
    const all = [...box.current.querySelectorAll<HTMLElement>("button, input")];
    const first = all[0];
    const last = all[all.length - 1];
    if (e.shiftKey && document.activeElement === first) {
      e.preventDefault();
      last?.focus();
    } else if (!e.shiftKey && document.activeElement === last) {
      e.preventDefault();
      first?.focus();
    }
  }
  return (
    <div className="backdrop">
      <div ref={box} className="dialog card" role="dialog" aria-modal="true" aria-labelledby={`${id}-title`}
        aria-describedby={`${id}-warning`} onKeyDown={trap}>
        <h2 id={`${id}-title`}>{props.title}</h2>
        <p id={`${id}-warning`} className="warning" role="note">
          Copy the {props.what} now: this is the only time it is shown. Tianshu does not show it again, on any page or
          through any action; if it is lost, make a new one.
        </p>
        {props.values.map((v) => (
          <CopyValue key={v.label} shown={v} />
        ))}
        <div className="buttons">
          <button type="button" onClick={props.onClose}>
            I have saved it, close
          </button>
        </div>
      </div>
    </div>
  );
}

function CopyValue(props: { shown: Shown }) {
  const id = useId();
  const [state, setState] = useState("");
  async function copy() {
    try {
      await navigator.clipboard.writeText(props.shown.value);
      setState("Copied.");
    } catch {
      // Without clipboard access (an insecure origin, a denied permission) the value can still be selected by hand.
      setState("Copying is not allowed here: select the value and copy it.");
    }
  }
  return (
    <div className="field">
      <label htmlFor={id}>{props.shown.label}</label>
      <div className="copy-row">
        <input id={id} readOnly value={props.shown.value} className="secret-value" onFocus={(e) => e.target.select()}
          spellCheck={false} autoComplete="off" data-secret-value={props.shown.label} />
        <button type="button" className="secondary" onClick={() => void copy()} aria-label={`Copy ${props.shown.label}`}>
          Copy
        </button>
      </div>
      <div className="field-hint" aria-live="polite">
        {state}
      </div>
    </div>
  );
}
