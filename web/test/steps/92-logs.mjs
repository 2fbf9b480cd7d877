// Logs and traces: the platform admin reads the server's last lines, narrowed to the
// gateway's; a face record's detail shows the trace that wrote it (the browser test's
// platform keeps recent traces in memory), and a span opens to its attributes; a task
// whose flow fails on every frame lists its node errors, and one opens the failed
// message's trace at the span that failed.

/** api runs an action with the page's session, for setup the pages under test do not do (a flow that fails). */
async function api(page, action, body) {
  const r = await page.evaluate(
    async ([action, body]) => {
      const res = await fetch("/", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-TC-Action": action, "X-Tianshu-CSRF": localStorage.getItem("tianshu.csrf") ?? "" },
        body: JSON.stringify(body),
      });
      return (await res.json()).Response;
    },
    [action, body],
  );
  if (r.Error) throw new Error(`${action}: ${r.Error.Code}: ${r.Error.Message}`);
  return r;
}

// FAILING fails every frame in its check node, naming the camera.
const FAILING = {
  name: "refuses-every-frame",
  nodes: [
    { id: "check", kind: "function", inputs: { dev: "$input.device" },
      config: { script: 'def main(input, params):\n    fail("no entry for " + str(input["dev"]))' } },
    { id: "save", kind: "store", config: { type: "never" }, inputs: { ok: "$check.ok" } },
  ],
  edges: [{ from: "check", to: "save" }],
};

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

  await nodeErrors({ page, base, shoot, check, step });
}

/** stopped waits until a task stopped, so that it may be deleted. */
async function stopped(page, id) {
  for (let i = 0; (await api(page, "DescribeTasks", { TaskIds: [id] })).TaskSet[0]?.Status !== "Stopped"; i++) {
    if (i === 240) throw new Error(`task ${id} did not stop`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function nodeErrors({ page, base, shoot, check, step }) {
  step("a task's node errors: one opens the failed message's trace at the span that failed");
  const cams = await api(page, "DescribeDevices", { ProjectId: "demo", Limit: 100 });
  const cam = cams.DeviceSet.find((d) => d.Name === "demo-camera");
  check(cam !== undefined, "the demo camera exists");
  const { FlowId } = await api(page, "CreateFlow", { ProjectId: "demo", Document: JSON.stringify(FAILING) });
  const { TaskId } = await api(page, "CreateTask", { ProjectId: "demo", Name: "refusing-task", FlowId, Start: true,
    Sources: [{ Type: "device", Id: cam.DeviceId }] });
  try {
    await page.goto(`${base}/tasks?project=demo&task=${TaskId}`);
    const err = page.getByTestId("node-error").first();
    await err.waitFor({ timeout: 90000 });
    check(/no entry for/.test((await err.textContent()) ?? ""), `the node error names its cause: ${await err.textContent()}`);
    await err.getByRole("button", { name: /^Trace of the check error/ }).click();
    const box = page.getByTestId("node-error-trace");
    const trace = box.locator('[aria-label="Trace"]');
    const note = box.getByTestId("trace-note");
    await trace.or(note).first().waitFor();
    check(await trace.isVisible(), `the error's trace is shown, not: ${(await note.count()) ? await note.textContent() : ""}`);
    const failed = trace.locator('[data-testid="span-row"][data-status="error"] .span-name');
    const names = await failed.allTextContents();
    check(names.some((n) => n.startsWith("flow.node check")), `the failed node's span is marked failed among ${names.join(", ")}`);
    const attrs = box.getByTestId("span-attributes");
    await attrs.waitFor();
    check(/flow\.node check/.test((await attrs.textContent()) ?? "") && /no entry for/.test((await attrs.textContent()) ?? ""),
      `the trace opens at the failed span with its error: ${await attrs.textContent()}`);
    await shoot(page, "task-node-error-trace", [err, trace, attrs]);
  } finally {
    await api(page, "StopTask", { TaskId });
    await stopped(page, TaskId);
    await api(page, "DeleteTask", { TaskId });
    await api(page, "DeleteFlow", { FlowId });
  }
}
