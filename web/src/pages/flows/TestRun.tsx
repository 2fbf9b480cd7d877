// Test runs in the flow editor: pick an input (an uploaded picture or short
// video, a device's current snapshot, a stored record's picture), run the
// document being edited with RunFlowTest, or one node alone on the outputs
// pinned from the latest whole run; each node shows its result on the
// canvas, the selected node its output, its picture with the boxes drawn,
// and its last runs to compare two side by side.
import { useEffect, useId, useMemo, useState } from "react";
import { call } from "../../api";
import { ErrorLine } from "../../components/ListTable";
import { upload } from "../../tus";
import "./testrun.css";
import { useAction } from "../../useAction";
import type { Action } from "../../useAction";
import type { Device, RecordInfo } from "../../types";
import type { FlowDoc } from "./graph";
import { boxesOf, isPicture, KEEP, loadHistory, ms, nextSeq, pictureOf, pinnedFor, remember, saveHistory, summary } from "./runs";
import type { Box, History, NodeRun, PictureRef, RunEntry, TestRunResponse } from "./runs";

type Source = "upload" | "device" | "record";

/** Latest is the latest whole run of the flow, whose outputs single-node runs pin. */
interface Latest {
  seq: number;
  label: string;
  resp: TestRunResponse;
}

/** TestRun is the editor's test-run state, from useTestRun. */
export interface TestRun {
  projectId: string;
  source: Source;
  setSource(s: Source): void;
  file: File | null;
  setFile(f: File | null): void;
  deviceId: string;
  setDeviceId(id: string): void;
  recordId: string;
  setRecordId(id: string): void;
  devices: Device[];
  records: RecordInfo[];
  action: Action;
  progress: string;
  latest?: Latest;
  frame: number;
  setFrame(n: number): void;
  history: History;
  /** shown is what each node shows on the canvas: its latest result (at the chosen frame of a video run). */
  shown: Record<string, NodeRun>;
  /** framePicture is the chosen frame's picture of a video run. */
  framePicture?: PictureRef;
  runFlow(): void;
  runNode(id: string): void;
}

