import { Fragment, useState } from "react";
import { ApiError, call } from "../api";
import { describe } from "../errors";
import { useLoad } from "../useLoad";

/** Span is a span as DescribeTrace answers it. */
export interface Span {
  TraceId: string;
  SpanId: string;
  ParentSpanId: string;
  Name: string;
  StartTime: string;
  EndTime: string;
  DurationUs: number;
  Status: string;
  StatusMessage?: string;
  ProjectId: string;
  TaskId?: string;
  Attributes: Record<string, string>;
}

/** Bar is one span's row of the waterfall: its depth under its parents and its bar on the trace's time axis, in percent. */
export interface Bar {
  span: Span;
  depth: number;
  leftPct: number;
  widthPct: number;
}

/** MIN_WIDTH_PCT keeps a span of (nearly) no duration visible as a sliver. */
export const MIN_WIDTH_PCT = 0.5;

/**
 * timeUs is an RFC 3339 time in microseconds since the epoch, keeping the
 * microseconds Date.parse drops (the server writes nanoseconds).
 */
export function timeUs(t: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(t);
  if (!m) return Date.parse(t) * 1000;
  const [, base, frac = "", zone] = m;
  return Date.parse(`${base ?? ""}${zone ?? ""}`) * 1000 + Number((frac + "000000").slice(0, 6));
}

/**
 * layoutTrace orders spans as a tree (each under its parent, siblings by
 * start; a span whose parent is not shown is a root) and places each bar on
 * the time axis from the first start to the last end.
 */
export function layoutTrace(spans: readonly Span[]): { bars: Bar[]; totalUs: number } {
  if (spans.length === 0) return { bars: [], totalUs: 0 };
  const start = new Map(spans.map((s) => [s.SpanId, timeUs(s.StartTime)]));
  const t0 = Math.min(...start.values());
  const t1 = Math.max(...spans.map((s) => (start.get(s.SpanId) ?? t0) + Math.max(0, s.DurationUs)));
  const totalUs = Math.max(1, t1 - t0);
  const ids = new Set(spans.map((s) => s.SpanId));
  const children = new Map<string, Span[]>();
  for (const s of spans) {
    const parent = s.ParentSpanId && ids.has(s.ParentSpanId) && s.ParentSpanId !== s.SpanId ? s.ParentSpanId : "";
    children.set(parent, [...(children.get(parent) ?? []), s]);
  }
  for (const list of children.values()) list.sort((a, b) => (start.get(a.SpanId) ?? 0) - (start.get(b.SpanId) ?? 0));
  const bars: Bar[] = [];
  const seen = new Set<string>();
  const visit = (parent: string, depth: number) => {
    for (const s of children.get(parent) ?? []) {
      if (seen.has(s.SpanId)) continue;
      seen.add(s.SpanId);
      const left = (((start.get(s.SpanId) ?? t0) - t0) / totalUs) * 100;
      const width = Math.min(Math.max((Math.max(0, s.DurationUs) / totalUs) * 100, MIN_WIDTH_PCT), 100 - Math.min(left, 100 - MIN_WIDTH_PCT));
      bars.push({ span: s, depth, leftPct: Math.min(left, 100 - MIN_WIDTH_PCT), widthPct: width });
      visit(s.SpanId, depth + 1);
    }
  };
  visit("", 0);
  // Spans on a parent cycle reach no root: show them at the top level.
  for (const s of spans) {
    if (seen.has(s.SpanId)) continue;
    children.set(`cycle:${s.SpanId}`, [s]);
    visit(`cycle:${s.SpanId}`, 0);
  }
  return { bars, totalUs };
}

/** durationText is a duration in µs as a person reads it. */
export function durationText(us: number): string {
  if (us < 1000) return `${us} µs`;
  if (us < 1_000_000) return `${(us / 1000).toFixed(us < 10_000 ? 2 : 1)} ms`;
  return `${(us / 1_000_000).toFixed(2)} s`;
}

