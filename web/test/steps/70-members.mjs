// Users, members, roles and my account: the platform admin creates a user
// (a weak password refused next to Password), adds them to the demo as
// operator, makes a custom role of Describe* on one camera and gives them
// only that; signed in as that user in a second browser context they see
// that one camera. Everything made here is removed at the end. A viewer
// sees members and roles but no Users entry and no buttons that change them.

const USER = "people-op";
const PASSWORD = "people-op-password-42";
const ROLE = "people-one-camera";
const OTHER = "people-other-camera";

/** api runs an action with the page's session, for setup the pages under test do not do (a second camera). */
async function api(page, action, body) {
  const r = await page.evaluate(
    async ([action, body]) => {
      const res = await fetch("/", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-TC-Action": action, "X-Tianshu-CSRF": localStorage.getItem("tianshu.csrf") ?? "" },
        body: JSON.stringify(body),
      });
      return (await res.json()).Response;
    },
    [action, body],
  );
  if (r.Error) throw new Error(`${action}: ${r.Error.Code}: ${r.Error.Message}`);
  return r;
}

export async function admin({ page, base, media, shoot, check, step, goTo }) {
  step("users: a weak password is refused next to Password, then the user is created");
  await goTo("Users");
  await page.getByRole("button", { name: "Create user" }).click();
  const userForm = page.locator("form", { has: page.getByRole("heading", { name: "Create a user" }) });
  await userForm.getByLabel("User name").fill(USER);
  await userForm.getByLabel("Password", { exact: true }).fill("password");
  await userForm.getByRole("button", { name: "Save user" }).click();
  const pwErr = userForm.locator('[data-field-error="Password"]');
  await pwErr.waitFor();
  check((await pwErr.textContent()).length > 0, "the policy's error next to Password");
  check((await userForm.getByLabel("Password", { exact: true }).getAttribute("aria-invalid")) === "true", "Password marked invalid");
  await userForm.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await userForm.getByRole("button", { name: "Save user" }).click();
  const userRow = page.locator(`tr[data-user="${USER}"]`);
  await userRow.waitFor();
  check(!page.url().includes("add=1"), "the form closes after saving");
  await shoot(page, "users", [userRow, page.getByRole("button", { name: "Create user" })]);

  step("members: add the user to the demo as operator, by name");
  const other = await api(page, "CreateDevice", { ProjectId: "demo", Name: OTHER, Driver: "replay", Address: media, Fps: 1 });
  await goTo("Members");
  await page.getByRole("button", { name: "Add member" }).click();
  const memberForm = page.locator("form", { has: page.getByRole("heading", { name: "Add a member" }) });
  await memberForm.getByLabel("User name or app id").fill(USER);
  await memberForm.getByLabel("Role").selectOption("operator");
  await memberForm.getByRole("button", { name: "Add member" }).click();
  const memberRow = page.locator(`tr[data-member="${USER}"]`);
  await memberRow.waitFor();
  check((await memberRow.getByTestId("member-roles").textContent()) === "operator", "listed as operator");

  step("roles: the built-in ones are read-only; create one of Describe* on one camera");
  await goTo("Roles");
  const owner = page.locator('tr[data-role="owner"]');
  await owner.waitFor();
  check((await owner.getByRole("button").count()) === 0, "no buttons on a built-in role");
  await page.getByRole("button", { name: "Create role" }).click();
  const roleForm = page.locator("form", { has: page.getByRole("heading", { name: "Create a role" }) });
  await roleForm.getByLabel("Name", { exact: true }).fill(ROLE);
  check((await roleForm.getByLabel("Pattern 1").inputValue()) === "Describe*", "Describe* offered");
  await roleForm.getByRole("group", { name: "Devices" }).getByLabel("demo-camera").check();
  await roleForm.getByRole("button", { name: "Save role" }).click();
  const roleRow = page.locator(`tr[data-role="${ROLE}"]`);
  await roleRow.waitFor();
  check((await roleRow.textContent()).includes("devices demo-camera"), "the scope read by name");
  await shoot(page, "roles", [roleRow, owner]);

  step("a built-in role shows the actions it grants");
  await owner.getByRole("link", { name: "owner" }).click();
  await page.getByRole("heading", { name: "Role owner" }).waitFor();
  check((await page.getByTestId("role-actions").locator("li").count()) > 20, "the owner's actions listed");
  await page.getByRole("link", { name: "← All roles" }).click();

  step("editing: a pattern that matches nothing is refused next to it");
  await roleRow.getByRole("button", { name: `Edit ${ROLE}` }).click();
  await page.getByRole("heading", { name: `Edit role ${ROLE}` }).waitFor();
  check(/[?&]role=role-/.test(page.url()), `role edit URL: ${page.url()}`);
  const pattern = page.getByLabel("Pattern 1");
  await pattern.fill("*Devise*");
  await page.getByRole("button", { name: "Save role" }).click();
  const patErr = page.locator('[data-field-error="Actions[0]"]');
  await patErr.waitFor();
  await shoot(page, "role-edit", [patErr, page.getByRole("group", { name: "Devices" })]);
  await pattern.fill("Describe*");
  await page.getByRole("button", { name: "Save role" }).click();
  await roleRow.waitFor();

  step("members: give the user only the custom role");
  await goTo("Members");
  await memberRow.getByRole("button", { name: `Change roles of ${USER}` }).click();
  const rolesForm = page.locator("form", { has: page.getByRole("heading", { name: `Roles of ${USER}` }) });
  await rolesForm.getByLabel("operator").uncheck();
  await rolesForm.getByLabel(ROLE).check();
  await rolesForm.getByRole("button", { name: "Save roles" }).click();
  await memberRow.getByTestId("member-roles").filter({ hasText: new RegExp(`^${ROLE}$`) }).waitFor();
  await shoot(page, "members", [memberRow, page.getByRole("button", { name: "Add member" })]);

  step("my account: the sessions list marks this one");
  await page.getByRole("link", { name: "My account: admin" }).click();
  await page.getByRole("heading", { name: "My account" }).waitFor();
  const current = page.locator('tr[data-session="current"]');
  await current.waitFor();
  check((await current.textContent()).includes("This session"), "this session marked");
  await shoot(page, "my-account", [current, page.getByRole("button", { name: "Change password" })]);

  step("signed in as the scoped user, Devices shows only their camera");
  const ctx = await page.context().browser().newContext({ viewport: { width: 1280, height: 800 } });
  const errors = [];
  try {
    const p2 = await ctx.newPage();
    p2.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    p2.on("pageerror", (e) => errors.push(e.message));
    await p2.goto(`${base}/devices?project=demo`);
    await p2.getByLabel("User name").fill(USER);
    await p2.getByLabel("Password").fill(PASSWORD);
    await p2.getByRole("button", { name: "Sign in" }).click();
    await p2.locator('tr[data-device="demo-camera"]').waitFor();
    const rows = await p2.locator("tr[data-device]").evaluateAll((rs) => rs.map((r) => r.getAttribute("data-device")));
    check(rows.length === 1 && rows[0] === "demo-camera", `the scoped user's devices: ${rows}`);
    const nav = p2.getByRole("navigation", { name: "Pages" });
    check((await nav.getByRole("link", { name: "Users" }).count()) === 0, "no Users entry for the scoped user");
    check((await p2.getByRole("button", { name: "Add device" }).count()) === 0, "no Add device for Describe* only");
  } finally {
    await ctx.close();
  }
  check(errors.length === 0, `the scoped user's page logged errors: ${errors.join("; ")}`);

  step("clean up: remove the member, delete the role, the user and the camera");
  await page.goto(`${base}/members?project=demo`);
  await memberRow.getByRole("button", { name: `Remove ${USER}` }).click();
  await memberRow.getByRole("button", { name: `Confirm remove ${USER}` }).click();
  await memberRow.waitFor({ state: "detached" });
  await goTo("Roles");
  await roleRow.getByRole("button", { name: `Delete ${ROLE}` }).click();
  await roleRow.getByRole("button", { name: `Confirm deleting ${ROLE}` }).click();
  await roleRow.waitFor({ state: "detached" });
  await goTo("Users");
  await userRow.getByRole("button", { name: `Delete ${USER}` }).click();
  await userRow.getByRole("button", { name: `Confirm deleting ${USER}` }).click();
  await userRow.waitFor({ state: "detached" });
  await api(page, "DeleteDevice", { DeviceId: other.DeviceId });
}

export async function viewer({ page, base, check, step }) {
  step("a viewer sees members and roles, but no Users entry and no buttons that change them");
  const nav = page.getByRole("navigation", { name: "Pages" });
  check((await nav.getByRole("link", { name: "Users" }).count()) === 0, "no Users entry for a viewer");
  await page.goto(`${base}/members?project=demo&add=1`);
  await page.locator('tr[data-member="vic"]').waitFor();
  check((await page.getByRole("button", { name: /^(Add member|Remove |Change roles )/ }).count()) === 0, "no member buttons for a viewer");
  check((await page.getByRole("heading", { name: "Add a member" }).count()) === 0, "no add form for a viewer");
  await page.goto(`${base}/roles?project=demo&add=1`);
  await page.locator('tr[data-role="viewer"]').waitFor();
  check((await page.getByRole("button", { name: /^(Create role|Edit |Delete )/ }).count()) === 0, "no role buttons for a viewer");
  await page.goto(`${base}/users?project=demo`);
  await page.getByText("Only platform administrators manage users.").waitFor();
}
