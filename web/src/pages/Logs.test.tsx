import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import type { ReactNode } from "react";
import { SessionContext } from "../session";
import { sessionFor, stubActions } from "../testServer";
import { LIMIT, levelClass, Logs, logsBody } from "./Logs";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  window.history.replaceState(null, "", "/");
});

const wrap = (actions: string[]) => ({ children }: { children: ReactNode }) => (
  <SessionContext.Provider value={sessionFor(actions, true)}>{children}</SessionContext.Provider>
);

describe("logsBody", () => {
  it("sends the URL's filters, and no unknown level", () => {
    expect(logsBody(new URLSearchParams("component=api&level=warn&contains=req-1"))).toEqual({ Limit: LIMIT, Component: "api", Level: "warn", Contains: "req-1" });
    expect(logsBody(new URLSearchParams("level=loud"))).toEqual({ Limit: LIMIT });
  });
  it("colours levels", () => {
    expect([levelClass("error"), levelClass("warn"), levelClass("info")]).toEqual(["status-error", "status-warn", "status-online"]);
  });
});

describe("Logs", () => {
  const answer = () => ({
    LogSet: [
      { Time: "2026-12-07T00:00:02Z", Level: "warn", Component: "task", Message: "task stats not saved", Fields: "task=task-1 err=busy" },
      { Time: "2026-12-07T00:00:01Z", Level: "info", Component: "api", Message: "action served", Fields: "action=DescribeTasks request_id=req-1" },
    ],
    ComponentSet: ["api", "task"],
    Truncated: false,
  });

  it("lists the lines and filters by component and level through the URL", async () => {
    const sent = stubActions({ DescribeLogs: answer });
    render(<Logs />, { wrapper: wrap(["DescribeLogs"]) });
    await screen.findByText("task stats not saved");
    expect(screen.getByText("action=DescribeTasks request_id=req-1")).toBeTruthy();
    fireEvent.change(screen.getByLabelText("Component"), { target: { value: "api" } });
    fireEvent.change(screen.getByLabelText("Lowest level"), { target: { value: "warn" } });
    await vi.waitFor(() => expect(sent.at(-1)?.body).toEqual({ Limit: LIMIT, Component: "api", Level: "warn" }));
  });

  it("names each line's process and filters by process when the roles run in several, and says who did not answer", async () => {
    const several = () => ({
      ...answer(),
      LogSet: answer().LogSet.map((l, i) => ({ ...l, Process: i === 0 ? "w1 (worker)" : "cp (control)" })),
      ProcessSet: ["cp (control)", "w1 (worker)"],
      UnansweredProcesses: ["w2 (worker)"],
    });
    const sent = stubActions({ DescribeLogs: several });
    render(<Logs />, { wrapper: wrap(["DescribeLogs"]) });
    await screen.findByText("task stats not saved");
    expect(screen.getAllByTestId("line-process").map((e) => e.textContent)).toEqual(["w1 (worker)", "cp (control)"]);
    expect(screen.getByRole("status").textContent).toContain("w2 (worker)");
    fireEvent.change(screen.getByLabelText("Process"), { target: { value: "w1 (worker)" } });
    await vi.waitFor(() => expect(sent.at(-1)?.body).toEqual({ Limit: LIMIT, Process: "w1 (worker)" }));
  });

  it("shows no process where the platform runs in one", async () => {
    stubActions({ DescribeLogs: () => ({ ...answer(), ProcessSet: ["vm (all)"] }) });
    render(<Logs />, { wrapper: wrap(["DescribeLogs"]) });
    await screen.findByText("task stats not saved");
    expect(screen.queryByLabelText("Process")).toBeNull();
    expect(screen.queryAllByTestId("line-process")).toHaveLength(0);
  });

  it("tells a person who is no platform admin so, and asks nothing", () => {
    const sent = stubActions({ DescribeLogs: answer });
    render(<Logs />, { wrapper: wrap(["DescribeTasks"]) });
    expect(screen.getByRole("alert").textContent).toContain("Only platform administrators");
    expect(sent.length).toBe(0);
  });
});