/** traceNote is what the page says when DescribeTrace has no trace to show; of is what the trace belongs to ("record", "error"). */
export function traceNote(e: unknown, of = "record"): string {
  if (e instanceof ApiError && e.code === "FailedOperation")
    return `This server keeps no traces in memory. Start it with --otel.recent-traces N (for example 256) to see each ${of}'s path here.`;
  if (e instanceof ApiError && e.code === "ResourceNotFound")
    return `No trace is kept for this ${of}: only a share of messages is traced (--otel.sample-ratio; every failure is), and the server's ring of recent traces (--otel.recent-traces, --otel.recent-bytes) forgets the oldest.`;
  return describe(e);
}

/** firstFailure is the failed span where a failure began: the earliest failed span none of whose children failed; "" when none failed. */
export function firstFailure(spans: readonly Span[]): string {
  const failed = spans.filter((s) => s.Status === "error");
  const parents = new Set(failed.map((s) => s.ParentSpanId));
  const leaves = failed.filter((s) => !parents.has(s.SpanId));
  leaves.sort((a, b) => timeUs(a.StartTime) - timeUs(b.StartTime));
  return leaves[0]?.SpanId ?? "";
}

/** TraceOf names the trace to show: the one that wrote a record, or one by its id (a node error's). */
export type TraceOf = { recordId: string; traceId?: undefined } | { traceId: string; recordId?: undefined };

/** TraceWaterfall shows a trace (the one that wrote a record, or one by id): spans as bars on a time axis, indented by parent; a click shows a span's attributes, and failed spans are marked. */
export function TraceWaterfall(props: TraceOf) {
  const [spans, setSpans] = useState<Span[] | null>(null);
  const [note, setNote] = useState("");
  const [open, setOpen] = useState("");
  const key = props.recordId ?? props.traceId;
  useLoad(
    () => {
      setSpans(null);
      setNote("");
      return call<{ TraceId: string; SpanSet: Span[] }>("DescribeTrace", props.recordId !== undefined ? { RecordId: props.recordId } : { TraceId: props.traceId });
    },
    (r) => {
      setSpans(r.SpanSet);
      // An error's trace opens at the span that failed, its message shown.
      if (props.traceId !== undefined) setOpen(firstFailure(r.SpanSet));
    },
    (e) => setNote(traceNote(e, props.recordId !== undefined ? "record" : "error")),
    [key],
  );
  if (note) return <p className="muted small" data-testid="trace-note">{note}</p>;
  if (!spans) return null;
  const { bars, totalUs } = layoutTrace(spans);
  const chosen = bars.find((b) => b.span.SpanId === open)?.span;
  return (
    <div className="card trace" aria-label="Trace">
      <p className="muted small">
        Trace {spans[0]?.TraceId}: {bars.length} spans over {durationText(totalUs)}.
      </p>
      <ol className="waterfall">
        {bars.map((b) => (
          <li key={b.span.SpanId} data-testid="span-row" data-status={b.span.Status}>
            <button type="button" className="span-name" style={{ paddingLeft: `${b.depth}rem` }} aria-expanded={open === b.span.SpanId}
              onClick={() => setOpen(open === b.span.SpanId ? "" : b.span.SpanId)}>
              {b.span.Name}
              {b.span.Status === "error" && <span className="span-failed"> failed</span>}
            </button>
            <span className="span-track">
              <span className={`span-bar${b.span.Status === "error" ? " span-error" : ""}`} style={{ left: `${b.leftPct}%`, width: `${b.widthPct}%` }}
                title={durationText(b.span.DurationUs)} />
            </span>
            <span className="small muted span-dur">{durationText(b.span.DurationUs)}</span>
          </li>
        ))}
      </ol>
      {chosen && (
        <dl className="facts" data-testid="span-attributes">
          <dt>Span</dt>
          <dd>{chosen.Name} ({chosen.SpanId})</dd>
          <dt>Start</dt>
          <dd>{chosen.StartTime}</dd>
          {chosen.StatusMessage && (
            <>
              <dt>Error</dt>
              <dd>{chosen.StatusMessage}</dd>
            </>
          )}
          {Object.entries(chosen.Attributes ?? {}).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => (
            <Fragment key={k}>
              <dt>{k}</dt>
              <dd>{v}</dd>
            </Fragment>
          ))}
        </dl>
      )}
    </div>
  );
}
