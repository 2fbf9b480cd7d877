// Apps: create an app (an empty name refused next to Name), edit it and its
// rate limits (a negative one refused next to its field), create
// a key pair and see its SecretKey once (copied to the clipboard; gone after
// the dialog closes and after a reload), disable, enable and delete the key,
// delete the app. A viewer sees the demo app and its SecretIds but no button
// that writes, and never a SecretKey.
import { readFileSync } from "node:fs";
import { join } from "node:path";

export async function admin({ page, base, shoot, check, step, goTo }) {
  step("apps list");
  await goTo("Apps");
  const demoRow = page.locator('tr[data-app="demo-viewer"]');
  await demoRow.waitFor();
  await shoot(page, "apps", [demoRow, page.getByRole("button", { name: "Create app" })]);

  step("create an app: an empty name is refused next to Name");
  await page.getByRole("button", { name: "Create app" }).click();
  check(page.url().includes("add=1"), "the create form has its URL");
  const form = page.locator("form", { has: page.getByRole("heading", { name: "Create an app" }) });
  await form.getByRole("button", { name: "Save app" }).click();
  const nameErr = form.locator('[data-field-error="Name"]');
  await nameErr.waitFor();
  check((await nameErr.textContent()) === "required", `Name error: ${await nameErr.textContent()}`);
  await form.getByLabel("Name").fill("console-app");
  await form.getByLabel("Role").selectOption("operator");
  await form.getByRole("button", { name: "Save app" }).click();
  await page.getByRole("heading", { name: "App console-app" }).waitFor();
  check(/[?&]app=app-/.test(page.url()), `the app's page has its URL: ${page.url()}`);

  step("edit it");
  await page.getByRole("button", { name: "Edit" }).click();
  const edit = page.locator("form", { has: page.getByRole("heading", { name: "Edit app console-app" }) });
  await edit.getByLabel("Description").fill("Made by the browser test.");
  await edit.getByRole("button", { name: "Save app" }).click();
  await edit.waitFor({ state: "detached" });
  await page.getByText("Made by the browser test.").waitFor();

  step("a platform admin sets its rate limits: a negative one is refused next to its field");
  await page.getByRole("button", { name: "Edit" }).click();
  await edit.getByLabel("Reads per second").fill("-1");
  await edit.getByRole("button", { name: "Save app" }).click();
  const rateErr = edit.locator('[data-field-error="RateLimit.ReadRps"]');
  await rateErr.waitFor();
  check((await edit.getByLabel("Reads per second").getAttribute("aria-invalid")) === "true", `ReadRps error: ${await rateErr.textContent()}`);
  await edit.getByLabel("Reads per second").fill("50");
  await edit.getByLabel("Writes per second").fill("10");
  await edit.getByLabel("Burst").fill("20");
  await edit.getByRole("button", { name: "Save app" }).click();
  await edit.waitFor({ state: "detached" });
  await page.getByText("50 reads/s, 10 writes/s, burst 20").waitFor();

  step("create a key: its SecretKey is shown once, with a copy button and a warning");
  await page.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  await page.getByRole("button", { name: "Create key" }).click();
  const dialog = page.getByRole("dialog", { name: "Your new key pair" });
  await dialog.waitFor();
  const secretId = await dialog.getByLabel("SecretId", { exact: true }).inputValue();
  const secretKey = await dialog.getByLabel("SecretKey", { exact: true }).inputValue();
  check(secretId.length > 8 && secretKey.length > 16, `a key pair is shown: ${secretId}`);
  check((await dialog.getByRole("note").textContent()).includes("only time it is shown"), "the dialog warns that it is shown once");
  await dialog.getByRole("button", { name: "Copy SecretKey" }).click();
  await dialog.getByText("Copied.").waitFor();
  check((await page.evaluate(() => navigator.clipboard.readText())) === secretKey, "the SecretKey is on the clipboard");
  await shoot(page, "app-key-secret", [dialog.getByLabel("SecretKey", { exact: true }), dialog.getByRole("button", { name: /I have saved it/ })]);
  await dialog.getByRole("button", { name: /I have saved it/ }).click();
  await dialog.waitFor({ state: "detached" });
  const keyRow = page.locator(`tr[data-key="${secretId}"]`);
  await keyRow.waitFor();
  check(!(await page.content()).includes(secretKey), "the SecretKey is gone once the dialog is closed");

  step("after a reload the SecretKey is not shown");
  await page.reload();
  await keyRow.waitFor();
  check((await page.getByRole("dialog").count()) === 0, "no dialog after a reload");
  check(!(await page.content()).includes(secretKey), "the SecretKey is not on the page after a reload");
  check(!page.url().includes(secretKey), "the SecretKey is not in the URL");
  await shoot(page, "app-detail", [keyRow, page.getByRole("button", { name: "Create key" })]);

  step("require a signed action for the key, then not");
  const signed = keyRow.getByRole("checkbox", { name: `Require a signed action for ${secretId}` });
  await signed.click();
  await keyRow.locator("input[type=checkbox]:checked").waitFor();
  await signed.click();
  await keyRow.locator("input[type=checkbox]:checked").waitFor({ state: "detached" });

  step("disable, enable and delete the key");
  await keyRow.getByRole("button", { name: `Disable ${secretId}` }).click();
  await keyRow.getByText("disabled", { exact: true }).waitFor();
  await keyRow.getByRole("button", { name: `Enable ${secretId}` }).click();
  await keyRow.getByText("active", { exact: true }).waitFor();
  await keyRow.getByRole("button", { name: `Disable ${secretId}` }).click();
  await keyRow.getByText("disabled", { exact: true }).waitFor();
  await keyRow.getByRole("button", { name: `Delete ${secretId}` }).click();
  await keyRow.getByRole("button", { name: `Confirm deleting ${secretId}` }).click();
  await keyRow.waitFor({ state: "detached" });

  step("delete the app");
  await page.getByRole("button", { name: "Delete console-app" }).click();
  await page.getByRole("button", { name: "Confirm deleting console-app" }).click();
  await page.getByRole("heading", { name: "Apps", exact: true }).waitFor();
  await demoRow.waitFor();
  check((await page.locator('tr[data-app="console-app"]').count()) === 0, "the app is gone from the list");
}

