import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { stubActions } from "../testServer";
import { durationText, firstFailure, layoutTrace, MIN_WIDTH_PCT, timeUs, TraceWaterfall } from "./TraceWaterfall";
import type { Span } from "./TraceWaterfall";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const span = (id: string, parent: string, start: string, us: number, name = id): Span => ({
  TraceId: "t1", SpanId: id, ParentSpanId: parent, Name: name, StartTime: start, EndTime: "", DurationUs: us,
  Status: "ok", ProjectId: "default", Attributes: { "tianshu.node": name },
});

describe("timeUs", () => {
  it("keeps the microseconds of a nanosecond time", () => {
    expect(timeUs("2026-12-07T00:00:00.000123456Z") - timeUs("2026-12-07T00:00:00Z")).toBe(123);
    expect(timeUs("2026-12-07T01:00:00.5+01:00")).toBe(timeUs("2026-12-07T00:00:00.5Z"));
  });
});

describe("layoutTrace", () => {
  it("nests children under parents, orders siblings by start, and scales bars to the trace", () => {
    // message 0..1000 µs; detect 100..600 under it; store 600..900 after detect; a call 200..400 under detect.
    const spans = [
      span("store", "msg", "2026-12-07T00:00:00.000600Z", 300),
      span("call", "detect", "2026-12-07T00:00:00.000200Z", 200),
      span("msg", "", "2026-12-07T00:00:00Z", 1000),
      span("detect", "msg", "2026-12-07T00:00:00.000100Z", 500),
    ];
    const { bars, totalUs } = layoutTrace(spans);
    expect(totalUs).toBe(1000);
    expect(bars.map((b) => [b.span.SpanId, b.depth, b.leftPct, b.widthPct])).toEqual([
      ["msg", 0, 0, 100],
      ["detect", 1, 10, 50],
      ["call", 2, 20, 20],
      ["store", 1, 60, 30],
    ]);
  });
  it("makes a span whose parent is not shown a root, keeps tiny spans visible and inside the axis", () => {
    const { bars } = layoutTrace([
      span("a", "gone", "2026-12-07T00:00:00Z", 1_000_000),
      span("b", "a", "2026-12-07T00:00:01Z", 0),
    ]);
    expect(bars[0]?.depth).toBe(0);
    expect(bars[1]?.widthPct).toBe(MIN_WIDTH_PCT);
    expect((bars[1]?.leftPct ?? 0) + (bars[1]?.widthPct ?? 0)).toBeLessThanOrEqual(100);
  });
  it("shows every span of a parent cycle once", () => {
    const { bars } = layoutTrace([span("a", "b", "2026-12-07T00:00:00Z", 10), span("b", "a", "2026-12-07T00:00:00Z", 10)]);
    expect(bars.map((b) => b.span.SpanId).sort()).toEqual(["a", "b"]);
  });
  it("is empty for no spans", () => {
    expect(layoutTrace([])).toEqual({ bars: [], totalUs: 0 });
  });
});

describe("firstFailure", () => {
  it("is the earliest failed span without a failed child", () => {
    const failed = (s: Span) => ({ ...s, Status: "error" });
    expect(firstFailure([
      failed(span("msg", "", "2026-12-07T00:00:00Z", 1000)),
      failed(span("detect", "msg", "2026-12-07T00:00:00.0001Z", 500)),
      failed(span("call", "detect", "2026-12-07T00:00:00.0002Z", 200)),
      failed(span("later", "msg", "2026-12-07T00:00:00.0007Z", 10)),
      span("ok", "msg", "2026-12-07T00:00:00.00005Z", 10),
    ])).toBe("call");
    expect(firstFailure([span("ok", "", "2026-12-07T00:00:00Z", 10)])).toBe("");
  });
});

describe("durationText", () => {
  it("picks a unit", () => {
    expect([durationText(12), durationText(1500), durationText(250_000), durationText(2_500_000)]).toEqual(["12 µs", "1.50 ms", "250.0 ms", "2.50 s"]);
  });
});

describe("TraceWaterfall", () => {
  it("shows the spans and a span's attributes on click", async () => {
    stubActions({ DescribeTrace: () => ({ TraceId: "t1", SpanSet: [span("msg", "", "2026-12-07T00:00:00Z", 1000, "task.message"), span("d", "msg", "2026-12-07T00:00:00.0001Z", 500, "node detect")] }) });
    render(<TraceWaterfall recordId="rec-1" />);
    fireEvent.click(await screen.findByRole("button", { name: "node detect" }));
    expect(screen.getByTestId("span-attributes").textContent).toContain("tianshu.node");
    expect(screen.getAllByTestId("span-row")).toHaveLength(2);
  });
  it("reads a trace by id and marks its failed spans", async () => {
    const sent = stubActions({ DescribeTrace: () => ({ TraceId: "t1", SpanSet: [{ ...span("msg", "", "2026-12-07T00:00:00Z", 1000, "task.message"), Status: "error", StatusMessage: "boom" }] }) });
    render(<TraceWaterfall traceId="t1" />);
    const row = await screen.findByTestId("span-row");
    expect(sent[0]?.body).toEqual({ TraceId: "t1" });
    expect(row.getAttribute("data-status")).toBe("error");
    expect(row.querySelector(".span-bar.span-error")).not.toBeNull();
    expect(screen.getByTestId("span-attributes").textContent).toContain("boom");
  });
  it("says an error's trace was forgotten", async () => {
    stubActions({ DescribeTrace: () => ({ Error: { Code: "ResourceNotFound", Message: "TraceId t1 not found" } }) });
    render(<TraceWaterfall traceId="t1" />);
    expect((await screen.findByTestId("trace-note")).textContent).toContain("No trace is kept for this error");
  });
  it("says how to turn traces on when the server keeps none", async () => {
    stubActions({ DescribeTrace: () => ({ Error: { Code: "FailedOperation", Message: "tracing in memory is off on this server: set --otel.recent-traces" } }) });
    render(<TraceWaterfall recordId="rec-1" />);
    expect((await screen.findByTestId("trace-note")).textContent).toContain("--otel.recent-traces");
  });
});
