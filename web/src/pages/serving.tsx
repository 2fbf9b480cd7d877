// The serving descriptor of a model-file version as a form (docs/algorithms.md,
// "Model files (serving runtimes)"): what the platform does to an image before
// the model, and how it reads the model's output.
import { useId } from "react";
import type { ReactNode } from "react";
import { Field } from "../components/Field";
import type { Option } from "../components/Field";

/** ServingRuntime is a serving runtime as DescribeServingRuntimes answers it: what it takes and whether the answering node runs it. */
export interface ServingRuntime {
  Name: string;
  Description: string;
  Protocol: string;
  ModelFormats: string[];
  OutputKinds: string[];
  DetectionFormats: string[];
  Available: boolean;
  Reason: string;
}

/** KIND_LABELS and FORMAT_LABELS describe the output kinds and detection layouts a runtime lists; one not here shows its name. */
const KIND_LABELS: Record<string, string> = {
  classification: "Classification (one score per class)",
  detection: "Detection (YOLO boxes, scores, classes)",
  ocr: "OCR (text detection + recognition)",
};
const FORMAT_LABELS: Record<string, string> = {
  yolov8: "yolov8: [1, 4+C, N] (YOLOv8/v11)",
  yolov5: "yolov5: [1, N, 5+C] (YOLOv5/v7)",
};

/** runtimeOptions are the runtimes as a select's choices; one this node cannot run says so. */
export function runtimeOptions(rts: readonly ServingRuntime[]): Option[] {
  return rts.map((r) => ({ value: r.Name, label: `${r.Name} (${r.ModelFormats.join(", ")})${r.Available ? "" : " — not available here"}` }));
}

/**
 * pickRuntime is the runtime a form starts with, or keeps: the one chosen if
 * the server lists it, else the first the node can run, else the first.
 */
export function pickRuntime(rts: readonly ServingRuntime[], chosen: string): string {
  if (rts.some((r) => r.Name === chosen)) return chosen;
  return (rts.find((r) => r.Available) ?? rts[0])?.Name ?? "";
}

/** withRuntime is the form with runtime name chosen, and its output kind and detection format ones that runtime decodes. */
export function withRuntime(s: ServingState, rts: readonly ServingRuntime[], name: string): ServingState {
  const rt = rts.find((r) => r.Name === name);
  if (!rt) return { ...s, runtime: name };
  const kind = rt.OutputKinds.includes(s.kind) ? s.kind : (rt.OutputKinds[0] ?? s.kind);
  const format = rt.DetectionFormats.includes(s.format) ? s.format : (rt.DetectionFormats[0] ?? s.format);
  return { ...s, runtime: name, kind, format };
}

/** accepts is the file input's accept list for a runtime's model formats (".onnx"). */
export function accepts(rt: ServingRuntime | undefined): string {
  return rt ? rt.ModelFormats.map((f) => `.${f}`).join(",") : "";
}

/** ServingState is the descriptor as typed: numbers stay text until sent, so that an empty field means the server's default. */
export interface ServingState {
  runtime: string;
  threads: string;
  width: string;
  height: string;
  layout: string;
  channels: string;
  scale: string;
  mean: string;
  std: string;
  kind: string;
  labels: string;
  activation: string;
  topK: string;
  format: string;
  confidence: string;
  iou: string;
  maxDetections: string;
  threshold: string;
  boxThreshold: string;
  /** space adds a space as the recognizer's last character, as PaddleOCR's dictionaries expect. */
  space: boolean;
}

export const DEFAULT_SERVING: ServingState = {
  runtime: "", threads: "", width: "224", height: "224", layout: "NCHW", channels: "RGB", scale: "", mean: "", std: "",
  kind: "classification", labels: "", activation: "softmax", topK: "", format: "yolov8", confidence: "", iou: "", maxDetections: "",
  threshold: "", boxThreshold: "", space: true,
};

/**
 * SERVING_FIELDS are the descriptor's fields as the server names them in its
 * errors (Definition. dropped); an error under one of them ("serving.input.mean[1]")
 * is shown at it.
 */
export const SERVING_FIELDS = [
  "serving.runtime", "serving.threads", "serving.input", "serving.input.width", "serving.input.height", "serving.input.layout",
  "serving.input.channels", "serving.input.scale", "serving.input.mean", "serving.input.std", "serving.output", "serving.output.kind",
  "serving.output.labels", "serving.output.activation", "serving.output.topK", "serving.output.format", "serving.output.confidence",
  "serving.output.iou", "serving.output.maxDetections", "serving.output.threshold", "serving.output.boxThreshold",
  "serving.recognition", "serving.recognition.characters",
];

