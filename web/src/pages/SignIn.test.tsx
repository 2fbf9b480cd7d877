// The sign-in page against answers shaped as the gateway's (the browser
// test signs in against a real platform); fetch is replaced because jsdom
// has no server to reach.
import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { SignIn } from "./SignIn";

function answer(response: object) {
  vi.stubGlobal("fetch", async () => new Response(JSON.stringify({ Response: { RequestId: "r", ...response } })));
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  localStorage.clear();
});

async function submit() {
  fireEvent.change(screen.getByLabelText("User name"), { target: { value: "ada" } });
  fireEvent.change(screen.getByLabelText("Password"), { target: { value: "wrong-password" } });
  fireEvent.click(screen.getByRole("button", { name: "Sign in" }));
}

describe("SignIn", () => {
  it("shows a field's error next to that field", async () => {
    answer({ Error: { Code: "MissingParameter", Message: "Password: required" } });
    render(<SignIn onSignedIn={() => {}} />);
    await submit();
    const err = await screen.findByRole("alert");
    expect(err.textContent).toBe("required");
    expect(err.getAttribute("data-field-error")).toBe("Password");
    expect(screen.getByLabelText("Password").getAttribute("aria-invalid")).toBe("true");
  });

  it("says a failed login without naming which part was wrong", async () => {
    answer({ Error: { Code: "AuthFailure.LoginFailed", Message: "user name or password is wrong" } });
    render(<SignIn onSignedIn={() => {}} />);
    await submit();
    expect((await screen.findByRole("alert")).textContent).toBe("The user name or password is wrong.");
  });

  it("shows the wait of a locked login and disables the button", async () => {
    answer({ Error: { Code: "AuthFailure.LoginLocked", Message: "too many failed logins for this user; retry after 61 s" } });
    render(<SignIn onSignedIn={() => {}} />);
    await submit();
    expect((await screen.findByTestId("locked")).textContent).toContain("Try again in 61 s");
    expect((screen.getByRole("button", { name: "Sign in" }) as HTMLButtonElement).disabled).toBe(true);
  });

  it("keeps the CSRF token and reports success", async () => {
    answer({ UserId: "usr-1", UserName: "ada", Role: "admin", CsrfToken: "tok", ExpireTime: "" });
    const done = vi.fn();
    render(<SignIn onSignedIn={done} />);
    await submit();
    await vi.waitFor(() => expect(done).toHaveBeenCalled());
    expect(localStorage.getItem("tianshu.csrf")).toBe("tok");
  });
});
