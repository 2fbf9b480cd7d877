// Overview: counters of the demo project, and the project switcher.

export async function admin({ page, shoot, check, step }) {
  step("overview");
  const online = page.locator(".stat", { hasText: "Devices online" }).locator(".stat-value");
  await page.waitForFunction((el) => el && /^\d+$/.test(el.textContent ?? ""), await online.elementHandle());
  check(Number(await online.textContent()) >= 0, "devices online counted");
  const running = page.locator(".stat", { hasText: "Tasks running" }).locator(".stat-value");
  // The demo's task is placed by the scheduler shortly after the platform starts.
  await page.waitForFunction((el) => el && Number(el.textContent) >= 1, await running.elementHandle(), { timeout: 90000 });
  await shoot(page, "overview", [online, page.getByRole("button", { name: "Sign out" })]);

  step("the project switcher changes the URL");
  await page.getByLabel("Project").selectOption("default");
  await page.waitForURL(/project=default/);
  await page.getByLabel("Project").selectOption("demo");
  await page.waitForURL(/project=demo/);
}

export async function viewer({ page, check, step }) {
  step("a viewer's navigation has no Audit entry");
  const nav = page.getByRole("navigation", { name: "Pages" });
  check((await nav.getByRole("link", { name: "Audit" }).count()) === 0, "no Audit entry for a viewer");
  check((await nav.getByRole("link", { name: "Devices" }).count()) === 1, "a Devices entry for a viewer");

  step("a viewer's write is refused by the server");
  const code = await page.evaluate(async () => {
    const r = await fetch("/", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-TC-Action": "CreateDevice", "X-Tianshu-CSRF": localStorage.getItem("tianshu.csrf") ?? "" },
      body: JSON.stringify({ ProjectId: "demo", Name: "sneaky", Driver: "replay", Address: "/tmp" }),
    });
    return (await r.json()).Response.Error?.Code ?? "OK";
  });
  check(code === "AuthFailure.UnauthorizedOperation", `viewer's CreateDevice: ${code}`);
}
