import { useEffect, useRef } from "react";

/**
 * useLoad runs load when deps change (load answering null skips the run)
 * and hands its answer to done, or its error to failed, unless deps changed
 * meanwhile: an answer that arrives late never overwrites a newer one.
 */
export function useLoad<T>(load: () => Promise<T> | null, done: (v: T) => void, failed: (e: unknown) => void, deps: readonly unknown[]): void {
  const fns = useRef({ load, done, failed });
  useEffect(() => {
    fns.current = { load, done, failed };
  });
  useEffect(() => {
    const p = fns.current.load();
    if (!p) return;
    let stale = false;
    p.then(
      (v) => !stale && fns.current.done(v),
      (e: unknown) => !stale && fns.current.failed(e),
    );
    return () => void (stale = true);
    // eslint-disable-next-line react-hooks/exhaustive-deps -- deps are the caller's
  }, deps);
}
