// Records: the demo's faces with thumbnails that load and names for ids, a
// search kept in the URL, an attribute filter that narrows the list, a CSV
// export, a record's detail with its frame and the face's box drawn on it,
// and a bulk delete of a filtered set with its progress.

/** totalOf reads "1–20 of 57" from the records' pager. */
async function totalOf(page) {
  const text = (await page.getByRole("navigation", { name: "Pages of records" }).textContent()) ?? "";
  return Number(/of (\d+)/.exec(text)?.[1] ?? NaN);
}

/**
 * faceRecords answers DescribeRecords of the face records of the task the page's search names (the newest 100),
 * through the action API as the page calls it: the same records the page lists (other tasks on the demo camera,
 * such as the one the tasks step made, store faces too).
 */
function faceRecords(page) {
  const task = new URL(page.url()).searchParams.get("task") ?? "";
  return page.evaluate(async (task) => {
    const r = await fetch("/", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-TC-Action": "DescribeRecords", "X-Tianshu-CSRF": localStorage.getItem("tianshu.csrf") ?? "" },
      body: JSON.stringify({ ProjectId: "demo", Types: ["face"], TaskIds: task ? [task] : undefined, Limit: 100 }),
    });
    return (await r.json()).Response;
  }, task);
}

/** qualities answers the Quality of the searched task's newest face records. */
async function qualities(page) {
  return (await faceRecords(page)).RecordSet.map((x) => x.Data.Quality);
}

