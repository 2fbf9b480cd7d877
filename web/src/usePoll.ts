import { useEffect, useRef, useState } from "react";
import { describe } from "./errors";

/** MAX_BACKOFF_MS bounds the wait between polls after failures. */
export const MAX_BACKOFF_MS = 60000;

/** backoffDelay is the wait before the next poll: ms, doubled for each failure in a row, at most MAX_BACKOFF_MS. */
export function backoffDelay(ms: number, failures: number): number {
  return Math.min(ms * 2 ** Math.min(failures, 10), Math.max(ms, MAX_BACKOFF_MS));
}

/**
 * usePoll runs f now and again ms after each run ends, until unmounted. A run
 * that answers false (any other answer is success) failed: the next waits twice as long (backoffDelay), so
 * a server in trouble is not hammered. While the tab is hidden nothing runs;
 * showing it runs f at once.
 */
export function usePoll(f: (signal: { stopped: boolean }) => Promise<unknown>, ms: number, deps: readonly unknown[]): void {
  const fn = useRef(f);
  useEffect(() => {
    fn.current = f;
  });
  useEffect(() => {
    const signal = { stopped: false };
    let timer = 0;
    let failures = 0;
    let paused = false;
    const tick = async () => {
      const ok = await fn.current(signal);
      failures = ok === false ? failures + 1 : 0;
      if (signal.stopped) return;
      if (document.hidden) paused = true;
      else timer = window.setTimeout(() => void tick(), backoffDelay(ms, failures));
    };
    const visibility = () => {
      if (!document.hidden && paused && !signal.stopped) {
        paused = false;
        void tick();
      }
    };
    document.addEventListener("visibilitychange", visibility);
    void tick();
    return () => {
      signal.stopped = true;
      window.clearTimeout(timer);
      document.removeEventListener("visibilitychange", visibility);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps -- deps are the caller's
  }, [ms, ...deps]);
}

/** Polled is what usePolled holds: the latest answer, the latest error, and a way to load again now. */
export interface Polled<T> {
  value: T | null;
  error: string;
  reload(): void;
}

/** usePolled keeps load's answer, refreshed every ms (backing off after errors) and whenever deps change or reload is called. */
export function usePolled<T>(load: () => Promise<T>, ms: number, deps: readonly unknown[]): Polled<T> {
  const [value, setValue] = useState<T | null>(null);
  const [error, setError] = useState("");
  const [n, setN] = useState(0);
  usePoll(
    async (signal) => {
      try {
        const v = await load();
        if (!signal.stopped) {
          setValue(v);
          setError("");
        }
        return true;
      } catch (e) {
        if (!signal.stopped) setError(describe(e));
        return false;
      }
    },
    ms,
    [...deps, n],
  );
  return { value, error, reload: () => setN((x) => x + 1) };
}
