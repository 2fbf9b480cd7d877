// Audit: the device added by 20-devices is logged under the demo project;
// filter by action and verify the chain.

export async function admin({ page, base, shoot, check, step }) {
  step("audit: the device added earlier is logged; filter by action and verify the chain");
  // A person's call is logged under the project it acted on: the device was added in "demo".
  await page.goto(`${base}/audit?project=demo`);
  const auditSearch = page.getByRole("form", { name: "Search audit events" });
  await auditSearch.getByLabel("Action").fill("CreateDevice");
  await auditSearch.getByRole("button", { name: "Search" }).click();
  await page.waitForURL(/action=CreateDevice/);
  const created = page.locator('tr[data-action="CreateDevice"]', { hasText: "OK" }).first();
  await created.waitFor();
  check((await page.locator("tr[data-action]").count()) === (await page.locator('tr[data-action="CreateDevice"]').count()), "only CreateDevice events listed");
  await page.getByRole("button", { name: "Verify chain" }).click();
  const verified = page.getByTestId("verify-result");
  await verified.waitFor();
  check((await verified.textContent()).startsWith("Valid:"), `verify: ${await verified.textContent()}`);
  await shoot(page, "audit", [created, verified]);
}
