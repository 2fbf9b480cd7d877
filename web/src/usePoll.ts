import { useEffect, useRef, useState } from "react";
import { describe } from "./errors";

/** usePoll runs f now and every ms after the previous run ends, until unmounted. */
export function usePoll(f: (signal: { stopped: boolean }) => Promise<void>, ms: number, deps: readonly unknown[]): void {
  const fn = useRef(f);
  useEffect(() => {
    fn.current = f;
  });
  useEffect(() => {
    const signal = { stopped: false };
    let timer = 0;
    const tick = async () => {
      await fn.current(signal);
      if (!signal.stopped) timer = window.setTimeout(() => void tick(), ms);
    };
    void tick();
    return () => {
      signal.stopped = true;
      window.clearTimeout(timer);
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

/** usePolled keeps load's answer, refreshed every ms and whenever deps change or reload is called. */
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
      } catch (e) {
        if (!signal.stopped) setError(describe(e));
      }
    },
    ms,
    [...deps, n],
  );
  return { value, error, reload: () => setN((x) => x + 1) };
}
