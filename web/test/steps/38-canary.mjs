// Canary: an algorithm with two endpoint versions (created stopped; no
// endpoint needs to answer), a canary of 30% of the gate group's cameras
// started on version 2 from the algorithm's page (a share out of range is
// refused next to its field), then promoted; the algorithm is deleted.
// (A viewer's card, with no controls, is Canary.test.tsx's.)
const NAME = "canary-e2e";

export async function admin({ page, shoot, check, step, goTo }) {
  step("canary: an algorithm with two versions, both endpoint, neither started");
  await goTo("Algorithms");
  await page.getByRole("button", { name: "Onboard algorithm" }).click();
  let form = page.locator("form", { has: page.getByRole("heading", { name: "Onboard an algorithm" }) });
  await form.getByLabel("Name").fill(NAME);
  await form.getByLabel("Runtime").selectOption("endpoint");
  await form.getByLabel("Endpoints").fill("http://127.0.0.1:9/");
  await form.getByLabel("Start it now").uncheck();
  await form.getByRole("button", { name: "Save" }).click();
  await page.getByRole("heading", { name: `Algorithm ${NAME}` }).waitFor({ timeout: 30000 });
  await page.getByRole("button", { name: "Add version" }).click();
  form = page.locator("form", { has: page.getByRole("heading", { name: `Add a version to ${NAME}` }) });
  await form.getByLabel("Runtime").selectOption("endpoint");
  await form.getByLabel("Endpoints").fill("http://127.0.0.1:9/v2/");
  await form.getByLabel("Start it now").uncheck();
  await form.getByRole("button", { name: "Save" }).click();
  await page.locator('article[data-version="2"]').waitFor({ timeout: 30000 });

  step("canary: 30% of the gate group's cameras on version 2; a share of 0 is refused next to its field");
  const card = page.getByTestId("canary");
  check((await card.getByTestId("canary-state").textContent()) === "Every camera calls version 1.", "before: every camera on version 1");
  await card.getByLabel("Canary version").selectOption("2");
  await card.getByLabel("Share of cameras (%)").fill("0");
  await card.getByLabel("Device groups").fill("gate");
  await card.getByRole("button", { name: "Start canary" }).click();
  await card.locator('[data-field-error="Percent"]').waitFor();
  await card.getByLabel("Share of cameras (%)").fill("30");
  await card.getByRole("button", { name: "Start canary" }).click();
  await page.getByTestId("canary-state").filter({ hasText: /^30% of the cameras of group gate call version 2; the others call version 1\.$/ }).waitFor({ timeout: 30000 });
  await shoot(page, "algorithm-canary", [page.getByTestId("canary")]);

  step("canary: promote version 2, then delete the algorithm");
  await page.getByTestId("canary").getByRole("button", { name: "Promote version 2" }).click();
  await page.getByTestId("canary-state").filter({ hasText: /^Every camera calls version 2\.$/ }).waitFor({ timeout: 30000 });
  await page.getByRole("link", { name: "← All algorithms" }).click();
  const row = page.locator(`tr[data-algorithm="${NAME}"]`);
  await row.getByRole("button", { name: `Delete ${NAME}` }).click();
  await row.getByRole("button", { name: `Confirm deleting ${NAME}` }).click();
  await row.waitFor({ state: "detached" });
}
