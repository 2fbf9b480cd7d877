import { useState } from "react";
import { describe } from "./errors";

/** Action is a button's call in progress: whether it runs, its error, and run to start it. */
export interface Action {
  busy: boolean;
  error: string;
  run(f: () => Promise<void>): Promise<void>;
}

/** useAction runs a button's call, keeping it busy meanwhile and its error after. */
export function useAction(): Action {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  async function run(f: () => Promise<void>) {
    setBusy(true);
    setError("");
    try {
      await f();
    } catch (e) {
      setError(describe(e));
    } finally {
      setBusy(false);
    }
  }
  return { busy, error, run };
}
