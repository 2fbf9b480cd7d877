// Overview: the demo's task with its frame rate, the demo's subscription with
// its lag, recent errors, numbers that link to their page; the project
// switcher.

export async function admin({ page, shoot, check, step }) {
  step("overview: counters of the demo project");
  const online = page.locator(".stat", { hasText: "Devices online" }).locator(".stat-value");
  await page.waitForFunction((el) => el && /^\d+$/.test(el.textContent ?? ""), await online.elementHandle());
  const running = page.locator(".stat", { hasText: "Tasks running" }).locator(".stat-value");
  // The demo's task is placed by the scheduler shortly after the platform starts.
  await page.waitForFunction((el) => el && Number(el.textContent) >= 1, await running.elementHandle(), { timeout: 90000 });

  step("overview: the demo's task reads frames (fps in > 0), refreshed live");
  const task = page.getByTestId("overview-tasks").locator('tr[data-task="demo-face-structuring"]');
  const fpsIn = task.locator('td[data-col="fps-in"]');
  await fpsIn.waitFor();
  await page.waitForFunction((el) => el && Number(el.textContent) > 0, await fpsIn.elementHandle(), { timeout: 90000 });
  check(/^\d+$/.test((await task.locator('td[data-col="dropped"]').textContent()) ?? ""), "the task's drops are counted");

  step("overview: the demo's subscription with its lag");
  const lagRow = page.getByTestId("overview-subscriptions").locator('tr[data-subscription="demo-faces"]');
  await lagRow.waitFor();
  check(/^\d+$/.test((await lagRow.locator('td[data-col="lag"]').textContent()) ?? ""), "the subscription's lag is a number");
  await page.getByTestId("overview-errors").waitFor();
  await shoot(page, "overview", [online, fpsIn, lagRow, page.getByTestId("overview-errors"), page.getByRole("button", { name: "Sign out" })]);

  step("a number links to the page that explains it");
  await page.locator(".stat", { hasText: "Tasks running" }).click();
  await page.waitForURL(/\/tasks\?.*status=Running/);
  await page.locator('tr[data-task="demo-face-structuring"]').waitFor();
  check((await page.getByLabel("Status").inputValue()) === "Running", "the tasks page is narrowed to running tasks");
  await page.goBack();
  await page.getByRole("heading", { name: "Overview", exact: true }).waitFor();

  step("the project switcher changes the URL");
  await page.getByLabel("Project").selectOption("default");
  await page.waitForURL(/project=default/);
  await page.getByLabel("Project").selectOption("demo");
  await page.waitForURL(/project=demo/);
}

export async function viewer({ page, check, step }) {
  step("a viewer's overview shows the demo's task");
  await page.getByTestId("overview-tasks").locator('tr[data-task="demo-face-structuring"]').waitFor({ timeout: 90000 });

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
