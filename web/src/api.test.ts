// Unit tests of the API client. The server here is a function answering
// as the gateway does (the browser test, web/browser_test.go, runs the
// client against a real platform); it records what the client sent.
import { describe, expect, it } from "vitest";
import { ApiError, Client, fieldOf, retryAfterSeconds } from "./api";
import type { TokenStore } from "./api";

class MemoryStore implements TokenStore {
  m = new Map<string, string>();
  getItem(k: string) {
    return this.m.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.m.set(k, v);
  }
  removeItem(k: string) {
    this.m.delete(k);
  }
}

interface Sent {
  url: string;
  init: RequestInit;
}

function server(answers: unknown[]) {
  const sent: Sent[] = [];
  const fetcher = async (url: string, init: RequestInit) => {
    sent.push({ url, init });
    const a = answers.shift();
    if (a instanceof Error) throw a;
    return new Response(typeof a === "string" ? a : JSON.stringify(a), { status: 200 });
  };
  return { sent, fetcher };
}

function headers(s: Sent | undefined): Record<string, string> {
  return (s?.init.headers ?? {}) as Record<string, string>;
}

describe("fieldOf", () => {
  it("reads the field a message starts with", () => {
    expect(fieldOf("Name: required")).toBe("Name");
    expect(fieldOf("Device.Address: not under a media root")).toBe("Device.Address");
    expect(fieldOf("Sources[0].Id: unknown device")).toBe("Sources[0].Id");
    expect(fieldOf("Options.loop: not a boolean")).toBe("Options.loop");
  });
  it("finds none in other messages", () => {
    expect(fieldOf("device \"dev-1\" not found")).toBeUndefined();
    expect(fieldOf("too many failed logins for this user; retry after 61 s")).toBeUndefined();
    expect(fieldOf("")).toBeUndefined();
  });
  it("reads the wait of a lockout", () => {
    expect(retryAfterSeconds("too many failed logins for this user; retry after 61 s")).toBe(61);
    expect(retryAfterSeconds("nothing")).toBeUndefined();
  });
});

describe("Client", () => {
  it("posts the action to / as JSON and answers the Response", async () => {
    const { sent, fetcher } = server([{ Response: { TotalCount: 2, RequestId: "r1" } }]);
    const c = new Client(fetcher, new MemoryStore());
    const r = await c.call<{ TotalCount: number }>("DescribeDevices", { Limit: 5 });
    expect(r.TotalCount).toBe(2);
    expect(sent[0]?.url).toBe("/");
    expect(sent[0]?.init.method).toBe("POST");
    expect(headers(sent[0])["X-TC-Action"]).toBe("DescribeDevices");
    expect(headers(sent[0])["Content-Type"]).toBe("application/json");
    expect(headers(sent[0])["X-Tianshu-CSRF"]).toBeUndefined();
    expect(JSON.parse(String(sent[0]?.init.body))).toEqual({ Limit: 5 });
  });

  it("keeps Login's CSRF token and sends it on every later call", async () => {
    const store = new MemoryStore();
    const { sent, fetcher } = server([
      { Response: { UserId: "usr-1", UserName: "ada", Role: "admin", CsrfToken: "tok-1", ExpireTime: "", RequestId: "r" } },
      { Response: { RequestId: "r2" } },
      { Response: { EndedSessions: 1, RequestId: "r3" } },
    ]);
    const c = new Client(fetcher, store);
    expect(c.signedIn).toBe(false);
    await c.login("ada", "secret-password");
    expect(c.signedIn).toBe(true);
    await c.call("DescribeMyPermissions");
    expect(headers(sent[1])["X-Tianshu-CSRF"]).toBe("tok-1");
    await c.logout();
    expect(headers(sent[2])["X-TC-Action"]).toBe("Logout");
    expect(c.signedIn).toBe(false);
  });

  it("throws a typed error with code, message, field and request id", async () => {
    const { fetcher } = server([{ Response: { Error: { Code: "InvalidParameterValue", Message: "Address: not under a media root" }, RequestId: "req-9" } }]);
    const c = new Client(fetcher, new MemoryStore());
    const e = await c.call("CreateDevice", {}).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ApiError);
    const a = e as ApiError;
    expect(a.code).toBe("InvalidParameterValue");
    expect(a.field).toBe("Address");
    expect(a.detail).toBe("not under a media root");
    expect(a.requestId).toBe("req-9");
  });

  it("forgets the session and tells listeners when it has ended", async () => {
    const store = new MemoryStore();
    store.setItem("tianshu.csrf", "old");
    const { fetcher } = server([{ Response: { Error: { Code: "AuthFailure.SessionExpired", Message: "session expired" }, RequestId: "r" } }]);
    const c = new Client(fetcher, store);
    let ended = 0;
    c.onSessionEnded(() => ended++);
    await expect(c.call("DescribeDevices")).rejects.toThrow("session expired");
    expect(ended).toBe(1);
    expect(c.signedIn).toBe(false);
  });

  it("does not end a session on a failed login", async () => {
    const { fetcher } = server([{ Response: { Error: { Code: "AuthFailure.LoginFailed", Message: "wrong" }, RequestId: "r" } }]);
    const c = new Client(fetcher, new MemoryStore());
    let ended = 0;
    c.onSessionEnded(() => ended++);
    await expect(c.login("a", "b")).rejects.toBeInstanceOf(ApiError);
    expect(ended).toBe(0);
  });

  it("maps an unreachable server and a non-JSON answer to NetworkError", async () => {
    const { fetcher } = server([new TypeError("Failed to fetch"), "<html>bad gateway</html>", { nothing: 1 }]);
    const c = new Client(fetcher, new MemoryStore());
    for (let i = 0; i < 3; i++) {
      const e = (await c.call("DescribeDevices").catch((x: unknown) => x)) as ApiError;
      expect(e.code).toBe("NetworkError");
    }
  });
});