/** useTestRun keeps a flow's test runs: the input chosen, the latest whole run, and the last KEEP runs of each node. */
export function useTestRun(projectId: string, flowId: string, doc: FlowDoc | undefined, enabled: boolean): TestRun {
  const key = `${projectId}/${flowId || "new"}`;
  const [source, setSource] = useState<Source>("upload");
  const [file, setFile] = useState<File | null>(null);
  const [uploaded, setUploaded] = useState<{ file: File; id: string } | null>(null);
  const [deviceId, setDeviceId] = useState("");
  const [recordId, setRecordId] = useState("");
  const [devices, setDevices] = useState<Device[]>([]);
  const [records, setRecords] = useState<RecordInfo[]>([]);
  const [progress, setProgress] = useState("");
  const [latest, setLatest] = useState<Latest>();
  const [frame, setFrame] = useState(0);
  const [history, setHistory] = useState<History>(() => loadHistory(sessionStorage, key));
  const action = useAction();

  useEffect(() => setHistory(loadHistory(sessionStorage, key)), [key]);
  useEffect(() => saveHistory(sessionStorage, key, history), [key, history]);

  // The lists are read when their source is picked, not before.
  useEffect(() => {
    if (!enabled) return;
    let stale = false;
    if (source === "device" && devices.length === 0) {
      call<{ DeviceSet: Device[] }>("DescribeDevices", { ProjectId: projectId, Limit: 100 })
        .then((r) => !stale && setDevices(r.DeviceSet ?? []))
        .catch(() => undefined);
    }
    if (source === "record" && records.length === 0) {
      call<{ RecordSet: RecordInfo[] }>("DescribeRecords", { ProjectId: projectId, Limit: 20 })
        .then((r) => !stale && setRecords((r.RecordSet ?? []).filter((x) => (x.ObjectKeys ?? []).length > 0)))
        .catch(() => undefined);
    }
    return () => {
      stale = true;
    };
  }, [enabled, source, projectId, devices.length, records.length]);

  const sourceBody = async (): Promise<{ body: Record<string, string>; label: string }> => {
    if (source === "device") {
      if (!deviceId) throw new Error("Choose a device.");
      return { body: { DeviceId: deviceId }, label: devices.find((d) => d.DeviceId === deviceId)?.Name ?? deviceId };
    }
    if (source === "record") {
      if (!recordId) throw new Error("Choose a record.");
      return { body: { RecordId: recordId }, label: recordId };
    }
    if (!file) throw new Error("Choose a picture or a short video.");
    let id = uploaded?.file === file ? uploaded.id : "";
    if (!id) {
      const t = await call<{ Token: string; Endpoint: string }>("CreateUploadToken", { ProjectId: projectId, MaxSize: file.size });
      id = await upload({ endpoint: t.Endpoint || "/files/", token: t.Token, file, name: file.name, scope: projectId,
        onProgress: (sent, total) => setProgress(total > 0 ? `Uploading ${Math.floor((100 * sent) / total)}%` : "") });
      setProgress("");
      setUploaded({ file, id });
    }
    return { body: { UploadId: id }, label: file.name };
  };

  const runFlow = () => void action.run(async () => {
    if (!doc) return;
    const { body, label } = await sourceBody();
    const resp = await call<TestRunResponse>("RunFlowTest", { ProjectId: projectId, Document: doc, ...body });
    const seq = nextSeq(history);
    const frames = resp.FrameSet ?? [];
    const last = frames.length > 0 ? frames[frames.length - 1] : undefined;
    setLatest({ seq, label, resp });
    setFrame(frames.length > 0 ? frames.length : 0);
    setHistory((h) => remember(h, last ? last.NodeSet : resp.NodeSet, { seq, at: new Date().toISOString(), mode: "flow", input: label,
      frame: last?.Frame, picture: pictureOf(last ? last.Input : resp.Input) }));
  });

  // A node alone, on the outputs its upstream nodes had in the latest whole run (at the chosen frame of a video),
  // and on the same input message: its picture goes back as the reference the run answered.
  const runNode = (id: string) => void action.run(async () => {
    if (!doc) return;
    if (!latest) throw new Error("Run the whole flow first: a node runs alone on the outputs its upstream nodes had then.");
    const f = latest.resp.FrameSet?.[frame - 1];
    const nodes = f ? f.NodeSet : latest.resp.NodeSet;
    const input = (f ? f.Input : latest.resp.Input) ?? {};
    const resp = await call<TestRunResponse>("RunFlowTest", { ProjectId: projectId, Document: doc, NodeId: id, PinnedOutputs: pinnedFor(doc, id, nodes), Input: input });
    const seq = nextSeq(history);
    setHistory((h) => remember(h, resp.NodeSet, { seq, at: new Date().toISOString(), mode: "node", input: latest.label, frame: f?.Frame,
      picture: pictureOf(resp.Input) }));
  });

  const shown = useMemo(() => {
    const out: Record<string, NodeRun> = {};
    for (const [id, runs] of Object.entries(history)) if (runs[0]) out[id] = runs[0].node;
    const f = latest?.resp.FrameSet?.[frame - 1];
    if (f && latest) {
      for (const n of f.NodeSet) if (history[n.NodeId]?.[0]?.seq === latest.seq) out[n.NodeId] = n;
    }
    return out;
  }, [history, latest, frame]);

  const f = latest?.resp.FrameSet?.[frame - 1];
  const framePicture = f ? pictureOf(f.Input) : undefined;
  return { projectId, source, setSource, file, setFile, deviceId, setDeviceId, recordId, setRecordId, devices, records, action, progress,
    latest, frame, setFrame, history, shown, framePicture, runFlow, runNode };
}

/** TestRunBar picks the input and runs the flow. */
export function TestRunBar(props: { t: TestRun; nodeId: string }) {
  const { t } = props;
  const id = useId();
  return (
    <div className="testrun-bar card" role="group" aria-label="Test run">
      <label className="inline-field">
        <span>Test input</span>
        <select value={t.source} onChange={(e) => t.setSource(e.target.value as Source)}>
          <option value="upload">Upload a picture or short video</option>
          <option value="device">A device's current snapshot</option>
          <option value="record">A stored record's picture</option>
        </select>
      </label>
      {t.source === "upload" && (
        <label className="inline-field">
          <span>File</span>
          <input id={`${id}-file`} type="file" accept="image/*,video/*" onChange={(e) => t.setFile(e.target.files?.[0] ?? null)} />
        </label>
      )}
      {t.source === "device" && (
        <label className="inline-field">
          <span>Device</span>
          <select value={t.deviceId} onChange={(e) => t.setDeviceId(e.target.value)}>
            <option value="">choose…</option>
            {t.devices.map((d) => <option key={d.DeviceId} value={d.DeviceId}>{d.Name} ({d.Status})</option>)}
          </select>
        </label>
      )}
      {t.source === "record" && (
        <label className="inline-field">
          <span>Record</span>
          <select value={t.recordId} onChange={(e) => t.setRecordId(e.target.value)}>
            <option value="">choose…</option>
            {t.records.map((r) => <option key={r.RecordId} value={r.RecordId}>{r.Type} {r.RecordId} {r.Time?.slice(11, 19)}</option>)}
          </select>
        </label>
      )}
      <button type="button" disabled={t.action.busy} onClick={t.runFlow}>
        {t.action.busy ? "Running…" : "Run flow"}
      </button>
      {props.nodeId && (
        <button type="button" className="secondary" disabled={t.action.busy || !t.latest} onClick={() => t.runNode(props.nodeId)}
          title={t.latest ? `Run ${props.nodeId} alone on the outputs pinned from run #${t.latest.seq}` : "Run the whole flow first"}>
          Run this node
        </button>
      )}
      <span className="muted small" role="status" data-testid="testrun-status">
        {t.progress || (t.latest ? runLine(t.latest) : "")}
      </span>
      <ErrorLine error={t.action.error} />
    </div>
  );
}

