// The PTZ pad against answers shaped as ControlDevicePTZ's (the app test
// TestGB28181FaceStructuring checks those reach a simulated camera).
import type { ReactNode } from "react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { SessionContext } from "../../session";
import { sessionFor, stubActions } from "../../testServer";
import { PTZPad } from "./PTZPad";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

function as(actions: string[]) {
  return ({ children }: { children: ReactNode }) => <SessionContext.Provider value={sessionFor(actions)}>{children}</SessionContext.Provider>;
}

describe("PTZPad", () => {
  it("sends a move at the chosen speed, a zoom, and a stop without speed", async () => {
    const sent = stubActions({ ControlDevicePTZ: () => ({ PTZCmd: "A50F0102C8C8C8F0" }) });
    render(<PTZPad id="dev-ch1" />, { wrapper: as(["ControlDevicePTZ"]) });
    fireEvent.change(screen.getByLabelText(/^Speed/), { target: { value: "200" } });
    fireEvent.click(screen.getByRole("button", { name: "Move up and right" }));
    expect(await screen.findByText(/Move up and right at speed 200 sent: the camera keeps going until Stop \(PTZCmd A50F0102C8C8C8F0\)/)).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Zoom out" }));
    expect(await screen.findByText(/Zoom out at speed 200 sent/)).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Stop" }));
    expect(await screen.findByText(/^Stop sent/)).toBeTruthy();
    expect(sent.map((x) => x.body)).toEqual([
      { DeviceId: "dev-ch1", Direction: "upright", Speed: 200 },
      { DeviceId: "dev-ch1", Zoom: "out", Speed: 200 },
      { DeviceId: "dev-ch1", Direction: "stop" },
    ]);
    expect(screen.getAllByRole("button")).toHaveLength(11);
  });
  it("shows the platform's error, such as a camera that is not registered", async () => {
    stubActions({ ControlDevicePTZ: () => ({ Error: { Code: "FailedOperation", Message: "device dev-ch1 (GB id 34020000001320000001) is not registered" } }) });
    render(<PTZPad id="dev-ch1" />, { wrapper: as(["ControlDevicePTZ"]) });
    fireEvent.click(screen.getByRole("button", { name: "Move left" }));
    expect((await screen.findByRole("alert")).textContent).toMatch(/is not registered/);
    expect(screen.queryByRole("status")).toBeNull();
  });
  it("is not there for whom may not control the device", () => {
    render(<PTZPad id="dev-ch1" />, { wrapper: as(["DescribeDevices", "DescribeDeviceDiagnosis"]) });
    expect(screen.queryByRole("button")).toBeNull();
    expect(screen.queryByText("Pan, tilt and zoom")).toBeNull();
  });
});
