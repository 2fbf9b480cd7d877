// The overview's pure parts: what its numbers link to, the recent errors it
// gathers; the browser test runs the page against a real platform.
import { describe, expect, it } from "vitest";
import type { Numbers } from "./Overview";
import { pageLink, recentErrors, statusCount } from "./Overview";

const numbers: Numbers = {
  tasks: {
    TotalCount: 3,
    StatusSet: [{ Status: "Failed", Count: 1 }, { Status: "Running", Count: 2 }],
    ActiveCount: 3,
    TaskSet: [
      { TaskId: "task-1", Name: "gate", Status: "Running", NodeId: "n", FpsIn: 2, FpsOut: 2, Received: 9, Dropped: 0, Failed: 0, Records: 3,
        LastError: "storage quota reached", UpdatedTime: "2026-12-06T10:00:05Z" },
    ],
    ErrorSet: [{ TaskId: "task-2", TaskName: "lobby", Time: "2026-12-06T10:00:09Z", Type: "node_lost", NodeId: "n", Message: "lease lapsed" }],
  },
  offline: [{ DeviceId: "dev-1", Name: "door", Reason: "unreachable", LastError: "", ProjectId: "demo", Description: "", Driver: "rtsp", Address: "",
    Group: "", EdgeNode: "", Status: "offline", MeasuredFps: 0, CreatedTime: "" }],
  subscriptions: [{ SubscriptionId: "sub-1", Name: "hook", Channel: "webhook", Status: "active", Lag: 4, DeadLetterCount: 1,
    LastError: "HTTP 500", LastErrorTime: "2026-12-06T10:00:01Z" }],
};

describe("overview", () => {
  it("counts tasks by state, 0 for a state without tasks, nothing before the answer", () => {
    expect(statusCount(numbers.tasks, "Running")).toBe(2);
    expect(statusCount(numbers.tasks, "Pending")).toBe(0);
    expect(statusCount(undefined, "Running")).toBeUndefined();
  });
  it("links a number to the page of the project that explains it", () => {
    expect(pageLink("/tasks", "demo", { status: "Failed" })).toBe("/tasks?project=demo&status=Failed");
  });
  it("lists recent errors newest first, the undated last, each linked", () => {
    const e = recentErrors(numbers, "demo");
    expect(e.map((x) => x.what)).toEqual(["Task lobby", "Task gate", "Subscription hook", "Device door"]);
    expect(e[0]).toEqual({ time: "2026-12-06T10:00:09Z", what: "Task lobby", message: "node lost: lease lapsed", link: "/tasks?project=demo&task=task-2" });
    expect(e[3]?.message).toBe("offline: unreachable");
    expect(e[3]?.link).toBe("/devices?project=demo&device=dev-1");
    expect(recentErrors(numbers, "demo", 2).length).toBe(2);
    expect(recentErrors({}, "demo")).toEqual([]);
  });
});
