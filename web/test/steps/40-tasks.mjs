// Tasks: the demo's task stopped and started again, its detail, the create
// form with the flow's parameters, a task created from it on the demo camera,
// run, stopped and deleted; a viewer sees no task buttons.

export async function admin({ page, shoot, check, step, goTo }) {
  step("tasks: the demo's task runs; stop it and start it again");
  await goTo("Tasks");
  const demoTask = page.locator('tr[data-task="demo-face-structuring"]');
  const taskStatus = demoTask.getByTestId("task-status");
  await page.waitForFunction((el) => el?.textContent === "Running", await taskStatus.elementHandle(), { timeout: 90000 });
  await shoot(page, "tasks", [demoTask, page.getByRole("button", { name: "Create task" })]);
  await demoTask.getByRole("button", { name: "Stop demo-face-structuring" }).click();
  await page.waitForFunction((el) => el?.textContent === "Stopped", await taskStatus.elementHandle(), { timeout: 90000 });
  await demoTask.getByRole("button", { name: "Start demo-face-structuring" }).click();
  await page.waitForFunction((el) => el?.textContent === "Running", await taskStatus.elementHandle(), { timeout: 90000 });

  step("a task's detail has its URL, counters and nodes");
  await demoTask.getByRole("link", { name: "demo-face-structuring" }).click();
  await page.getByRole("heading", { name: "Task demo-face-structuring" }).waitFor();
  check(/[?&]task=/.test(page.url()), `task detail URL: ${page.url()}`);
  await shoot(page, "task-detail", [page.getByTestId("task-stats")]);
  await page.getByRole("link", { name: "← All tasks" }).click();

  step("the create-task form offers the flow's parameters");
  await page.getByRole("button", { name: "Create task" }).click();
  const taskForm = page.locator("form", { has: page.getByRole("heading", { name: "Create a task" }) });
  // Earlier steps may have made newer flows (the OCR template's): pick the demo's by its name.
  await taskForm.getByLabel("Flow", { exact: true }).selectOption({ label: "face-structuring" });
  await taskForm.getByLabel("minFaceSize").waitFor();
  check((await taskForm.getByLabel("Flow", { exact: true }).locator("option:checked").textContent()) === "face-structuring", "the flow is chosen by its name");
  await taskForm.getByLabel("demo-camera").waitFor();
  await taskForm.getByLabel(/^Topics/).waitFor();
  await taskForm.getByRole("button", { name: "Save task" }).click();
  await taskForm.locator('[data-field-error="Name"]').waitFor();
  await shoot(page, "tasks-create", [taskForm.getByLabel("minFaceSize")]);

  step("create a task on the demo camera with a parameter, see it run, stop it and delete it");
  await taskForm.getByLabel("Name").fill("console-task");
  await taskForm.getByLabel("demo-camera").check();
  await taskForm.getByLabel("minFaceSize").fill("48");
  await taskForm.getByRole("button", { name: "Save task" }).click();
  const created = page.locator('tr[data-task="console-task"]');
  const createdStatus = created.getByTestId("task-status");
  await createdStatus.waitFor();
  check(!page.url().includes("add=1"), "the form closes after saving");
  await page.waitForFunction((el) => el?.textContent === "Running", await createdStatus.elementHandle(), { timeout: 90000 });
  await created.getByRole("button", { name: "Stop console-task" }).click();
  await page.waitForFunction((el) => el?.textContent === "Stopped", await createdStatus.elementHandle(), { timeout: 90000 });
  await created.getByRole("button", { name: "Delete console-task" }).click();
  await created.getByRole("button", { name: "Confirm deleting console-task" }).click();
  await created.waitFor({ state: "detached" });
}

export async function viewer({ page, base, check, step }) {
  step("a viewer sees no task buttons");
  await page.goto(`${base}/tasks?project=demo`);
  await page.locator('tr[data-task="demo-face-structuring"]').waitFor();
  check((await page.getByRole("button", { name: /^(Stop|Start|Delete) / }).count()) === 0, "no task buttons for a viewer");
  check((await page.getByRole("button", { name: "Create task" }).count()) === 0, "no Create task button for a viewer");
}
