// The onboarding form and the drawing helpers against answers shaped as the
// gateway's (the browser test runs the page against a real platform, with a
// real package upload); fetch is replaced because jsdom has no server.
import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { SessionContext } from "../session";
import type { Session } from "../session";
import { Algorithms, caption, definitionOf, objectsOf, placeError, runtimes, VersionForm } from "./Algorithms";
import { ApiError } from "../api";
import { DEFAULT_SERVING, dictionaryOf, servingOf } from "./serving";

const READ = ["DescribeAlgorithms", "DescribeAlgorithmVersions", "DescribeAlgorithmInstances"];
const WRITE = ["CreateAlgorithm", "CreateAlgorithmVersion", "StartAlgorithmVersion", "StopAlgorithmVersion", "DeleteAlgorithm", "InvokeAlgorithm"];

function session(platformAdmin: boolean, actions = [...READ, ...WRITE]): Session {
  return {
    me: { UserId: "usr-1", UserName: "admin", PlatformAdmin: platformAdmin, ProjectSet: [] },
    project: { ProjectId: "demo", Name: "demo", Roles: ["admin"], Actions: actions },
    setProject: () => {},
    signOut: () => {},
  };
}

function server(answers: Record<string, (b: Record<string, unknown>) => object>) {
  const calls: { action: string; body: Record<string, unknown> }[] = [];
  vi.stubGlobal("fetch", async (_: string, init: RequestInit) => {
    const action = (init.headers as Record<string, string>)["X-TC-Action"] ?? "";
    const body = JSON.parse(String(init.body)) as Record<string, unknown>;
    calls.push({ action, body });
    return new Response(JSON.stringify({ Response: { RequestId: "r", ...answers[action]?.(body) } }));
  });
  return calls;
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

function renderForm(platformAdmin: boolean, onDone = vi.fn()) {
  render(
    <SessionContext.Provider value={session(platformAdmin)}>
      <VersionForm projectId="demo" onDone={onDone} />
    </SessionContext.Provider>,
  );
  return onDone;
}

describe("VersionForm", () => {
  it("offers the package runtime to platform admins only", () => {
    expect(runtimes(session(false)).map((r) => r.name)).toEqual(["endpoint", "container"]);
    expect(runtimes(session(true)).map((r) => r.name)).toEqual(["endpoint", "process", "model", "container"]);
    renderForm(false);
    const options = Array.from((screen.getByLabelText("Runtime") as HTMLSelectElement).options).map((o) => o.value);
    expect(options).toEqual(["endpoint", "container"]);
  });

  it("shows the server's Definition error next to its field, and does not create the algorithm twice", async () => {
    let versionCalls = 0;
    const calls = server({
      CreateAlgorithm: () => ({ AlgorithmId: "alg-1" }),
      CreateAlgorithmVersion: () => (++versionCalls === 1
        ? { Error: { Code: "InvalidParameterValue", Message: "Definition.endpoints[0]: not an http(s) URL" } }
        : { AlgorithmId: "alg-1", Version: "1" }),
    });
    const done = renderForm(false);
    fireEvent.change(screen.getByLabelText("Name"), { target: { value: "plates" } });
    fireEvent.change(screen.getByLabelText("Endpoints"), { target: { value: "ftp://x" } });
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    const err = await screen.findByRole("alert");
    expect(err.getAttribute("data-field-error")).toBe("endpoints");
    expect(err.textContent).toBe("not an http(s) URL");
    expect(screen.getByLabelText("Endpoints").getAttribute("aria-invalid")).toBe("true");

    fireEvent.change(screen.getByLabelText("Endpoints"), { target: { value: "http://10.0.0.5:8080\nhttp://10.0.0.6:8080" } });
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    await vi.waitFor(() => expect(done).toHaveBeenCalledWith("alg-1"));
    expect(calls.map((c) => c.action)).toEqual(["CreateAlgorithm", "CreateAlgorithmVersion", "CreateAlgorithmVersion"]);
    expect(calls[2]?.body).toEqual({ AlgorithmId: "alg-1", Start: true, Definition: {
      runtime: "endpoint", protocol: "tianshu-v1", endpoints: ["http://10.0.0.5:8080", "http://10.0.0.6:8080"],
      contract: { inputs: [{ name: "image", type: "image", required: true }], outputs: [{ name: "objects", type: "objects" }] },
    } });
  });

  it("refuses contract text that is not JSON, and a package runtime without a file, before calling", () => {
    const calls = server({});
    renderForm(true);
    fireEvent.change(screen.getByLabelText("Inputs"), { target: { value: "[{name}]" } });
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    expect(screen.getByLabelText("Inputs").getAttribute("aria-invalid")).toBe("true");
    expect(document.querySelector('[data-field-error="PackageUploadId"]')?.textContent).toBe("choose the package file");
    expect(calls).toEqual([]);
  });
});

/** ONNX_CPU is onnx-cpu as DescribeServingRuntimes answers it; available says whether this node runs it. */
function onnxCPU(available = true) {
  return { Name: "onnx-cpu", Description: "ONNX Runtime on the CPU", Protocol: "oip-v2", ModelFormats: ["onnx"],
    OutputKinds: ["classification", "detection", "ocr"], DetectionFormats: ["yolov8", "yolov5"], Available: available,
    Reason: available ? "" : "serving runtime onnx-cpu is not installed on this node: /srv/runtimes/onnx-node has no node_modules/onnxruntime-node" };
}

/** modelForm renders the form, picks the model-file runtime and waits for the server's serving runtimes. */
async function modelForm(rts: object[] = [onnxCPU()]) {
  const calls = server({ DescribeServingRuntimes: () => ({ TotalCount: rts.length, RuntimeSet: rts }) });
  renderForm(true);
  fireEvent.change(screen.getByLabelText("Runtime"), { target: { value: "model" } });
  await vi.waitFor(() => expect((screen.getByLabelText("Serving runtime") as HTMLSelectElement).options.length).toBe(rts.length));
  return calls;
}

describe("VersionForm with a model file", () => {
  it("offers the server's serving runtimes, their output kinds and layouts, and says why one cannot run here", async () => {
    const other = { ...onnxCPU(), Name: "other", ModelFormats: ["tflite"], OutputKinds: ["classification"], DetectionFormats: [] };
    await modelForm([onnxCPU(false), other]);
    const select = screen.getByLabelText("Serving runtime") as HTMLSelectElement;
    expect(Array.from(select.options).map((o) => o.textContent)).toEqual(["onnx-cpu (onnx) — not available here", "other (tflite)"]);
    // The first the node can run is chosen; its kinds only.
    expect(select.value).toBe("other");
    const kinds = () => Array.from((screen.getByLabelText("Output kind") as HTMLSelectElement).options).map((o) => o.value);
    expect(kinds()).toEqual(["classification"]);
    expect((screen.getByLabelText("Model file") as HTMLInputElement).accept).toBe(".tflite");
    fireEvent.change(select, { target: { value: "onnx-cpu" } });
    expect(kinds()).toEqual(["classification", "detection", "ocr"]);
    expect(screen.getByText(/^Not available on this node: serving runtime onnx-cpu is not installed/)).toBeTruthy();
    fireEvent.change(screen.getByLabelText("Output kind"), { target: { value: "detection" } });
    expect(Array.from((screen.getByLabelText("Format") as HTMLSelectElement).options).map((o) => o.value)).toEqual(["yolov8", "yolov5"]);
  });

  it("asks for the model file and numbers before calling, with each error at its field", async () => {
    const calls = await modelForm();
    expect(screen.queryByLabelText("Inputs")).toBeNull();
    expect(screen.queryByLabelText("Protocol")).toBeNull();
    fireEvent.change(screen.getByLabelText("Scale"), { target: { value: "1/255" } });
    fireEvent.change(screen.getByLabelText("Output kind"), { target: { value: "detection" } });
    fireEvent.change(screen.getByLabelText("Confidence threshold"), { target: { value: "0.2.1" } });
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    const placed = Array.from(document.querySelectorAll("[data-field-error]")).map((e) => [e.getAttribute("data-field-error"), e.textContent]);
    expect(placed).toEqual([
      ["ModelUploadId", "choose the model file"],
      ["serving.input.scale", "not a number: 1/255"],
      ["serving.output.confidence", "not a number: 0.2.1"],
    ]);
    expect(screen.getByLabelText("Scale").getAttribute("aria-invalid")).toBe("true");
    expect(calls.map((c) => c.action)).toEqual(["DescribeServingRuntimes"]);
  });

  it("asks OCR for the recognizer and its dictionary", async () => {
    await modelForm();
    fireEvent.change(screen.getByLabelText("Output kind"), { target: { value: "ocr" } });
    expect(screen.queryByLabelText("Labels")).toBeNull();
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    const placed = Array.from(document.querySelectorAll("[data-field-error]")).map((e) => e.getAttribute("data-field-error"));
    expect(placed).toEqual(["ModelUploadId", "RecognitionModelUploadId", "dictionary"]);
  });

  it("builds the descriptor, leaving empty fields to the server's defaults", () => {
    const form = { Name: "", Description: "", protocol: "tianshu-v1", endpoints: "", image: "", inputs: "[]", outputs: "[]",
      timeout: "", replicas: "2", Start: true, runtime: "model" };
    const serving = { ...DEFAULT_SERVING, runtime: "onnx-cpu", width: "32", height: "32", mean: "0.485, 0.456 0.406", kind: "detection", labels: "person\n car \n\n",
      confidence: "0.3" };
    expect(definitionOf(form, serving).def).toEqual({ replicas: 2, serving: { runtime: "onnx-cpu",
      input: { width: 32, height: 32, layout: "NCHW", channels: "RGB", mean: [0.485, 0.456, 0.406] },
      output: { kind: "detection", format: "yolov8", labels: ["person", "car"], confidence: 0.3 } } });
    expect(servingOf({ ...DEFAULT_SERVING, kind: "classification", topK: "2" }).serving.output).toEqual({ kind: "classification", activation: "softmax", topK: 2 });
    const ocr = servingOf({ ...DEFAULT_SERVING, kind: "ocr" }, dictionaryOf("a\r\nb\n"));
    expect(ocr.serving.recognition).toEqual({ characters: ["a", "b", " "] });
    expect(ocr.serving.output).toEqual({ kind: "ocr" });
  });

  it("shows the server's descriptor and model errors at their fields", () => {
    const at = (m: string) => placeError(new ApiError("InvalidParameterValue", m)).fields;
    expect(at('Definition.serving.input.layout: unknown layout "CHW"; use NCHW or NHWC')).toEqual({ "serving.input.layout": 'unknown layout "CHW"; use NCHW or NHWC' });
    expect(at("Definition.serving.input.mean[1]: not finite")).toEqual({ "serving.input.mean": "[1]: not finite" });
    expect(at('Definition.serving.input: the model\'s input "images" float32 [1,3,8,8] does not match')).toEqual({
      "serving.input": 'the model\'s input "images" float32 [1,3,8,8] does not match' });
    expect(at("ModelUploadId: the file is not an ONNX model (x)")).toEqual({ ModelUploadId: "the file is not an ONNX model (x)" });
  });
});

describe("errors and drawing", () => {
  it("keeps a contract error's path", () => {
    const e = new ApiError("InvalidParameterValue", 'Definition.contract.outputs[0].type: unknown type "box"');
    expect(placeError(e).fields).toEqual({ outputs: 'outputs[0].type: unknown type "box"' });
    expect(placeError(new ApiError("MissingParameter", "Name: required")).fields).toEqual({ Name: "required" });
  });

  it("builds the definition the runtime asks for", () => {
    const base = { Name: "", Description: "", protocol: "tianshu-v1", endpoints: "", image: " reg/x:1 ", inputs: "[]", outputs: "[]",
      timeout: "2s", replicas: "2", Start: true };
    expect(definitionOf({ ...base, runtime: "container" }).def).toEqual({ runtime: "container", protocol: "tianshu-v1", image: "reg/x:1",
      timeout: "2s", contract: { inputs: [], outputs: [] } });
    expect(definitionOf({ ...base, runtime: "process" }).def.replicas).toBe(2);
  });

  it("finds the boxes of every objects output and captions them", () => {
    const outputs = {
      objects: [{ box: [0, 0, 171, 171], label: "face", score: 1, attributes: { age: 30.4, gender: "female", genderScore: 0.9, emotions: {} } }],
      faces: [{ box: [1, 2] }],
      count: 1,
    };
    const objs = objectsOf(outputs);
    expect(objs).toHaveLength(1);
    const [first] = objs;
    if (!first) throw new Error("no object");
    expect(caption(first)).toBe("face · 1.00 · age 30.4 · gender female");
  });
});

describe("an algorithm's page", () => {
  const answers = {
    DescribeAlgorithms: () => ({ TotalCount: 1, AlgorithmSet: [{ AlgorithmId: "alg-1", ProjectId: "demo", Name: "faces", Description: "",
      CurrentVersion: "1", Builtin: false }] }),
    DescribeAlgorithmVersions: () => ({ TotalCount: 1, VersionSet: [{ AlgorithmId: "alg-1", Version: "1", DesiredState: "running",
      Definition: { runtime: "process", protocol: "tianshu-v1", package: "uploads/demo/upl-1/p.tar.gz",
        contract: { inputs: [{ name: "image", type: "image", required: true }], outputs: [{ name: "objects", type: "objects" }] } } }] }),
    DescribeAlgorithmInstances: () => ({ InstanceSet: [{ Version: "1", InstanceId: "0", Address: "http://127.0.0.1:4000", Status: "ready",
      Since: "2026-12-06T14:00:00Z", Restarts: 2, LastError: "exited: exit status 1", Pid: 42, Gpus: [], Outstanding: 0, Breaker: "closed",
      LogLines: ["14:00:00.000 stdout listening on 127.0.0.1:4000"] }] }),
  };

  function open(actions: string[]) {
    server(answers);
    window.history.pushState(null, "", "/algorithms?project=demo&algorithm=alg-1");
    render(
      <SessionContext.Provider value={session(true, actions)}>
        <Algorithms />
      </SessionContext.Provider>,
    );
  }

  it("shows the contract, the instance's health, restarts and log lines, and the buttons an admin may use", async () => {
    open([...READ, ...WRITE]);
    expect(await screen.findByText("listening", { exact: false })).toBeTruthy();
    expect(screen.getByRole("rowheader", { name: "image" })).toBeTruthy();
    expect(screen.getByTestId("instance-status").textContent).toBe("ready");
    expect(screen.getByTestId("instance-restarts").textContent).toBe("2");
    expect(screen.getByText("exited: exit status 1")).toBeTruthy();
    expect(screen.getByRole("button", { name: "Stop version 1" })).toBeTruthy();
    expect(screen.getByRole("button", { name: "Add version" })).toBeTruthy();
    expect(screen.getByRole("link", { name: "Try it" })).toBeTruthy();
  });

  it("shows a container version's replicas as the cluster reports them, with the reason some are missing", async () => {
    server({ ...answers, DescribeAlgorithmInstances: () => ({ InstanceSet: [{ Version: "1", InstanceId: "0", Address: "http://faces-1.tianshu.svc:8080",
      Status: "starting", Since: "2026-12-06T14:00:00Z", Restarts: 0, LastError: "", Pid: 0, Gpus: [], Outstanding: 0, Breaker: "closed", LogLines: [],
      Replicas: { Desired: 2, Updated: 2, Ready: 1, Available: 1, Message: "ErrImagePull" } }] }) });
    window.history.pushState(null, "", "/algorithms?project=demo&algorithm=alg-1");
    render(
      <SessionContext.Provider value={session(true, READ)}>
        <Algorithms />
      </SessionContext.Provider>,
    );
    const replicas = await screen.findByTestId("instance-replicas");
    expect(replicas.textContent).toBe("1 of 2 ready (2 updated, 1 available) ErrImagePull");
  });

  it("shows a viewer no button that writes", async () => {
    open(READ);
    await screen.findByText("listening", { exact: false });
    expect(screen.queryByRole("button", { name: /version/ })).toBeNull();
    expect(screen.queryByRole("link", { name: "Try it" })).toBeNull();
  });
});
