// Devices: list, add a replay device after a probe (a bad address shown next
// to Address), delete it; a viewer sees no Add or Delete.

export async function admin({ page, media, shoot, check, step, goTo }) {
  step("devices list");
  await goTo("Devices");
  await page.locator('tr[data-device="demo-camera"]').waitFor();
  await shoot(page, "devices", [page.locator('tr[data-device="demo-camera"]'), page.getByRole("button", { name: "Add device" })]);

  step("add a replay device: a bad address is shown next to Address");
  await page.getByRole("button", { name: "Add device" }).click();
  check(page.url().includes("add=1"), "the add form has its URL");
  const form = page.locator("form", { has: page.getByRole("heading", { name: "Add a device" }) });
  await form.getByLabel("Name").fill("console-camera");
  await form.getByLabel("Driver").selectOption("replay");
  // A path outside the server's media roots is refused, naming Address.
  await form.getByLabel("Address").fill("/etc/not-a-media-root");
  await form.getByRole("button", { name: "Probe" }).click();
  const addrErr = form.locator('[data-field-error="Address"]');
  await addrErr.waitFor();
  check((await addrErr.textContent()).length > 0, "Address error shown");

  step("probe, then save");
  await form.getByLabel("Address").fill(media);
  await form.getByRole("button", { name: "Probe" }).click();
  const probe = page.getByTestId("probe-result");
  await probe.waitFor();
  check((await probe.textContent()).startsWith("Probe: online"), `probe: ${await probe.textContent()}`);
  await shoot(page, "devices-add", [probe]);
  await form.getByRole("button", { name: "Save device" }).click();
  const row = page.locator('tr[data-device="console-camera"]');
  await row.waitFor();
  check(!page.url().includes("add=1"), "the form closes after saving");

  step("delete it");
  await row.getByRole("button", { name: "Delete console-camera" }).click();
  await row.getByRole("button", { name: "Confirm deleting console-camera" }).click();
  await row.waitFor({ state: "detached" });
}

export async function viewer({ page, base, shoot, check, step }) {
  step("a viewer sees no Add or Delete button, even at the add form's URL");
  await page.goto(`${base}/devices?project=demo&add=1`);
  await page.locator('tr[data-device="demo-camera"]').waitFor();
  check((await page.getByRole("button", { name: "Add device" }).count()) === 0, "no Add device button for a viewer");
  check((await page.getByRole("heading", { name: "Add a device" }).count()) === 0, "no add form for a viewer");
  check((await page.getByRole("button", { name: /^Delete / }).count()) === 0, "no Delete button for a viewer");
  await shoot(page, "devices-viewer", [page.locator('tr[data-device="demo-camera"]')]);
}