export async function viewer({ page, base, media, check, step }) {
  // The demo's app key, which the platform wrote next to its data (media is <data>/demo/photos).
  const demo = JSON.parse(readFileSync(join(media, "..", "..", "demo-credentials.json"), "utf8"));
  check(typeof demo.SecretKey === "string" && demo.SecretKey.length > 0, "the demo's credentials are readable");

  step("a viewer sees apps but no Create or Delete, even at the form's URL");
  await page.goto(`${base}/apps?project=demo&add=1`);
  const row = page.locator('tr[data-app="demo-viewer"]');
  await row.waitFor();
  check((await page.getByRole("button", { name: "Create app" }).count()) === 0, "no Create app button for a viewer");
  check((await page.getByRole("heading", { name: "Create an app" }).count()) === 0, "no create form for a viewer");
  check((await page.getByRole("button", { name: /^Delete / }).count()) === 0, "no Delete button for a viewer");

  step("a viewer sees the demo app's SecretIds, never a SecretKey");
  await row.getByRole("link", { name: "demo-viewer" }).click();
  await page.getByRole("heading", { name: "App demo-viewer" }).waitFor();
  await page.locator(`tr[data-key="${demo.SecretId}"]`).waitFor();
  for (const name of ["Create key", "Edit", /^Delete /, /^Disable /, /^Enable /]) {
    check((await page.getByRole("button", { name }).count()) === 0, `no ${name} button for a viewer`);
  }
  check(!(await page.content()).includes(demo.SecretKey), "no SecretKey on the viewer's page");
}