function runLine(l: Latest): string {
  const r = l.resp;
  const frames = r.FrameSet?.length ?? 0;
  return [`Run #${l.seq} on ${l.label}`, frames > 0 ? `${frames} frames` : "", ms(r.DurationUs), `${r.RecordSet.length} records, ${r.EventSet.length} events captured`,
    r.RunError ? `failed: ${r.RunError}` : ""].filter(Boolean).join(" · ");
}

/** NodeResult is a node's latest result as its canvas box shows it. */
export function NodeResult(props: { run: NodeRun }) {
  const r = props.run;
  return (
    <div className={`flow-node-result ${r.Status === "ok" ? "result-ok" : "result-bad"}`} data-testid="node-result" title={r.Error || summary(r)}>
      {r.Status} · {ms(r.DurationUs)}
      {r.Status === "ok" || r.Error ? ` · ${r.Status === "ok" ? summary(r) : r.Error}` : ""}
    </div>
  );
}

/** TestRunResults shows the latest run below the editor: the frame slider of a video, and the selected node's runs. */
export function TestRunResults(props: { t: TestRun; nodeId: string; onSelect(id: string): void }) {
  const { t, nodeId } = props;
  const frames = t.latest?.resp.FrameSet ?? [];
  if (!t.latest && Object.keys(t.history).length === 0) return null;
  return (
    <section className="testrun-results card" aria-labelledby="testrun-title">
      <h2 id="testrun-title">{nodeId ? `Test runs of ${nodeId}` : "Test run"}</h2>
      {frames.length > 0 && (
        <label className="inline-field testrun-frame">
          <span data-testid="testrun-frame">Frame {t.frame} of {frames.length} ({((frames[t.frame - 1]?.TimeMs ?? 0) / 1000).toFixed(1)} s)</span>
          <input type="range" min={1} max={frames.length} value={t.frame} onChange={(e) => t.setFrame(Number(e.target.value))} aria-label="Frame" />
        </label>
      )}
      {nodeId ? <NodeRuns key={nodeId} t={t} nodeId={nodeId} /> : <RunNodes t={t} onSelect={props.onSelect} />}
    </section>
  );
}