/** servingField is the descriptor field an error's field belongs to: the longest of SERVING_FIELDS it starts with. */
export function servingField(field: string): string | undefined {
  let best: string | undefined;
  for (const f of SERVING_FIELDS) {
    const under = field === f || field.startsWith(`${f}.`) || field.startsWith(`${f}[`);
    if (under && (!best || f.length > best.length)) best = f;
  }
  return best;
}

/**
 * servingOf builds the descriptor from the form, leaving out what is empty
 * (the server's defaults apply); text that is not a number is refused before
 * anything is sent. characters, for OCR, are the dictionary's lines.
 */
export function servingOf(s: ServingState, characters: string[] = []): { serving: Record<string, unknown>; errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  const num = (text: string, field: string): number | undefined => {
    const t = text.trim();
    if (!t) return undefined;
    const n = Number(t);
    if (!Number.isFinite(n)) errors[`serving.${field}`] = `not a number: ${t}`;
    return n;
  };
  const nums = (text: string, field: string): number[] | undefined => {
    const parts = text.split(/[\s,]+/).filter(Boolean);
    if (parts.length === 0) return undefined;
    const out = parts.map(Number);
    if (out.some((n) => !Number.isFinite(n))) errors[`serving.${field}`] = `not numbers: ${text.trim()}`;
    return out;
  };
  const drop = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== ""));
  const input = drop({
    width: num(s.width, "input.width"), height: num(s.height, "input.height"), layout: s.layout, channels: s.channels,
    scale: num(s.scale, "input.scale"), mean: nums(s.mean, "input.mean"), std: nums(s.std, "input.std"),
  });
  const labels = s.labels.split("\n").map((l) => l.trim()).filter(Boolean);
  let output: Record<string, unknown> = { kind: s.kind };
  if (s.kind === "classification") {
    output = drop({ ...output, labels: labels.length ? labels : undefined, activation: s.activation, topK: num(s.topK, "output.topK") });
  } else if (s.kind === "detection") {
    output = drop({ ...output, format: s.format, labels: labels.length ? labels : undefined, confidence: num(s.confidence, "output.confidence"),
      iou: num(s.iou, "output.iou"), maxDetections: num(s.maxDetections, "output.maxDetections") });
  } else if (s.kind === "ocr") {
    output = drop({ ...output, threshold: num(s.threshold, "output.threshold"), boxThreshold: num(s.boxThreshold, "output.boxThreshold"),
      maxDetections: num(s.maxDetections, "output.maxDetections") });
  }
  const serving: Record<string, unknown> = drop({ runtime: s.runtime, threads: num(s.threads, "threads"), input, output });
  if (s.kind === "ocr") serving.recognition = { characters: s.space ? [...characters, " "] : characters };
  return { serving, errors };
}

