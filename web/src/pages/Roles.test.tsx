import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { grantable, matched, matches, RoleForm, Roles, scopeText } from "./Roles";
import type { RoleInfo, Resources } from "./Roles";
import type { ReactNode } from "react";
import { SessionContext } from "../session";
import { sessionFor, stubActions } from "../testServer";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const ACTIONS = ["DescribeDevices", "DescribeTasks", "ModifyDevice", "StartTask"];
const res: Resources = {
  devices: [
    { DeviceId: "dev-1", Name: "gate", Group: "site-a" },
    { DeviceId: "dev-2", Name: "hall", Group: "" },
  ] as Resources["devices"],
  tasks: [{ TaskId: "task-1", Name: "faces", Status: "Running" }],
};

function role(over: Partial<RoleInfo>): RoleInfo {
  return { RoleId: "role-1", ProjectId: "demo", Name: "gate-watch", Description: "", BuiltIn: false, Actions: ["Describe*"], DeviceIds: [],
    DeviceGroups: [], TaskIds: [], CreatedTime: "", ...over };
}

describe("action patterns", () => {
  it("match as the server's: * is any run of characters, the rest is literal", () => {
    expect(matches("Describe*", "DescribeDevices")).toBe(true);
    expect(matches("*Device*", "ModifyDevice")).toBe(true);
    expect(matches("StartTask", "StartTasks")).toBe(false);
    expect(matches("Describe.", "DescribeX")).toBe(false);
    expect(matched("Describe*", ACTIONS)).toEqual(["DescribeDevices", "DescribeTasks"]);
    expect(matched("  ", ACTIONS)).toEqual([]);
  });
  it("are offered from the owner role's actions", () => {
    expect(grantable([role({ BuiltIn: true, Name: "owner", Actions: ACTIONS }), role({})])).toEqual(ACTIONS);
    expect(grantable([])).toEqual([]);
  });
  it("scopes read by name", () => {
    expect(scopeText(role({ DeviceIds: ["dev-1", "dev-9"], TaskIds: ["task-1"] }), res)).toBe("devices gate, dev-9; tasks faces");
    expect(scopeText(role({}), res)).toBe("every resource of the project");
  });
});

describe("RoleForm", () => {
  it("sends the patterns and the devices picked by name, skipping empty rows", async () => {
    const sent = stubActions({ CreateRole: () => ({ RoleId: "role-2" }) });
    const done = vi.fn();
    render(<RoleForm projectId="demo" actions={ACTIONS} res={res} onDone={done} />);
    fireEvent.change(screen.getByLabelText("Name"), { target: { value: "gate-watch" } });
    expect(screen.getByText(/matches 2: DescribeDevices, DescribeTasks/)).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Add pattern" }));
    fireEvent.click(screen.getByLabelText(/gate/));
    fireEvent.click(screen.getByRole("button", { name: "Save role" }));
    await vi.waitFor(() => expect(done).toHaveBeenCalledWith(true));
    expect(sent[0]).toEqual({ action: "CreateRole", body: { ProjectId: "demo", Name: "gate-watch", Description: "", Actions: ["Describe*"],
      DeviceIds: ["dev-1"], DeviceGroups: [], TaskIds: [] } });
  });

  it("shows the server's Actions[k] error next to the row it came from", async () => {
    stubActions({ ModifyRole: () => ({ Error: { Code: "InvalidParameterValue", Message: `Actions[0]: "*Devise*" matches no action a role may grant` } }) });
    render(<RoleForm projectId="demo" role={role({ Actions: ["", "*Devise*"] })} actions={ACTIONS} res={res} onDone={() => {}} />);
    expect(screen.getByRole("heading", { name: "Edit role gate-watch" })).toBeTruthy();
    expect(screen.queryByLabelText("Name")).toBeNull();
    fireEvent.click(screen.getByRole("button", { name: "Save role" }));
    const err = await screen.findByRole("alert");
    expect(err.getAttribute("data-field-error")).toBe("Actions[1]");
    expect(err.textContent).toBe(`"*Devise*" matches no action a role may grant`);
    expect(screen.getByLabelText("Pattern 2").getAttribute("aria-invalid")).toBe("true");
  });
});

describe("Roles", () => {
  it("pages the roles from the server by ?offset= and still offers the owner's actions to a new role", async () => {
    window.history.replaceState(null, "", "/roles?offset=20&add=1");
    const owner = role({ RoleId: "", Name: "owner", BuiltIn: true, Actions: ACTIONS });
    const sent = stubActions({
      DescribeRoles: (b) => (b.Offset === 20
        ? { TotalCount: 21, RoleSet: [role({ RoleId: "role-21", Name: "late" })] }
        : { TotalCount: 21, RoleSet: [owner] }),
    });
    const wrap = ({ children }: { children: ReactNode }) => (
      <SessionContext.Provider value={sessionFor(["DescribeRoles", "CreateRole"])}>{children}</SessionContext.Provider>
    );
    render(<Roles />, { wrapper: wrap });
    expect(await screen.findByText("late")).toBeTruthy();
    expect(screen.getByRole("navigation", { name: "Pages of roles" }).textContent).toContain("21–21 of 21");
    const asked = sent.filter((s) => s.action === "DescribeRoles").map((s) => s.body);
    expect(asked).toContainEqual({ ProjectId: "demo", Offset: 20, Limit: 20 });
    expect(asked).toContainEqual({ ProjectId: "demo", Limit: 1 });
    window.history.replaceState(null, "", "/");
  });
});
