// Records: the demo's faces with thumbnails that load, a search kept in the
// URL, a CSV export, a record's detail.

export async function admin({ page, shoot, check, step, goTo, loaded }) {
  step("records: the demo's faces appear with a thumbnail that loads");
  await goTo("Records");
  const face = page.locator('tr[data-type="face"]').first();
  // The demo keeps a face's best shot a few seconds after the person leaves; the list refreshes itself.
  await face.waitFor({ timeout: 90000 });
  await page.waitForFunction(loaded, await face.locator("img.thumb").elementHandle());
  await shoot(page, "records", [face.locator("img.thumb")]);

  step("search by task and type: the URL holds the search");
  const search = page.getByRole("form", { name: "Search records" });
  await search.getByLabel("Task").selectOption({ index: 1 });
  await search.getByLabel("Type").fill("face");
  await search.getByRole("button", { name: "Search" }).click();
  await page.waitForURL(/type=face/);
  check(/[?&]task=task-/.test(page.url()), `records search URL: ${page.url()}`);
  await face.waitFor();

  step("export the search as CSV");
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export CSV" }).click()]);
  check(download.suggestedFilename() === "records.csv", `export file: ${download.suggestedFilename()}`);
  await page.getByTestId("export-note").filter({ hasText: /^Exported \d+ records/ }).waitFor();

  step("a record's detail shows its JSON and its images");
  await face.getByRole("link").first().click();
  await page.getByRole("heading", { name: /^Record / }).waitFor();
  check(/[?&]record=/.test(page.url()), `record URL: ${page.url()}`);
  const image = page.getByTestId("record-image").first();
  await image.waitFor();
  await page.waitForFunction(loaded, await image.elementHandle());
  check((await page.getByTestId("record-json").textContent()).includes('"Type": "face"'), "the record's JSON is shown");
  await shoot(page, "record-detail", [image]);
}