/** RunNodes lists every node's latest result, and what the sinks would have written. */
function RunNodes(props: { t: TestRun; onSelect(id: string): void }) {
  const { t } = props;
  const r = t.latest?.resp;
  return (
    <>
      <table className="testrun-table">
        <thead>
          <tr><th>Node</th><th>Status</th><th>Time</th><th>Result</th></tr>
        </thead>
        <tbody>
          {Object.entries(t.shown).map(([id, n]) => (
            <tr key={id}>
              <td><button type="button" className="secondary small" onClick={() => props.onSelect(id)}>{id}</button></td>
              <td>{n.Status}</td>
              <td>{ms(n.DurationUs)}</td>
              <td>{summary(n)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {r && r.RecordSet.length + r.EventSet.length > 0 && (
        <details>
          <summary>{r.RecordSet.length} records and {r.EventSet.length} events captured (not written)</summary>
          <pre className="testrun-json">{JSON.stringify({ RecordSet: r.RecordSet, EventSet: r.EventSet }, null, 1)}</pre>
        </details>
      )}
    </>
  );
}

/** NodeRuns shows a node's latest result and its last runs; two checked runs are shown side by side. */
function NodeRuns(props: { t: TestRun; nodeId: string }) {
  const runs = props.t.history[props.nodeId] ?? [];
  const [picked, setPicked] = useState<number[]>([]);
  const current = props.t.shown[props.nodeId];
  // The latest run of a video shows the chosen frame.
  const head = runs[0] && props.t.framePicture && runs[0].seq === props.t.latest?.seq ? { ...runs[0], picture: props.t.framePicture, frame: props.t.frame } : runs[0];
  const compare = picked.map((seq) => runs.find((r) => r.seq === seq)).filter((r): r is RunEntry => r !== undefined);
  const toggle = (seq: number) => setPicked((p) => (p.includes(seq) ? p.filter((s) => s !== seq) : [...p, seq].slice(-2)));
  if (!current || !head) return <p className="muted small">This node has not run yet.</p>;
  return (
    <>
      {compare.length === 2 ? (
        <div className="testrun-compare" data-testid="testrun-compare">
          {compare.map((r) => <RunView key={r.seq} entry={r} run={r.node} title={`Run #${r.seq}`} />)}
        </div>
      ) : (
        <RunView entry={head} run={current} title={`Latest: run #${head.seq}`} />
      )}
      <h3>Last {KEEP} runs</h3>
      <table className="testrun-table" data-testid="testrun-history">
        <thead>
          <tr><th>Compare</th><th>Run</th><th>When</th><th>How</th><th>Input</th><th>Status</th><th>Time</th><th>Result</th></tr>
        </thead>
        <tbody>
          {runs.map((r) => (
            <tr key={r.seq}>
              <td><input type="checkbox" checked={picked.includes(r.seq)} onChange={() => toggle(r.seq)} aria-label={`Compare run ${r.seq}`} /></td>
              <td>#{r.seq}</td>
              <td>{new Date(r.at).toLocaleTimeString()}</td>
              <td>{r.mode === "flow" ? "whole flow" : "node alone"}</td>
              <td>{r.input}{r.frame ? ` frame ${r.frame}` : ""}</td>
              <td>{r.node.Status}</td>
              <td>{ms(r.node.DurationUs)}</td>
              <td>{summary(r.node)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {compare.length < 2 && runs.length > 1 && <p className="muted small">Check two runs to compare them side by side.</p>}
    </>
  );
}

/** RunView is one run of a node: its status and time, its picture with the boxes drawn, its output as JSON. */
function RunView(props: { entry: RunEntry; run: NodeRun; title: string }) {
  const r = props.run;
  const boxes = boxesOf(r.Output);
  // Boxes are in the frame's pixels: draw them over the run's input picture; a node without boxes shows its own picture.
  const pic = boxes.length > 0 && props.entry.picture ? props.entry.picture : pictureOf(r.Output) ?? props.entry.picture;
  return (
    <div className="testrun-run" data-testid="testrun-run">
      <h3>
        {props.title}: {r.Status} · {ms(r.DurationUs)} · {summary(r)}
      </h3>
      {r.Error && <p className="form-error">{r.Error}</p>}
      {pic && <BoxedPicture picture={pic} boxes={boxes} />}
      <pre className="testrun-json" data-testid="testrun-output">{JSON.stringify(r.Output ?? null, shortRefs, 1)}</pre>
    </div>
  );
}

// Picture references are long signed URLs: the JSON shows their key and size.
function shortRefs(_k: string, v: unknown): unknown {
  return isPicture(v) ? { picture: v.ObjectKey ?? v.Omitted, ContentType: v.ContentType, Size: v.Size } : v;
}

/** BoxedPicture draws boxes over a picture, in the picture's own pixels (an SVG whose viewBox is the picture's size). */
export function BoxedPicture(props: { picture: PictureRef; boxes: Box[] }) {
  const [size, setSize] = useState<{ w: number; h: number }>();
  const line = size ? Math.max(2, Math.round(size.w / 300)) : 2;
  return (
    <figure className="testrun-picture">
      <img src={props.picture.ObjectUrl} alt="test run picture" onLoad={(e) => setSize({ w: e.currentTarget.naturalWidth, h: e.currentTarget.naturalHeight })} />
      {size && props.boxes.length > 0 && (
        <svg viewBox={`0 0 ${size.w} ${size.h}`} preserveAspectRatio="none" data-testid="testrun-boxes" aria-label={`${props.boxes.length} boxes`}>
          {props.boxes.map((b, i) => (
            <g key={i}>
              <rect x={b.box[0]} y={b.box[1]} width={b.box[2]} height={b.box[3]} strokeWidth={line} />
              <text x={b.box[0]} y={Math.max(b.box[1] - line * 2, line * 6)} fontSize={line * 7}>
                {[b.trackId !== undefined ? `#${b.trackId}` : b.label, b.score !== undefined ? b.score.toFixed(2) : ""].filter(Boolean).join(" ")}
              </text>
            </g>
          ))}
        </svg>
      )}
    </figure>
  );
}
