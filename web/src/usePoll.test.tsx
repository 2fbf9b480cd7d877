// usePoll's schedule: it backs off after failures and waits while the tab
// is hidden. Fake timers stand in for waiting; nothing else is replaced.
import { afterEach, describe, expect, it, vi } from "vitest";
import { act, cleanup, render } from "@testing-library/react";
import { backoffDelay, MAX_BACKOFF_MS, usePoll } from "./usePoll";

function Poller(props: { f: () => Promise<boolean> }) {
  usePoll(props.f, 1000, []);
  return null;
}

function hide(hidden: boolean) {
  Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
  document.dispatchEvent(new Event("visibilitychange"));
}

afterEach(() => {
  cleanup();
  vi.useRealTimers();
  hide(false);
});

describe("backoffDelay", () => {
  it("doubles per failure in a row, up to the cap", () => {
    expect(backoffDelay(5000, 0)).toBe(5000);
    expect(backoffDelay(5000, 1)).toBe(10000);
    expect(backoffDelay(5000, 3)).toBe(40000);
    expect(backoffDelay(5000, 4)).toBe(MAX_BACKOFF_MS);
    expect(backoffDelay(5000, 50)).toBe(MAX_BACKOFF_MS);
  });
});

describe("usePoll", () => {
  it("waits longer after each failure and polls at its pace again after a success", async () => {
    vi.useFakeTimers();
    let ok = false;
    const f = vi.fn(async () => ok);
    render(<Poller f={f} />);
    await act(async () => {});
    expect(f).toHaveBeenCalledTimes(1);
    await act(() => vi.advanceTimersByTimeAsync(1000)); // 1 failure: next after 2 s
    expect(f).toHaveBeenCalledTimes(1);
    await act(() => vi.advanceTimersByTimeAsync(1000));
    expect(f).toHaveBeenCalledTimes(2);
    ok = true;
    await act(() => vi.advanceTimersByTimeAsync(4000)); // 2 failures: next after 4 s, which succeeds
    expect(f).toHaveBeenCalledTimes(3);
    await act(() => vi.advanceTimersByTimeAsync(1000));
    expect(f).toHaveBeenCalledTimes(4);
  });

  it("stops while the tab is hidden and polls at once when it is shown", async () => {
    vi.useFakeTimers();
    const f = vi.fn(async () => true);
    render(<Poller f={f} />);
    await act(async () => {});
    hide(true);
    await act(() => vi.advanceTimersByTimeAsync(1000)); // this run finds the tab hidden and schedules nothing
    const n = f.mock.calls.length;
    await act(() => vi.advanceTimersByTimeAsync(10000));
    expect(f).toHaveBeenCalledTimes(n);
    await act(async () => hide(false));
    expect(f).toHaveBeenCalledTimes(n + 1);
  });
});
