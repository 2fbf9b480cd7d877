// The canary card against answers shaped as the gateway's (the Go tests run
// the actions on a real runtime); fetch is replaced because jsdom has no server.
import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { SessionContext } from "../session";
import type { Session } from "../session";
import { CanaryCard, canaryText, groupsOf } from "./Canary";
import type { Canary } from "./Canary";

function session(actions: string[]): Session {
  return {
    me: { UserId: "usr-1", UserName: "admin", PlatformAdmin: false, ProjectSet: [] },
    project: { ProjectId: "demo", Name: "demo", Roles: ["admin"], Actions: actions },
    setProject: () => {},
    signOut: () => {},
  };
}

function server(answer: (action: string, body: Record<string, unknown>) => object = () => ({})) {
  const calls: { action: string; body: Record<string, unknown> }[] = [];
  vi.stubGlobal("fetch", async (_: string, init: RequestInit) => {
    const action = (init.headers as Record<string, string>)["X-TC-Action"] ?? "";
    const body = JSON.parse(String(init.body)) as Record<string, unknown>;
    calls.push({ action, body });
    return new Response(JSON.stringify({ Response: { RequestId: "r", ...answer(action, body) } }));
  });
  return calls;
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const WRITE = ["SetAlgorithmCanary", "PromoteAlgorithmCanary"];

function renderCard(actions: string[], canary: Canary | null, onChanged = vi.fn()) {
  const r = render(
    <SessionContext.Provider value={session(actions)}>
      <CanaryCard algorithmId="alg-1" current="1" canary={canary} versions={["1", "2", "3"]} onChanged={onChanged} />
    </SessionContext.Provider>,
  );
  return { ...r, onChanged };
}

describe("CanaryCard", () => {
  it("says who takes part", () => {
    expect(groupsOf(" gate, lobby\n,, yard ")).toEqual(["gate", "lobby", "yard"]);
    expect(canaryText({ Version: "2", Percent: 30, DeviceGroups: ["gate"] })).toBe("30% of the cameras of group gate call version 2");
    expect(canaryText({ Version: "2", Percent: 5, DeviceGroups: null })).toBe("5% of the cameras of every group call version 2");
  });

  it("starts a canary on another version with the groups typed, and shows the server's error next to its field", async () => {
    let fail = true;
    const calls = server(() => (fail ? { Error: { Code: "InvalidParameterValue", Message: "Percent: must be between 1 and 100" } } : {}));
    const { onChanged } = renderCard(WRITE, null);
    expect(screen.getByTestId("canary-state").textContent).toBe("Every camera calls version 1.");
    const versions = Array.from((screen.getByLabelText("Canary version") as HTMLSelectElement).options).map((o) => o.value);
    expect(versions).toEqual(["2", "3"]);
    fireEvent.change(screen.getByLabelText("Share of cameras (%)"), { target: { value: "0" } });
    fireEvent.change(screen.getByLabelText("Device groups"), { target: { value: "gate, lobby" } });
    fireEvent.click(screen.getByRole("button", { name: "Start canary" }));
    await waitFor(() => expect(document.querySelector('[data-field-error="Percent"]')?.textContent).toBe("must be between 1 and 100"));
    expect(onChanged).not.toHaveBeenCalled();
    fail = false;
    fireEvent.change(screen.getByLabelText("Share of cameras (%)"), { target: { value: "30" } });
    fireEvent.click(screen.getByRole("button", { name: "Start canary" }));
    await waitFor(() => expect(onChanged).toHaveBeenCalled());
    expect(calls.at(-1)).toEqual({ action: "SetAlgorithmCanary", body: { AlgorithmId: "alg-1", Version: "2", Percent: 30, DeviceGroups: ["gate", "lobby"] } });
  });

  it("promotes or ends a running canary", async () => {
    const calls = server();
    const { onChanged } = renderCard(WRITE, { Version: "2", Percent: 30, DeviceGroups: ["gate"] });
    expect(screen.getByTestId("canary-state").textContent).toBe("30% of the cameras of group gate call version 2; the others call version 1.");
    fireEvent.click(screen.getByRole("button", { name: "Promote version 2" }));
    await waitFor(() => expect(onChanged).toHaveBeenCalledTimes(1));
    expect(calls.at(-1)).toEqual({ action: "PromoteAlgorithmCanary", body: { AlgorithmId: "alg-1" } });
    fireEvent.click(screen.getByRole("button", { name: "End canary" }));
    await waitFor(() => expect(onChanged).toHaveBeenCalledTimes(2));
    expect(calls.at(-1)).toEqual({ action: "SetAlgorithmCanary", body: { AlgorithmId: "alg-1", Version: "" } });
  });

  it("shows a viewer the canary and no form, and nothing when there is none", () => {
    server();
    const { unmount } = renderCard([], { Version: "2", Percent: 30, DeviceGroups: null });
    expect(screen.getByTestId("canary-state").textContent).toContain("30% of the cameras of every group");
    expect(screen.queryByRole("form", { name: "Set the canary" })).toBeNull();
    expect(screen.queryByRole("button")).toBeNull();
    unmount();
    renderCard([], null);
    expect(screen.queryByTestId("canary")).toBeNull();
  });
});
