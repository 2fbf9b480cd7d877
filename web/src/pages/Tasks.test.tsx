// The create-task form against answers shaped as the gateway's (the browser
// test runs the Tasks page against a real platform); fetch is replaced
// because jsdom has no server to reach.
import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { CreateTask, declaredParameters, parameterValue, sourcesOf } from "./Tasks";

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
