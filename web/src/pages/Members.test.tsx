import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import type { ReactNode } from "react";
import { SessionContext } from "../session";
import { sessionFor, stubActions } from "../testServer";
import { AddMember, kindOf, memberBody, Members } from "./Members";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  window.history.replaceState(null, "", "/");
});

const wrap = (actions: string[], admin = false) => ({ children }: { children: ReactNode }) => (
  <SessionContext.Provider value={sessionFor(actions, admin)}>{children}</SessionContext.Provider>
);

const members = {
  DescribeProjectMembers: () => ({ TotalCount: 2, MemberSet: [
    { ProjectId: "demo", PrincipalId: "usr-1", Name: "alice", Roles: ["operator"] },
    { ProjectId: "demo", PrincipalId: "app-1", Name: "demo-viewer", Roles: ["viewer"] },
  ] }),
  DescribeRoles: () => ({ TotalCount: 1, RoleSet: [{ Name: "viewer", BuiltIn: true, Actions: [] }] }),
};

describe("members", () => {
  it("name a person by user name and an app or user by id", () => {
    expect(memberBody("demo", " alice ", "viewer")).toEqual({ ProjectId: "demo", UserName: "alice", Role: "viewer" });
    expect(memberBody("demo", "app-1", "viewer")).toEqual({ ProjectId: "demo", PrincipalId: "app-1", Role: "viewer" });
    expect(kindOf("app-1")).toBe("app");
    expect(kindOf("usr-1")).toBe("person");
  });

  it("lists people and apps with their roles, without buttons for a viewer", async () => {
    const sent = stubActions(members);
    render(<Members />, { wrapper: wrap(["DescribeProjectMembers", "DescribeRoles"]) });
    expect((await screen.findByText("alice")).closest("tr")?.textContent).toContain("operator");
    expect(screen.getByText("demo-viewer").closest("tr")?.textContent).toContain("app");
    expect(sent.find((s) => s.action === "DescribeProjectMembers")?.body).toEqual({ ProjectId: "demo", Offset: 0, Limit: 20 });
    expect(screen.queryByRole("button", { name: /Add member|Remove|Change roles/ })).toBeNull();
  });

  it("offers add, change and remove to an admin", async () => {
    stubActions(members);
    render(<Members />, { wrapper: wrap(["DescribeProjectMembers", "DescribeRoles", "CreateProjectMember", "ModifyProjectMember", "DeleteProjectMember"]) });
    await screen.findByText("alice");
    expect(screen.getByRole("button", { name: "Add member" })).toBeTruthy();
    expect(screen.getByRole("button", { name: "Remove alice" })).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Change roles of alice" }));
    expect(window.location.search).toBe("?member=usr-1");
  });
});

describe("a member's roles", () => {
  it("open from the URL (?member=) and are replaced by the ones checked", async () => {
    window.history.replaceState(null, "", "/members?member=usr-1");
    const sent = stubActions({ ...members, ModifyProjectMember: () => ({}) });
    render(<Members />, { wrapper: wrap(["DescribeProjectMembers", "DescribeRoles", "ModifyProjectMember"]) });
    await screen.findByRole("heading", { name: "Roles of alice" });
    expect(sent.find((s) => s.body.PrincipalIds)?.body).toEqual({ ProjectId: "demo", PrincipalIds: ["usr-1"], Limit: 1 });
    fireEvent.click(await screen.findByLabelText("viewer"));
    fireEvent.click(screen.getByRole("button", { name: "Save roles" }));
    await vi.waitFor(() => expect(sent.some((s) => s.action === "ModifyProjectMember")).toBe(true));
    expect(sent.find((s) => s.action === "ModifyProjectMember")?.body).toEqual({ ProjectId: "demo", PrincipalId: "usr-1", Roles: ["operator", "viewer"] });
  });
});

describe("AddMember", () => {
  it("shows the server's UserName error next to the field", async () => {
    stubActions({ CreateProjectMember: () => ({ Error: { Code: "ResourceNotFound", Message: "UserName: no nobody" } }) });
    render(<AddMember projectId="demo" roles={["viewer", "operator"]} onDone={() => {}} />, { wrapper: wrap(["CreateProjectMember"]) });
    fireEvent.change(screen.getByLabelText("User name or app id"), { target: { value: "nobody" } });
    fireEvent.click(screen.getByRole("button", { name: "Add member" }));
    const err = await screen.findByRole("alert");
    expect(err.getAttribute("data-field-error")).toBe("UserName");
    expect(err.textContent).toBe("no nobody");
  });

  it("offers the users' names to a platform admin and sends the role chosen", async () => {
    const sent = stubActions({
      DescribeUsers: () => ({ TotalCount: 1, UserSet: [{ UserName: "alice" }] }),
      CreateProjectMember: () => ({ PrincipalId: "usr-1" }),
    });
    const done = vi.fn();
    const { container } = render(<AddMember projectId="demo" roles={["viewer", "operator"]} onDone={done} />,
      { wrapper: wrap(["CreateProjectMember", "DescribeUsers"], true) });
    await vi.waitFor(() => expect(container.querySelector('datalist option[value="alice"]')).not.toBeNull());
    fireEvent.change(screen.getByLabelText("User name or app id"), { target: { value: "alice" } });
    fireEvent.change(screen.getByLabelText("Role"), { target: { value: "operator" } });
    fireEvent.click(screen.getByRole("button", { name: "Add member" }));
    await vi.waitFor(() => expect(done).toHaveBeenCalledWith(true));
    expect(sent.at(-1)).toEqual({ action: "CreateProjectMember", body: { ProjectId: "demo", UserName: "alice", Role: "operator" } });
  });
});
