// The subscription form's error placement (the outbound policy's refusal
// next to the URL, whichever action answers it), what it sends, and the
// replay request. The browser test runs the page against a real platform;
// here fetch is replaced, with answers shaped as the gateway's, because
// jsdom has no server to reach.
import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { ApiError } from "../api";
import { listOf } from "../input";
import { lagText, replayBody, SubscriptionForm, subscriptionErrors } from "./Subscriptions";
import type { SubscriptionInfo } from "./Subscriptions";

const REFUSED = "Channel.Webhook.Url: 169.254.169.254:80 (link-local): refused by the outbound policy";

function server(answer: (action: string, body: Record<string, unknown>) => object) {
  vi.stubGlobal("fetch", async (_: string, init: RequestInit) => {
    const action = (init.headers as Record<string, string>)["X-TC-Action"] ?? "";
    const body = JSON.parse(String(init.body)) as Record<string, unknown>;
    return new Response(JSON.stringify({ Response: { RequestId: "r", ...answer(action, body) } }));
  });
}

const sub: SubscriptionInfo = {
  SubscriptionId: "sub-1", ProjectId: "demo", AppId: "", Name: "hook", Channel: "webhook", Url: "http://10.0.0.5/hook",
  Filter: { TaskIds: [], Types: ["tianshu.face.*"], DeviceIds: [], Expression: "" }, MaxAttempts: 15, MaxAge: 86400,
  Status: "active", CreatedTime: "", UpdatedTime: "",
};

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("SubscriptionForm", () => {
  it("shows the outbound policy's refusal next to the URL and keeps what was typed", async () => {
    server(() => ({ Error: { Code: "InvalidParameterValue", Message: REFUSED } }));
    render(<SubscriptionForm projectId="demo" onDone={() => {}} />);
    const url = screen.getByLabelText("URL");
    fireEvent.change(screen.getByLabelText("Name"), { target: { value: "hook" } });
    fireEvent.change(url, { target: { value: "http://169.254.169.254/latest" } });
    fireEvent.click(screen.getByRole("button", { name: "Save subscription" }));
    const err = await screen.findByRole("alert");
    expect(err.getAttribute("data-field-error")).toBe("Channel.Webhook.Url");
    expect(err.textContent).toBe("169.254.169.254:80 (link-local): refused by the outbound policy");
    expect(url.getAttribute("aria-invalid")).toBe("true");
    expect(url.getAttribute("aria-describedby")).toContain(err.id);
    expect(url.closest(".field")?.contains(err)).toBe(true);
    expect((url as HTMLInputElement).value).toBe("http://169.254.169.254/latest");
    expect((screen.getByLabelText("Name") as HTMLInputElement).value).toBe("hook");
  });

  it("places ModifySubscription's Webhook.Url error at the same URL field", async () => {
    server(() => ({ Error: { Code: "InvalidParameterValue", Message: "Webhook.Url: longer than 2048" } }));
    render(<SubscriptionForm projectId="demo" sub={sub} onDone={() => {}} />);
    fireEvent.click(screen.getByRole("button", { name: "Save subscription" }));
    const err = await screen.findByRole("alert");
    expect(err.getAttribute("data-field-error")).toBe("Channel.Webhook.Url");
    expect(screen.getByLabelText("URL").getAttribute("aria-invalid")).toBe("true");
  });

  it("places a list item's error at its list and others above the form", () => {
    const types = subscriptionErrors(new ApiError("InvalidParameterValue", 'Filter.Types[1]: "[" : bad glob'));
    expect(types.fields["Filter.Types"]).toBe('"[" : bad glob');
    const limit = subscriptionErrors(new ApiError("LimitExceeded", "subscriptions: at most 100 per app"));
    expect(limit.fields).toEqual({});
    expect(limit.form).toContain("at most 100");
  });

  it("sends the webhook, the filter as lists and the retry policy; the secret only when typed", async () => {
    let sent: Record<string, unknown> = {};
    const done = vi.fn();
    server((_, b) => {
      sent = b;
      return { SubscriptionId: "sub-2", Secret: "whsec_generated" };
    });
    render(<SubscriptionForm projectId="demo" onDone={done} />);
    fireEvent.change(screen.getByLabelText("URL"), { target: { value: "http://10.0.0.5/hook" } });
    fireEvent.change(screen.getByLabelText("Event types"), { target: { value: "tianshu.face.*, tianshu.task.*" } });
    fireEvent.change(screen.getByLabelText("Max attempts"), { target: { value: "3" } });
    fireEvent.click(screen.getByRole("button", { name: "Save subscription" }));
    await vi.waitFor(() => expect(done).toHaveBeenCalledWith({ id: "sub-2", secret: "whsec_generated" }));
    expect(sent).toEqual({
      ProjectId: "demo", Name: "", Channel: { Type: "webhook", Webhook: { Url: "http://10.0.0.5/hook" } },
      Filter: { Types: ["tianshu.face.*", "tianshu.task.*"], TaskIds: [], DeviceIds: [], Expression: "" }, MaxAttempts: 3,
    });
  });

  it("never fills the secret in when editing", () => {
    render(<SubscriptionForm projectId="demo" sub={sub} onDone={() => {}} />);
    expect((screen.getByLabelText("Secret") as HTMLInputElement).value).toBe("");
    expect((screen.getByLabelText("URL") as HTMLInputElement).value).toBe("http://10.0.0.5/hook");
    expect(screen.queryByLabelText("Channel")).toBeNull();
  });
});

describe("helpers", () => {
  it("reads lists, lags and replay requests", () => {
    expect(listOf(" a, b  c,,")).toEqual(["a", "b", "c"]);
    expect(lagText(-1)).toBe("unknown");
    expect(lagText(0)).toBe("0");
    expect(replayBody(sub, "seq", "42", "")).toEqual({ ProjectId: "demo", SubscriptionId: "sub-1", StartSeq: 42 });
    expect(replayBody(sub, "time", "", "2026-12-06T10:00").StartTime).toBe(new Date("2026-12-06T10:00").toISOString());
    expect(replayBody(sub, "dead", "", "")).toEqual({ ProjectId: "demo", SubscriptionId: "sub-1", DeadLetters: true });
    expect(replayBody(sub, "seq", "", "")).toEqual({ ProjectId: "demo", SubscriptionId: "sub-1" });
  });
});