/** dictionaryOf is a recognizer's dictionary file as characters: one a line, the last newline not a character. */
export function dictionaryOf(text: string): string[] {
  const lines = text.replace(/\r\n/g, "\n").split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

function Group(p: { legend: string; error?: string | undefined; name: string; children: ReactNode }) {
  const id = useId();
  return (
    <fieldset className="form-grid" aria-describedby={p.error ? id : undefined}>
      <legend>{p.legend}</legend>
      {p.error && (
        <div className="field-error group-error" id={id} role="alert" data-field-error={p.name}>
          {p.error}
        </div>
      )}
      {p.children}
    </fieldset>
  );
}

/**
 * ServingFields are the descriptor's inputs, each with the server's error
 * for it; errors are keyed as SERVING_FIELDS. extra is shown in the output
 * group (the OCR recognizer's files).
 */
export function ServingFields(p: {
  value: ServingState;
  onChange(s: ServingState): void;
  errors: Record<string, string>;
  /** runtimes are the server's (DescribeServingRuntimes); null while they load. */
  runtimes: readonly ServingRuntime[] | null;
  extra?: ReactNode;
}) {
  const v = p.value;
  const rt = p.runtimes?.find((r) => r.Name === v.runtime);
  const kinds = (rt?.OutputKinds ?? []).map((k) => ({ value: k, label: KIND_LABELS[k] ?? k }));
  const formats = (rt?.DetectionFormats ?? []).map((f) => ({ value: f, label: FORMAT_LABELS[f] ?? f }));
  const runtimeHint = !p.runtimes ? "Loading the server's serving runtimes…"
    : p.runtimes.length === 0 ? "The server offers no serving runtime."
    : rt && !rt.Available ? `Not available on this node: ${rt.Reason}`
    : rt ? `${rt.Description}. Speaks ${rt.Protocol}.` : undefined;
  const e = (f: string) => p.errors[`serving.${f}`];
  const set = <K extends keyof ServingState>(k: K) => (x: ServingState[K]) => p.onChange({ ...v, [k]: x });
  const labelsId = useId();
  const labelsError = e("output.labels");
  return (
    <>
      <Group legend="Serving" name="serving.runtime" error={undefined}>
        <Field label="Serving runtime" name="serving.runtime" value={v.runtime} onChange={(name) => p.onChange(withRuntime(v, p.runtimes ?? [], name))} error={e("runtime")}
          options={runtimeOptions(p.runtimes ?? [])} hint={runtimeHint} />
        <Field label="Threads" name="serving.threads" value={v.threads} onChange={set("threads")} error={e("threads")} type="number"
          hint="ONNX Runtime threads per replica, 1–64; empty: 1." />
      </Group>
      <Group legend="Input: the image as the model's tensor" name="serving.input" error={e("input")}>
        <Field label="Width" name="serving.input.width" value={v.width} onChange={set("width")} error={e("input.width")} type="number" />
        <Field label="Height" name="serving.input.height" value={v.height} onChange={set("height")} error={e("input.height")} type="number" />
        <Field label="Layout" name="serving.input.layout" value={v.layout} onChange={set("layout")} error={e("input.layout")}
          options={[{ value: "NCHW", label: "NCHW [1,3,H,W]" }, { value: "NHWC", label: "NHWC [1,H,W,3]" }]} />
        <Field label="Channel order" name="serving.input.channels" value={v.channels} onChange={set("channels")} error={e("input.channels")}
          options={["RGB", "BGR"]} />
        <Field label="Scale" name="serving.input.scale" value={v.scale} onChange={set("scale")} error={e("input.scale")}
          hint="Each value becomes (v × scale − mean) / std for v in 0…255; empty: 1/255." />
        <Field label="Mean" name="serving.input.mean" value={v.mean} onChange={set("mean")} error={e("input.mean")}
          hint="Three values in channel order, e.g. 0.485, 0.456, 0.406; empty: 0." />
        <Field label="Std" name="serving.input.std" value={v.std} onChange={set("std")} error={e("input.std")}
          hint="Three values, e.g. 0.229, 0.224, 0.225; empty: 1." />
      </Group>
      <Group legend="Output: how the model's answer is read" name="serving.output" error={e("output")}>
        <Field label="Output kind" name="serving.output.kind" value={v.kind} onChange={set("kind")} error={e("output.kind")} options={kinds} />
        {v.kind === "detection" && (
          <>
            <Field label="Format" name="serving.output.format" value={v.format} onChange={set("format")} error={e("output.format")} options={formats} />
            <Field label="Confidence threshold" name="serving.output.confidence" value={v.confidence} onChange={set("confidence")}
              error={e("output.confidence")} hint="Candidates under it are dropped; empty: 0.25." />
            <Field label="NMS IoU" name="serving.output.iou" value={v.iou} onChange={set("iou")} error={e("output.iou")}
              hint="A box overlapping a better one of its class by more is dropped; empty: 0.45." />
            <Field label="Max detections" name="serving.output.maxDetections" value={v.maxDetections} onChange={set("maxDetections")}
              error={e("output.maxDetections")} type="number" hint="Empty: 100." />
          </>
        )}
        {v.kind === "classification" && (
          <>
            <Field label="Activation" name="serving.output.activation" value={v.activation} onChange={set("activation")} error={e("output.activation")}
              options={["softmax", "sigmoid", "none"]} />
            <Field label="Top K" name="serving.output.topK" value={v.topK} onChange={set("topK")} error={e("output.topK")} type="number"
              hint="Classes returned, 1–100; empty: 5." />
          </>
        )}
        {v.kind !== "ocr" && (
          <div className={labelsError ? "field field-invalid" : "field"}>
            <label htmlFor={labelsId}>Labels</label>
            <textarea id={labelsId} name="serving.output.labels" value={v.labels} rows={4} spellCheck={false}
              aria-invalid={labelsError ? true : undefined} aria-describedby={`${labelsId}-hint${labelsError ? ` ${labelsId}-error` : ""}`}
              onChange={(ev) => set("labels")(ev.target.value)} />
            <div className="field-hint" id={`${labelsId}-hint`}>
              Class names by index, one a line; empty: class0, class1, …
            </div>
            {labelsError && (
              <div className="field-error" id={`${labelsId}-error`} role="alert" data-field-error="serving.output.labels">
                {labelsError}
              </div>
            )}
          </div>
        )}
        {v.kind === "ocr" && (
          <>
            <Field label="Text threshold" name="serving.output.threshold" value={v.threshold} onChange={set("threshold")} error={e("output.threshold")}
              hint="A pixel above it is text; empty: 0.3." />
            <Field label="Box threshold" name="serving.output.boxThreshold" value={v.boxThreshold} onChange={set("boxThreshold")}
              error={e("output.boxThreshold")} hint="A region's mean probability must reach it; empty: 0.6." />
            {p.extra}
          </>
        )}
      </Group>
    </>
  );
}
