// The Apps page's key pairs: a new SecretKey is shown once, in a dialog with
// a copy button and a warning, and nowhere after it closes; a viewer gets no
// buttons that write. The browser test runs the page against a real
// platform; here fetch is replaced, with answers shaped as the gateway's,
// because jsdom has no server to reach.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { act, cleanup, fireEvent, render, screen, within } from "@testing-library/react";
import { SessionContext } from "../session";
import type { Session } from "../session";
import { Apps } from "./Apps";

const SECRET = "sk-9f8e7d6c5b4a39281706f5e4d3c2b1a0";
const app = { AppId: "app-1", ProjectId: "demo", Name: "billing", Description: "", Role: "viewer", Status: "active", ActiveKeyCount: 0,
  RateLimit: { ReadRps: 0, WriteRps: 0, Burst: 0 }, CreatedTime: "2026-12-06T10:00:00Z" };

function session(actions: string[]): Session {
  return {
    me: { UserId: "usr-1", UserName: "ann", PlatformAdmin: false, ProjectSet: [] },
    project: { ProjectId: "demo", Name: "demo", Roles: ["admin"], Actions: actions },
    setProject: () => {},
    signOut: () => {},
  };
}

const ADMIN = ["DescribeApps", "DescribeAppKeys", "CreateApp", "ModifyApp", "DeleteApp", "CreateAppKey", "EnableAppKey", "DisableAppKey",
  "DeleteAppKey", "ModifyAppKey"];

let keys: { SecretId: string; Status: string; RequireSignedAction: boolean; CreatedTime: string }[] = [];
let answered: string[] = [];

function server() {
  const answers: Record<string, (b: Record<string, unknown>) => object> = {
    DescribeApps: () => ({ TotalCount: 1, AppSet: [app] }),
    DescribeAppKeys: () => ({ TotalCount: keys.length, KeySet: keys }),
    CreateAppKey: (b) => {
      keys = [...keys, { SecretId: "AKID-new", Status: "active", RequireSignedAction: b.RequireSignedAction === true, CreatedTime: "2026-12-06T10:01:00Z" }];
      return { AppId: "app-1", SecretId: "AKID-new", SecretKey: SECRET };
    },
  };
  vi.stubGlobal("fetch", async (_: string, init: RequestInit) => {
    const action = (init.headers as Record<string, string>)["X-TC-Action"] ?? "";
    const body = JSON.parse(String(init.body)) as Record<string, unknown>;
    const r = JSON.stringify({ Response: { RequestId: "r", ...answers[action]?.(body) } });
    answered.push(r);
    return new Response(r);
  });
}

function show(actions: string[]) {
  return render(
    <SessionContext.Provider value={session(actions)}>
      <Apps />
    </SessionContext.Provider>,
  );
}

beforeEach(() => {
  keys = [];
  answered = [];
  window.history.replaceState(null, "", "/apps?project=demo&app=app-1");
  server();
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("an app's key pairs", () => {
  it("shows a new SecretKey once, with a copy button and a warning, and never after the dialog closes", async () => {
    const writeText = vi.fn(async () => {});
    vi.stubGlobal("navigator", { ...navigator, clipboard: { writeText } });
    const page = show(ADMIN);
    fireEvent.click(await screen.findByRole("button", { name: "Create key" }));

    const dialog = await screen.findByRole("dialog", { name: "Your new key pair" });
    expect(dialog.getAttribute("aria-modal")).toBe("true");
    expect(within(dialog).getByRole("note").textContent).toMatch(/only time it is shown/);
    const value = within(dialog).getByLabelText("SecretKey") as HTMLInputElement;
    expect(value.value).toBe(SECRET);
    expect(value.readOnly).toBe(true);
    // The first button, Copy SecretId, has the focus: the dialog is reachable from the keyboard at once.
    await vi.waitFor(() => expect(document.activeElement).toBe(within(dialog).getByRole("button", { name: "Copy SecretId" })));
    fireEvent.click(within(dialog).getByRole("button", { name: "Copy SecretKey" }));
    await within(dialog).findByText("Copied.");
    expect(writeText).toHaveBeenCalledWith(SECRET);

    // The new key is listed by its SecretId alone.
    await screen.findByText("AKID-new", { selector: "code" });
    fireEvent.click(within(dialog).getByRole("button", { name: /I have saved it/ }));
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(document.body.innerHTML).not.toContain(SECRET);

    // A reload (the page mounted again from its URL) cannot show it: it was never in the URL or in storage.
    page.unmount();
    show(ADMIN);
    await screen.findByText("AKID-new", { selector: "code" });
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(document.body.innerHTML).not.toContain(SECRET);
    expect(window.location.href).not.toContain(SECRET);
    expect(JSON.stringify({ ...window.localStorage })).not.toContain(SECRET);
    // Only CreateAppKey's answer ever carried it.
    expect(answered.filter((r) => r.includes(SECRET))).toHaveLength(1);
  });

  it("says how to copy by hand when the clipboard is not allowed", async () => {
    vi.stubGlobal("navigator", { ...navigator, clipboard: { writeText: async () => Promise.reject(new Error("denied")) } });
    show(ADMIN);
    fireEvent.click(await screen.findByRole("button", { name: "Create key" }));
    const dialog = await screen.findByRole("dialog");
    fireEvent.click(within(dialog).getByRole("button", { name: "Copy SecretKey" }));
    await within(dialog).findByText(/select the value and copy it/);
  });

  it("keeps Tab within the dialog", async () => {
    show(ADMIN);
    fireEvent.click(await screen.findByRole("button", { name: "Create key" }));
    const dialog = await screen.findByRole("dialog");
    const close = within(dialog).getByRole("button", { name: /I have saved it/ });
    act(() => close.focus());
    fireEvent.keyDown(close, { key: "Tab" });
    expect(document.activeElement).toBe(within(dialog).getAllByRole("textbox")[0]);
  });

  it("offers a viewer no button that writes", async () => {
    keys = [{ SecretId: "AKID-old", Status: "active", RequireSignedAction: false, CreatedTime: "" }];
    show(["DescribeApps", "DescribeAppKeys"]);
    await screen.findByText("AKID-old", { selector: "code" });
    for (const name of [/Create key/, /Delete/, /Disable/, /Edit/]) expect(screen.queryByRole("button", { name })).toBeNull();
    expect(screen.queryByRole("checkbox")).toBeNull();
  });
});