export async function admin({ page, shoot, check, step, goTo, loaded }) {
  step("records: the demo's faces appear with a thumbnail that loads, and task and device names");
  await goTo("Records");
  const face = page.locator('tr[data-type="face"]').first();
  // The demo keeps a face's best shot a few seconds after the person leaves; the list refreshes itself.
  await face.waitFor({ timeout: 90000 });
  await page.waitForFunction(loaded, await face.locator("img.thumb").elementHandle());
  check((await face.locator('td[data-col="task"]').textContent()) === "demo-face-structuring", "the task's name, not its id");
  check((await face.locator('td[data-col="device"]').textContent()) === "demo-camera", "the device's name, not its id");
  await shoot(page, "records", [face.locator("img.thumb")]);

  step("search by task and type: the URL holds the search; the task is chosen by its name");
  const search = page.getByRole("form", { name: "Search records" });
  await search.getByLabel("Task").selectOption({ label: "demo-face-structuring" });
  await search.getByLabel("Type").fill("face");
  await search.getByRole("button", { name: "Search" }).click();
  await page.waitForURL(/type=face/);
  check(/[?&]task=task-/.test(page.url()), `records search URL: ${page.url()}`);
  await face.waitFor();

  step("an attribute filter narrows the list");
  // Faces of different quality: a threshold between them splits the records.
  let qs = [];
  for (let i = 0; i < 60; i++) {
    qs = await qualities(page);
    if (new Set(qs).size >= 2) break;
    await page.waitForTimeout(2000); // the demo stores a face every few seconds: poll for a second, different one
  }
  check(new Set(qs).size >= 2, `faces of two qualities at least: ${qs}`);
  const sorted = [...qs].sort((a, b) => a - b);
  const threshold = (sorted[0] + sorted[sorted.length - 1]) / 2;
  await search.getByRole("button", { name: "Add a filter" }).click();
  await search.getByLabel("Field 1").fill("Quality");
  await search.getByLabel("Comparison 1").selectOption(">=");
  await search.getByLabel("Value 1").fill(String(threshold));
  await search.getByRole("button", { name: "Search" }).click();
  await page.waitForURL(/attr=Quality%3E%3D/);
  // The faces below the threshold are left out: the filtered total is under the total of every face,
  // read after it (the demo stores faces all the while, and the list refreshes itself).
  let narrowed = NaN;
  let total = NaN;
  for (let i = 0; i < 30; i++) {
    narrowed = await totalOf(page);
    total = (await faceRecords(page)).TotalCount;
    if (narrowed > 0 && narrowed < total) break;
    await page.waitForTimeout(1000);
  }
  check(narrowed > 0 && narrowed < total, `the filter keeps some records and leaves some out: ${narrowed} of ${total}`);
  await shoot(page, "records-filtered", [search.getByLabel("Value 1"), face]);

  step("a bad filter value is shown next to its field");
  await search.getByLabel("Comparison 1").selectOption("<");
  await search.getByLabel("Value 1").fill("high");
  await search.getByRole("button", { name: "Search" }).click();
  await search.locator('[data-field-error="Attributes[0].Value"]').waitFor();
  await search.getByLabel("Comparison 1").selectOption(">=");
  await search.getByLabel("Value 1").fill(String(threshold));
  await search.getByRole("button", { name: "Search" }).click();
  await search.locator('[data-field-error="Attributes[0].Value"]').waitFor({ state: "detached" });

  step("export the search as CSV");
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export CSV" }).click()]);
  check(download.suggestedFilename() === "records.csv", `export file: ${download.suggestedFilename()}`);
  await page.getByTestId("export-note").filter({ hasText: /^Exported \d+ records/ }).waitFor();

  step("a record's detail shows its frame with the face's box drawn over it");
  await face.getByRole("link").first().click();
  await page.getByRole("heading", { name: /^Record / }).waitFor();
  check(/[?&]record=/.test(page.url()), `record URL: ${page.url()}`);
  const frame = page.getByTestId("record-frame");
  await frame.waitFor();
  await page.waitForFunction(loaded, await frame.elementHandle());
  const box = page.getByTestId("record-box").first();
  await box.waitFor();
  const f = await frame.boundingBox();
  const b = await box.boundingBox();
  check(b.width >= 4 && b.height >= 4, `the box is drawn: ${JSON.stringify(b)}`);
  check(b.x >= f.x - 2 && b.y >= f.y - 2 && b.x + b.width <= f.x + f.width + 2 && b.y + b.height <= f.y + f.height + 2,
    `the box ${JSON.stringify(b)} lies on the frame ${JSON.stringify(f)}`);
  check(b.width < f.width && b.height < f.height, "the box is a part of the frame");
  const crop = page.getByTestId("record-image").first();
  await page.waitForFunction(loaded, await crop.elementHandle());
  check((await page.getByTestId("record-json").textContent()).includes('"Type": "face"'), "the record's JSON is shown");
  await shoot(page, "record-detail", [frame, box, crop]);
  await page.getByRole("link", { name: "← All records" }).click();

  step("bulk delete the faces below the threshold, with a confirmation and progress");
  await search.getByLabel("Comparison 1").selectOption("<");
  await search.getByRole("button", { name: "Search" }).click();
  await page.waitForURL(/attr=Quality%3C[0-9]/);
  const pagerNow = await page.getByRole("navigation", { name: "Pages of records" }).elementHandle();
  await page.waitForFunction((el) => /of [1-9]/.test(el?.textContent ?? ""), pagerNow);
  const bulk = page.getByRole("group", { name: "Delete many records" });
  await bulk.getByRole("button", { name: /^Delete all \d+ matching$/ }).click();
  const confirmButton = bulk.getByRole("button", { name: /^Confirm deleting \d+ records$/ });
  const n = Number(/(\d+)/.exec((await confirmButton.textContent()) ?? "")?.[1]);
  check(n > 0, `records to delete: ${n}`);
  await shoot(page, "records-bulk-delete", [confirmButton]);
  await confirmButton.click();
  const note = page.getByTestId("delete-note");
  await note.filter({ hasText: /^Deleted \d+ records\.$/ }).waitFor({ timeout: 60000 });
  const deleted = Number(/(\d+)/.exec((await note.textContent()) ?? "")?.[1]);
  check(deleted >= 1 && deleted <= n, `deleted ${deleted} of the ${n} confirmed`);
  const left = await qualities(page);
  check(left.filter((q) => q < threshold).length < n, `the faces below ${threshold} went: ${left}`);
}

export async function viewer({ page, check, step, base }) {
  step("a viewer sees records but no delete buttons");
  await page.goto(`${base}/records?project=demo`);
  await page.locator('tr[data-type="face"]').first().waitFor({ timeout: 90000 });
  check((await page.getByRole("group", { name: "Delete many records" }).count()) === 0, "no bulk delete for a viewer");
  check((await page.getByRole("button", { name: /^Delete/ }).count()) === 0, "no Delete button for a viewer");
}
