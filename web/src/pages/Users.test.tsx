import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import type { ReactNode } from "react";
import { SessionContext } from "../session";
import { sessionFor, stubActions } from "../testServer";
import { CreateUser, Users } from "./Users";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const wrap = (actions: string[]) => ({ children }: { children: ReactNode }) => (
  <SessionContext.Provider value={sessionFor(actions, true)}>{children}</SessionContext.Provider>
);

describe("CreateUser", () => {
  it("shows the password policy's error next to Password", async () => {
    stubActions({ CreateUser: () => ({ Error: { Code: "InvalidParameterValue", Message: "Password: must be at least 10 characters" } }) });
    render(<CreateUser onDone={() => {}} />);
    fireEvent.change(screen.getByLabelText("User name"), { target: { value: "bob" } });
    fireEvent.change(screen.getByLabelText("Password"), { target: { value: "short" } });
    fireEvent.click(screen.getByRole("button", { name: "Save user" }));
    const err = await screen.findByRole("alert");
    expect(err.getAttribute("data-field-error")).toBe("Password");
    expect(err.textContent).toBe("must be at least 10 characters");
  });
});

describe("Users", () => {
  const answers = {
    DescribeUsers: () => ({ TotalCount: 2, UserSet: [
      { UserId: "usr-me", UserName: "me", DisplayName: "", Role: "admin", Status: "active", CreatedTime: "" },
      { UserId: "usr-2", UserName: "bob", DisplayName: "Bob", Role: "viewer", Status: "disabled", CreatedTime: "" },
    ] }),
  };

  it("offers no disable or delete of oneself, and enables a disabled user", async () => {
    const sent = stubActions({ ...answers, ModifyUser: () => ({}) });
    render(<Users />, { wrapper: wrap(["DescribeUsers", "ModifyUser", "DeleteUser", "ResetUserPassword"]) });
    await screen.findByText("bob");
    expect(screen.queryByRole("button", { name: "Disable me" })).toBeNull();
    expect(screen.queryByRole("button", { name: "Delete me" })).toBeNull();
    fireEvent.click(screen.getByRole("button", { name: "Enable bob" }));
    await vi.waitFor(() => expect(sent.some((s) => s.action === "ModifyUser")).toBe(true));
    expect(sent.find((s) => s.action === "ModifyUser")?.body).toEqual({ UserId: "usr-2", Status: "active" });
  });

  it("tells a person who may not list users so", () => {
    stubActions(answers);
    render(<Users />, { wrapper: wrap(["DescribeProjectMembers"]) });
    expect(screen.getByRole("alert").textContent).toContain("Only platform administrators");
  });
});

describe("Projects", () => {
  it("pages the projects by ?projectoffset=, apart from the users' ?offset=", async () => {
    window.history.replaceState(null, "", "/users?offset=20&projectoffset=20");
    const sent = stubActions({
      DescribeUsers: () => ({ TotalCount: 21, UserSet: [] }),
      DescribeProjects: () => ({ TotalCount: 22, ProjectSet: [
        { ProjectId: "prj-21", Name: "site-21", Description: "", CreatedTime: "", Quota: { MaxApps: 0, MaxDevices: 0, MaxTasks: 0, MaxStorageBytes: 0 } },
        { ProjectId: "prj-22", Name: "site-22", Description: "", CreatedTime: "", Quota: { MaxApps: 0, MaxDevices: 0, MaxTasks: 0, MaxStorageBytes: 0 } },
      ] }),
    });
    render(<Users />, { wrapper: wrap(["DescribeUsers", "DescribeProjects"]) });
    expect(await screen.findByText("site-22")).toBeTruthy();
    expect(sent.find((s) => s.action === "DescribeProjects")?.body).toEqual({ Offset: 20, Limit: 20 });
    const pages = screen.getByRole("navigation", { name: "Pages of projects" });
    expect(pages.textContent).toContain("21–22 of 22");
    expect(pages.querySelector("a")?.getAttribute("href")).toBe("/users?offset=20");
    window.history.replaceState(null, "", "/");
  });
});
