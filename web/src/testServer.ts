// Helpers of the component tests: the action API answered by functions
// shaped as the gateway's answers (jsdom has no server to reach; the browser
// test runs the same pages against a real platform), and a session.
import { vi } from "vitest";
import type { Session } from "./session";

/** Answer is what an action answers to a body: its fields, or { Error: { Code, Message } }. */
export type Answer = (body: Record<string, unknown>) => object;

/** Sent is one call the page made. */
export interface Sent {
  action: string;
  body: Record<string, unknown>;
}

/** stubActions replaces fetch with answers per action and returns the calls made, in order. */
export function stubActions(answers: Record<string, Answer>): Sent[] {
  const sent: Sent[] = [];
  vi.stubGlobal("fetch", async (_: string, init: RequestInit) => {
    const action = (init.headers as Record<string, string>)["X-TC-Action"] ?? "";
    const body = JSON.parse(String(init.body)) as Record<string, unknown>;
    sent.push({ action, body });
    const answer = answers[action];
    const resp = answer ? answer(body) : { Error: { Code: "InvalidAction", Message: `no answer for ${action} in the test` } };
    return new Response(JSON.stringify({ Response: { RequestId: "r", ...resp } }));
  });
  return sent;
}

/** sessionFor is a signed-in session in project demo that may run actions. */
export function sessionFor(actions: readonly string[], admin = false): Session {
  return {
    me: { UserId: "usr-me", UserName: "me", PlatformAdmin: admin, ProjectSet: [] },
    project: { ProjectId: "demo", Name: "demo", Roles: ["admin"], Actions: [...actions] },
    setProject: () => {},
    signOut: () => {},
  };
}
