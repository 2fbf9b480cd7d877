// The create-task form against answers shaped as the gateway's (the browser
// test runs the Tasks page against a real platform); fetch is replaced
// because jsdom has no server to reach.
import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import type { ReactNode } from "react";
import { SessionContext } from "../session";
import { sessionFor, stubActions } from "../testServer";
import type { Span } from "../components/TraceWaterfall";
import { CreateTask, declaredParameters, NodeErrors, parameterValue, sourcesOf } from "./Tasks";

const doc = { name: "faces", parameters: { minFaceSize: { type: "integer", default: 40, description: "smallest face" } } };

function server(createTask: (body: Record<string, unknown>) => object) {
  const answers: Record<string, (b: Record<string, unknown>) => object> = {
    DescribeFlows: () => ({ TotalCount: 1, FlowSet: [{ FlowId: "flow-1", Name: "faces", LatestVersion: 2 }] }),
    DescribeDevices: () => ({ TotalCount: 1, DeviceSet: [{ DeviceId: "dev-1", Name: "cam", Status: "online" }] }),
    DescribeUploads: () => ({ TotalCount: 2, UploadSet: [
      { UploadId: "up-1", Name: "gate.mp4", Size: 2048, ContentType: "video/mp4", State: "completed" },
      { UploadId: "up-2", Name: "half.mp4", Size: 1024, ContentType: "video/mp4", State: "uploading" },
    ] }),
    DescribeFlowVersions: () => ({ TotalCount: 2, FlowVersionSet: [{ FlowId: "flow-1", Version: 2 }, { FlowId: "flow-1", Version: 1 }] }),
    DescribeFlowVersion: () => ({ FlowId: "flow-1", Version: 2, Document: doc }),
    CreateTask: createTask,
  };
  vi.stubGlobal("fetch", async (_: string, init: RequestInit) => {
    const action = (init.headers as Record<string, string>)["X-TC-Action"] ?? "";
    const body = JSON.parse(String(init.body)) as Record<string, unknown>;
    return new Response(JSON.stringify({ Response: { RequestId: "r", ...answers[action]?.(body) } }));
  });
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("CreateTask", () => {
  it("offers the flow's declared parameters and shows the server's Parameters.<name> error next to it", async () => {
    server(() => ({ Error: { Code: "InvalidParameterValue", Message: "Parameters.minFaceSize: must be at least 1" } }));
    render(<CreateTask projectId="demo" onDone={() => {}} />);
    const size = await screen.findByLabelText("minFaceSize");
    fireEvent.change(screen.getByLabelText("Name"), { target: { value: "t" } });
    fireEvent.click(await screen.findByLabelText(/cam/));
    fireEvent.change(size, { target: { value: "0" } });
    fireEvent.click(screen.getByRole("button", { name: "Save task" }));
    const err = await screen.findByRole("alert");
    expect(err.getAttribute("data-field-error")).toBe("Parameters.minFaceSize");
    expect(err.textContent).toBe("must be at least 1");
    expect(size.getAttribute("aria-invalid")).toBe("true");
  });

  it("sends the flow, the chosen devices and typed parameters", async () => {
    let sent: Record<string, unknown> = {};
    const done = vi.fn();
    server((b) => {
      sent = b;
      return { TaskId: "task-1", FlowVersion: 2 };
    });
    render(<CreateTask projectId="demo" onDone={done} />);
    const size = await screen.findByLabelText("minFaceSize");
    fireEvent.change(screen.getByLabelText("Name"), { target: { value: "t" } });
    fireEvent.click(await screen.findByLabelText(/cam/));
    fireEvent.change(size, { target: { value: "60" } });
    fireEvent.click(screen.getByRole("button", { name: "Save task" }));
    await vi.waitFor(() => expect(done).toHaveBeenCalledWith(true));
    expect(sent).toEqual({ ProjectId: "demo", Name: "t", FlowId: "flow-1", Sources: [{ Type: "device", Id: "dev-1" }],
      Parameters: { minFaceSize: 60 }, Start: true });
  });
});

describe("sources", () => {
  it("sends a device, a completed upload and topics, naming each by its name in the form", async () => {
    let sent: Record<string, unknown> = {};
    server((b) => {
      sent = b;
      return { TaskId: "task-1", FlowVersion: 2 };
    });
    render(<CreateTask projectId="demo" onDone={() => {}} />);
    fireEvent.change(screen.getByLabelText("Name"), { target: { value: "t" } });
    fireEvent.click(await screen.findByLabelText(/cam/));
    fireEvent.click(await screen.findByLabelText(/gate\.mp4/));
    expect(screen.queryByLabelText(/half\.mp4/)).toBeNull(); // not completed: a task cannot read it yet
    expect((screen.getByLabelText("Flow") as HTMLSelectElement).selectedOptions[0]?.textContent).toBe("faces");
    fireEvent.change(screen.getByLabelText(/^Topics/), { target: { value: "tianshu.demo.faces, other" } });
    fireEvent.click(screen.getByRole("button", { name: "Save task" }));
    await vi.waitFor(() => expect(sent.Sources).toEqual([{ Type: "device", Id: "dev-1" }, { Type: "upload", Id: "up-1" },
      { Type: "topic", Id: "tianshu.demo.faces" }, { Type: "topic", Id: "other" }]));
  });
  it("splits topics on spaces, commas and lines", () => {
    expect(sourcesOf([], " a,b\n c ,, ")).toEqual([{ Type: "topic", Id: "a" }, { Type: "topic", Id: "b" }, { Type: "topic", Id: "c" }]);
  });
});

describe("parameters", () => {
  it("reads a document's declared parameters", () => {
    expect(Object.keys(declaredParameters(doc))).toEqual(["minFaceSize"]);
    expect(declaredParameters(null)).toEqual({});
  });
  it("types what was typed, leaving what does not parse for the server to refuse", () => {
    expect(parameterValue("integer", "40")).toBe(40);
    expect(parameterValue("integer", "forty")).toBe("forty");
    expect(parameterValue("boolean", "true")).toBe(true);
    expect(parameterValue("object", '{"a":1}')).toEqual({ a: 1 });
    expect(parameterValue("string", "7")).toBe("7");
  });
});

describe("NodeErrors", () => {
  const errors = [
    { NodeId: "check", Time: "2026-12-07T00:00:02Z", Message: 'node "check" (function): no entry', TraceId: "4bf92f3577b34da6a3ce929d0e0e4736" },
    { NodeId: "detect", Time: "2026-12-07T00:00:01Z", Message: "algorithm timed out" },
  ];
  const span = (id: string, parent: string, name: string, status: string, start: string): Span => ({
    TraceId: "4bf92f3577b34da6a3ce929d0e0e4736", SpanId: id, ParentSpanId: parent, Name: name, StartTime: start, EndTime: "", DurationUs: 100,
    Status: status, StatusMessage: status === "error" ? "no entry" : undefined, ProjectId: "demo", Attributes: {},
  });
  const wrap = (actions: string[]) => ({ children }: { children: ReactNode }) => (
    <SessionContext.Provider value={sessionFor(actions)}>{children}</SessionContext.Provider>
  );

  it("opens an error's trace by its id at the span that failed, and keeps it open when the error leaves the list", async () => {
    const sent = stubActions({
      DescribeTrace: () => ({ TraceId: "4bf92f3577b34da6a3ce929d0e0e4736", SpanSet: [
        span("m", "", "task.message", "error", "2026-12-07T00:00:00Z"),
        span("r", "m", "source.read device", "unset", "2026-12-07T00:00:00.0001Z"),
        span("c", "m", "flow.node check", "error", "2026-12-07T00:00:00.0002Z"),
      ] }),
    });
    const { rerender } = render(<NodeErrors errors={errors} />, { wrapper: wrap(["DescribeTrace"]) });
    expect(screen.getAllByTestId("node-error")).toHaveLength(2);
    // The error without a trace (tracing off on its worker) says so and has no button.
    expect(screen.getAllByRole("button", { name: /^Trace of/ })).toHaveLength(1);
    expect(screen.getByText(/no trace: tracing is off/)).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Trace of the check error at 2026-12-07T00:00:02Z" }));
    const attrs = await screen.findByTestId("span-attributes");
    expect(sent.at(-1)).toEqual({ action: "DescribeTrace", body: { TraceId: "4bf92f3577b34da6a3ce929d0e0e4736" } });
    expect(attrs.textContent).toContain("flow.node check");
    expect(attrs.textContent).toContain("no entry");
    const rows = screen.getAllByTestId("span-row");
    expect(rows.map((r) => r.getAttribute("data-status"))).toEqual(["error", "unset", "error"]);
    // Newer errors push this one out of the list: its trace stays open.
    rerender(<NodeErrors errors={[{ NodeId: "detect", Time: "2026-12-07T00:00:03Z", Message: "algorithm timed out" }]} />);
    expect(screen.getByTestId("node-error-trace").textContent).toContain("check");
    fireEvent.click(screen.getByRole("button", { name: "Close trace" }));
    expect(screen.queryByTestId("node-error-trace")).toBeNull();
  });

  it("offers no trace to a caller without DescribeTrace, and shows nothing without errors", () => {
    stubActions({});
    const { container, rerender } = render(<NodeErrors errors={errors} />, { wrapper: wrap([]) });
    expect(screen.queryAllByRole("button")).toHaveLength(0);
    rerender(<NodeErrors errors={[]} />);
    expect(container.textContent).toBe("");
  });
});
