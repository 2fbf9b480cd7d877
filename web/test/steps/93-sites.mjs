// Sites: an edge node of the demo project (the harness started a second
// platform as the edge box and joined it with the node's token; a camera on
// the node and a task over it wait, stopped) shows online with its last
// heartbeat, link latency, buffer and the versions the cloud deployed there;
// the task is started from the cloud and its records come back, listed by
// site; the devices list narrows to the site; a site is added (its join
// token shown once) and deleted; a viewer sees the sites but no controls.

export async function admin({ page, base, shoot, check, step }) {
  step("sites: the joined edge node is online");
  await page.goto(`${base}/sites?project=demo`);
  const row = page.locator('tr[data-site="north-gate"]');
  await row.waitFor();
  await row.locator('td[data-col="status"]', { hasText: "online" }).waitFor({ timeout: 60000 });

  step("start the site's task on the cloud: the edge runs it");
  await page.goto(`${base}/tasks?project=demo`);
  await page.getByRole("button", { name: "Start gate-faces" }).click();
  await page.getByRole("button", { name: "Stop gate-faces" }).waitFor();

  step("the site's page: last seen, latency, buffer, forwarded records and deployed versions");
  await page.goto(`${base}/sites?project=demo`);
  await row.locator('td[data-col="versions"]', { hasText: "flow" }).waitFor({ timeout: 60000 });
  await page.waitForFunction(() => Number(document.querySelector('tr[data-site="north-gate"] td[data-col="forwarded"]')?.textContent ?? "0") > 0,
    null, { timeout: 90000 });
  const latency = (await row.locator('td[data-col="latency"]').textContent()) ?? "";
  check(/^\d+\.\d ms$/.test(latency), `the link's latency: ${latency}`);
  const seen = (await row.locator('td[data-col="last-seen"]').textContent()) ?? "";
  check(/^\d{4}-\d\d-\d\d \d\d:\d\d$/.test(seen), `last seen: ${seen}`);
  check(/items?/.test((await row.locator('td[data-col="buffer"]').textContent()) ?? ""), "the buffer's depth is shown");
  check(/tianshu /.test((await row.locator('td[data-col="versions"]').textContent()) ?? ""), "the edge's software version is shown");
  await shoot(page, "sites", [row.locator('td[data-col="status"]')]);

  step("records narrowed to the site");
  await row.getByRole("link", { name: "Records" }).click();
  await page.waitForURL(/\/records\?.*site=edge-/);
  check((await page.getByLabel("Site").inputValue()).startsWith("edge-"), "the search form shows the site");
  const rec = page.locator("tr[data-type]").first();
  await rec.waitFor({ timeout: 90000 });
  const devices = await page.locator('tr[data-type] td[data-col="device"]').allTextContents();
  check(devices.length > 0 && devices.every((d) => d === "gate-cam"), `only the site's camera: ${devices}`);
  await shoot(page, "records-site", [rec]);

  step("devices narrowed to the site");
  await page.goto(`${base}/devices?project=demo`);
  await page.getByLabel("Site").selectOption({ label: "north-gate" });
  await page.waitForURL(/site=edge-/);
  const cam = page.locator('tr[data-device="gate-cam"]');
  await cam.waitFor();
  await page.locator('tr[data-device="demo-camera"]').waitFor({ state: "detached" });
  check((await cam.locator('td[data-col="site"]').textContent()) === "north-gate", "the device's site by name");
  await shoot(page, "devices-site", [cam]);

  step("add a site: its join token shown once; then delete it");
  await page.goto(`${base}/sites?project=demo`);
  await page.getByRole("button", { name: "Add site" }).click();
  const form = page.locator("form", { has: page.getByRole("heading", { name: "Add a site" }) });
  await form.getByLabel("Name", { exact: true }).fill("south-gate");
  await form.getByLabel("Description").fill("not joined yet");
  await form.getByRole("button", { name: "Add site" }).click();
  const dialog = page.getByRole("dialog");
  const token = await dialog.locator('[data-secret-value="Join token"]').inputValue();
  check(token.startsWith("tsedge1.edge-"), `the join token: ${token.slice(0, 20)}`);
  await shoot(page, "sites-add", [dialog]);
  await dialog.getByRole("button", { name: "I have saved it, close" }).click();
  const south = page.locator('tr[data-site="south-gate"]');
  await south.locator('td[data-col="status"]', { hasText: "pending" }).waitFor();
  await south.getByRole("button", { name: "Delete south-gate" }).click();
  await south.getByRole("button", { name: "Confirm deleting south-gate" }).click();
  await south.waitFor({ state: "detached" });
  check(/revoked/.test((await page.getByTestId("site-deleted").textContent()) ?? ""), "the delete says what it did");
}

export async function viewer({ page, base, check, step }) {
  step("a viewer sees the sites, without add or delete");
  await page.goto(`${base}/sites?project=demo`);
  await page.locator('tr[data-site="north-gate"]').waitFor();
  check((await page.getByRole("button", { name: "Add site" }).count()) === 0, "no Add site for a viewer");
  check((await page.getByRole("button", { name: /^Delete / }).count()) === 0, "no Delete for a viewer");
}
