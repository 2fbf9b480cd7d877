// Logs and traces: the platform admin reads the server's last lines, narrowed to the
// gateway's; a face record's detail shows the trace that wrote it (the browser test's
// platform keeps recent traces in memory), and a span opens to its attributes.

export async function admin({ page, base, shoot, check, step }) {
  step("logs: the server's last lines, narrowed to one component");
  await page.goto(`${base}/logs`);
  const rows = page.locator("tr[data-level]");
  await rows.first().waitFor();
  await page.getByLabel("Component").selectOption("api");
  await page.waitForURL(/component=api/);
  await page.waitForFunction(() => {
    const cells = [...document.querySelectorAll("tr[data-level] td:nth-child(3)")];
    return cells.length > 0 && cells.every((c) => c.textContent === "api");
  });
  const first = rows.first();
  check(/request_id=/.test((await first.textContent()) ?? ""), `a gateway line names its request: ${await first.textContent()}`);
  await shoot(page, "logs", [first]);

  step("a face record's detail shows the trace that wrote it");
  await page.goto(`${base}/records?project=demo&type=face`);
  const face = page.locator('tr[data-type="face"]').first();
  await face.waitFor({ timeout: 90000 });
  await face.getByRole("link").first().click();
  const trace = page.locator('[aria-label="Trace"]');
  const note = page.getByTestId("trace-note");
  await trace.or(note).first().waitFor();
  check(await trace.isVisible(), `the record's trace is shown, not: ${(await note.count()) ? await note.textContent() : ""}`);
  const spans = trace.getByTestId("span-row");
  const names = await spans.locator(".span-name").allTextContents();
  check(names.some((n) => n.startsWith("records.write")), `a records.write span among ${names.join(", ")}`);
  check(names.some((n) => n.startsWith("flow.node")), `flow node spans among ${names.join(", ")}`);
  await spans.locator(".span-name", { hasText: "records.write" }).first().click();
  const attrs = page.getByTestId("span-attributes");
  await attrs.waitFor();
  await shoot(page, "record-trace", [trace, attrs]);
}
