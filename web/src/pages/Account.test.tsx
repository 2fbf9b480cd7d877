import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import type { ReactNode } from "react";
import { SessionContext } from "../session";
import { sessionFor, stubActions } from "../testServer";
import { api } from "../api";
import { Account } from "./Account";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const wrap = ({ children }: { children: ReactNode }) => <SessionContext.Provider value={sessionFor([])}>{children}</SessionContext.Provider>;

const sessions = {
  DescribeMySessions: () => ({ TotalCount: 2, SessionSet: [
    { SessionId: "ses-1", SourceIp: "127.0.0.1", CreatedTime: "t1", LastSeenTime: "t1", ExpireTime: "t2", Current: true },
    { SessionId: "ses-2", SourceIp: "10.0.0.2", CreatedTime: "t0", LastSeenTime: "t0", ExpireTime: "t2", Current: false },
  ] }),
};

describe("Account", () => {
  it("marks this session and offers to revoke the others", async () => {
    const sent = stubActions({ ...sessions, DeleteMySession: () => ({}) });
    render(<Account />, { wrapper: wrap });
    expect((await screen.findByText("This session")).closest("tr")?.textContent).toContain("127.0.0.1");
    expect(screen.queryByRole("button", { name: "Revoke session ses-1" })).toBeNull();
    fireEvent.click(screen.getByRole("button", { name: "Revoke session ses-2" }));
    fireEvent.click(screen.getByRole("button", { name: "Confirm revoke session ses-2" }));
    await vi.waitFor(() => expect(sent.some((s) => s.action === "DeleteMySession")).toBe(true));
    expect(sent.find((s) => s.action === "DeleteMySession")?.body).toEqual({ SessionId: "ses-2" });
  });

  it("shows a wrong current password next to its field", async () => {
    stubActions({ ...sessions, ModifyMyPassword: () => ({ Error: { Code: "InvalidParameterValue", Message: "CurrentPassword: wrong" } }) });
    render(<Account />, { wrapper: wrap });
    fireEvent.change(screen.getByLabelText("Current password"), { target: { value: "x" } });
    fireEvent.change(screen.getByLabelText("New password"), { target: { value: "a-long-new-password" } });
    fireEvent.click(screen.getByRole("button", { name: "Change password" }));
    const err = await screen.findByRole("alert");
    expect(err.getAttribute("data-field-error")).toBe("CurrentPassword");
    expect(screen.getByLabelText("Current password").getAttribute("aria-invalid")).toBe("true");
  });

  it("signs out everywhere after a confirm, and the console then shows sign-in", async () => {
    const sent = stubActions({ ...sessions, LogoutEverywhere: () => ({ EndedSessions: 2 }) });
    const ended = vi.fn();
    const off = api.onSessionEnded(ended);
    render(<Account />, { wrapper: wrap });
    fireEvent.click(screen.getByRole("button", { name: "Sign out everywhere" }));
    expect(sent.some((s) => s.action === "LogoutEverywhere")).toBe(false);
    fireEvent.click(screen.getByRole("button", { name: "Confirm: end every session" }));
    await vi.waitFor(() => expect(ended).toHaveBeenCalled());
    expect(sent.some((s) => s.action === "LogoutEverywhere")).toBe(true);
    off();
  });

  it("pages the sessions from the server by the offset in the URL", async () => {
    window.history.replaceState(null, "", "/account?offset=20");
    const sent = stubActions({ DescribeMySessions: () => ({ TotalCount: 21, SessionSet: [
      { SessionId: "ses-21", SourceIp: "10.0.0.9", CreatedTime: "t0", LastSeenTime: "t0", ExpireTime: "t2", Current: false },
    ] }) });
    render(<Account />, { wrapper: wrap });
    expect(await screen.findByText("21–21 of 21")).toBeTruthy();
    expect(sent.find((s) => s.action === "DescribeMySessions")?.body).toEqual({ Offset: 20, Limit: 20 });
    expect(screen.getByRole("link", { name: "Previous" }).getAttribute("href")).toBe("/account");
    window.history.replaceState(null, "", "/");
  });
});
