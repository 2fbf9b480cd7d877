// The studio end to end, as a newcomer uses it: a face flow built on an
// empty canvas by dragging kinds from the palette and drawing wires (the
// frame from the Input node into a face detector, its faces into a tracker,
// the tracked faces, the frame and the device into the store's "+ input"),
// a miswired node marked by the
// server and undone, a test run on a bundled photo with the face boxed in
// the detector's output, saved; a parameter changed and saved again; the
// two versions compared; a task started on the new version over the demo
// camera, and its records found.
import { join } from "node:path";

// wire draws a wire with the mouse from one handle to another.
async function wire(page, check, from, to) {
  const a = await from.boundingBox();
  const b = await to.boundingBox();
  check(a !== null && b !== null, "both ends of the wire have handles");
  await page.mouse.move(a.x + a.width / 2, a.y + a.height / 2);
  await page.mouse.down();
  await page.mouse.move(b.x + b.width / 2, b.y + b.height / 2, { steps: 10 });
  await page.mouse.up();
}

export async function admin({ page, media, shoot, check, step, goTo }) {
  step("studio: a new flow, face-detect dragged from the palette onto the empty canvas");
  await goTo("Flows");
  await page.getByRole("button", { name: "New flow" }).click();
  await page.getByRole("heading", { name: "New flow" }).waitFor();
  const name = `studio-faces-${Date.now()}`;
  await page.getByLabel("Flow name").fill(name);
  const palette = page.getByRole("navigation", { name: "Node kinds" });
  const canvas = page.getByTestId("flow-canvas");
  // The empty flow's problem is shown above the canvas first: drag once the page stops moving.
  await page.getByTestId("document-errors").waitFor();
  const dropAt = async (label, x, y) => {
    const box = await canvas.boundingBox();
    await palette.getByRole("button", { name: `Add ${label}` }).dragTo(canvas, { targetPosition: { x: box.width * x, y: box.height * y } });
    await page.locator(`.flow-node[data-node="${label === "face-detect" ? "faceDetect" : label}"]`).waitFor();
    // Laid out left to right and fitted: nothing overlaps, every handle in view.
    await page.getByRole("button", { name: "Auto-layout" }).click();
    await page.waitForTimeout(300);
  };
  await dropAt("face-detect", 0.65, 0.25);
  const detect = page.locator('.flow-node[data-node="faceDetect"]');
  await detect.waitFor();
  const status = page.getByTestId("validation-status");

  step("the Input node's image wired into the detector");
  await wire(page, check, page.locator('.flow-node[data-node="input"] [data-handleid="out:image"]'), detect.locator('[data-handleid="in:image"]'));
  await page.locator('.react-flow__edge[aria-label^="input to faceDetect"]').waitFor({ state: "attached" });
  await detect.getByTestId("node-errors").waitFor({ state: "detached" });

  step("a tracker dragged in below, the detector's faces wired into it");
  await palette.getByText("stream", { exact: true }).click();
  await dropAt("track", 0.9, 0.7);
  const track = page.locator('.flow-node[data-node="track"]');
  await track.waitFor();
  await wire(page, check, detect.locator('[data-handleid="out:faces"]'), track.locator('[data-handleid="in:objects"]'));
  await page.locator('.react-flow__edge[aria-label^="faceDetect to track"]').first().waitFor({ state: "attached" });
  await page.waitForFunction((el) => el?.textContent?.startsWith("No problems found."), await status.elementHandle(), { timeout: 30000 });

  step("a store dragged in; the tracked faces, the frame and the device wired into its \"+ input\"");
  await palette.getByText("sink", { exact: true }).click();
  await dropAt("store", 0.95, 0.2);
  const store = page.locator('.flow-node[data-node="store"]');
  await store.click();
  const storePanel = page.locator("aside", { has: page.getByRole("heading", { name: "Node store" }) });
  await storePanel.getByLabel(/^type/).fill("studio-face");
  const more = store.locator('[data-handleid="in:+"]');
  await wire(page, check, track.locator('[data-handleid="out:objects"]'), more);
  await store.locator('[data-handleid="in:objects"]').waitFor();
  await wire(page, check, page.locator('.flow-node[data-node="input"] [data-handleid="out:image"]'), more);
  await store.locator('[data-handleid="in:image"]').waitFor();
  await wire(page, check, page.locator('.flow-node[data-node="input"] [data-handleid="out:device"]'), more);
  await store.locator('[data-handleid="in:device"]').waitFor();
  const mapped = JSON.parse(await storePanel.getByLabel("Inputs (JSON)").inputValue());
  check(mapped.objects === "$track.objects" && mapped.image === "$input.image" && mapped.device === "$input.device", `the wires are the store's fields: ${JSON.stringify(mapped)}`);
  await page.locator('.react-flow__edge[aria-label^="track to store"]').first().waitFor({ state: "attached" });
  await page.waitForFunction((el) => el?.textContent?.startsWith("No problems found."), await status.elementHandle(), { timeout: 30000 });

  step("a miswired node: the store's record id wired back into the detector closes a loop; the server marks it; undone");
  await page.locator(".react-flow__controls-fitview").click();
  await wire(page, check, store.locator('[data-handleid="out:recordId"]'), detect.locator('[data-handleid="in:model"]'));
  await page.waitForFunction((el) => /problems? found/.test(el?.textContent ?? "") && !el.textContent.startsWith("No"), await status.elementHandle(), { timeout: 30000 });
  const marked = page.locator('.flow-node[data-node="faceDetect"] [data-testid="node-errors"], .react-flow__edge.edge-invalid');
  await marked.first().waitFor();
  await shoot(page, "flow-studio-miswired", [marked.first()]);
  await page.getByRole("button", { name: "Undo" }).click();
  await page.waitForFunction((el) => el?.textContent?.startsWith("No problems found."), await status.elementHandle(), { timeout: 30000 });

  step("a test run on a bundled photo: the detector's output has the face boxed");
  const bar = page.getByRole("group", { name: "Test run" });
  await bar.getByLabel("File").setInputFiles(join(media, "1-astronaut.jpg"));
  await bar.getByRole("button", { name: "Run flow" }).click();
  const runStatus = page.getByTestId("testrun-status");
  await page.waitForFunction((el) => /^Run #\d+ on 1-astronaut\.jpg/.test(el?.textContent ?? ""), await runStatus.elementHandle(), { timeout: 90000 });
  check(!(await runStatus.textContent()).includes("failed"), `the run: ${await runStatus.textContent()}`);
  await detect.click();
  const results = page.getByRole("region", { name: "Test runs of faceDetect" });
  await results.getByTestId("testrun-boxes").locator("rect").first().waitFor();
  check(/1 object/.test(await detect.getByTestId("node-result").textContent()), `the detector found the face: ${await detect.getByTestId("node-result").textContent()}`);
  await shoot(page, "flow-studio-testrun", [results.getByTestId("testrun-boxes"), detect.getByTestId("node-result")]);

  step("saved as version 1; the tracker's iou changed and saved as version 2");
  await page.getByRole("button", { name: "Save flow" }).click();
  await page.getByRole("heading", { name: `Flow ${name} v1` }).waitFor();
  await page.locator('.flow-node[data-node="track"]').click();
  const trackPanel = page.locator("aside", { has: page.getByRole("heading", { name: "Node track" }) });
  await trackPanel.getByLabel("iou", { exact: true }).fill("0.4");
  await page.waitForFunction((el) => el?.textContent?.includes("Unsaved changes") && el.textContent.startsWith("No problems found."), await status.elementHandle(), { timeout: 30000 });
  await page.getByLabel("Comment").fill("iou 0.4");
  await page.getByRole("button", { name: "Save new version" }).click();
  await page.getByRole("heading", { name: `Flow ${name} v2` }).waitFor();

  step("the two versions compared: the tracker changed, iou unset → 0.4");
  await page.goto(page.url().replace(/&node=[^&]*/, "") + "&history=1");
  const history = page.getByTestId("flow-history");
  await history.getByRole("link", { name: "Show the changes" }).first().click();
  await page.getByRole("heading", { name: `Flow ${name}: v1 → v2` }).waitFor();
  const changes = page.getByTestId("diff-list");
  await changes.waitFor();
  check(/iou/.test(await changes.textContent()) && /0\.4/.test(await changes.textContent()), `the diff lists iou: ${await changes.textContent()}`);
  await shoot(page, "flow-studio-diff", [changes]);

  step("a task on version 2 over the demo camera runs and stores records");
  await goTo("Tasks");
  await page.getByRole("button", { name: "Create task" }).click();
  const taskForm = page.locator("form", { has: page.getByRole("heading", { name: "Create a task" }) });
  const taskName = `${name}-task`;
  await taskForm.getByLabel("Name").fill(taskName);
  await taskForm.getByLabel("Flow", { exact: true }).selectOption({ label: name });
  await taskForm.getByLabel("Flow version").locator('option[value="2"]').waitFor({ state: "attached" });
  await taskForm.getByLabel("Flow version").selectOption("2");
  await taskForm.getByLabel("demo-camera").check();
  await taskForm.getByRole("button", { name: "Save task" }).click();
  const row = page.locator(`tr[data-task="${taskName}"]`);
  await page.waitForFunction((el) => el?.textContent === "Running", await row.getByTestId("task-status").elementHandle(), { timeout: 90000 });
  check((await row.textContent()).includes(`${name} v2`), `the task runs v2: ${await row.textContent()}`);

  step("its records are found by the task");
  await goTo("Records");
  const search = page.getByRole("form", { name: "Search records" });
  await search.getByLabel("Task").selectOption({ label: taskName });
  await search.getByRole("button", { name: "Search" }).click();
  const rec = page.locator('tr[data-type="studio-face"]').first();
  for (let i = 0; i < 30 && (await rec.count()) === 0; i++) {
    await page.waitForTimeout(2000); // the camera replays a frame at a time: poll until the first is stored
    await search.getByRole("button", { name: "Search" }).click();
  }
  await rec.waitFor();
  await shoot(page, "flow-studio-records", [rec]);

  step("the task stopped and deleted");
  await goTo("Tasks");
  await row.getByRole("button", { name: `Stop ${taskName}` }).click();
  await page.waitForFunction((el) => el?.textContent === "Stopped", await row.getByTestId("task-status").elementHandle(), { timeout: 90000 });
  await row.getByRole("button", { name: `Delete ${taskName}` }).click();
  await row.getByRole("button", { name: `Confirm deleting ${taskName}` }).click();
  await row.waitFor({ state: "detached" });
}
