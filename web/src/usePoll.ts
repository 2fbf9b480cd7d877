import { useEffect, useRef } from "react";

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
