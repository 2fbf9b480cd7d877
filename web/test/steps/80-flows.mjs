// Flows: the demo's face-structuring flow opened in the editor, a setting
// out of bounds shown on its node and fixed, a new version saved; a new flow
// built from the palette and saved; a viewer
// sees the flow but no New flow or Save.

export async function admin({ page, shoot, check, step, goTo }) {
  step("flows: the list has the demo's flow");
  await goTo("Flows");
  const row = page.locator('tr[data-flow="face-structuring"]');
  await row.waitFor();
  await shoot(page, "flows", [row, page.getByRole("button", { name: "New flow" })]);

  step("the editor draws the flow's nodes and finds no problem");
  await row.getByRole("link", { name: "face-structuring" }).click();
  await page.getByRole("heading", { name: /^Flow face-structuring v\d+$/ }).waitFor();
  check(/[?&]flow=flow-[^&]+&version=\d+/.test(page.url()), `editor URL: ${page.url()}`);
  const version = Number(/version=(\d+)/.exec(page.url())?.[1]);
  for (const id of ["detect", "faces", "track", "best", "keep"]) await page.locator(`.flow-node[data-node="${id}"]`).waitFor();
  const status = page.getByTestId("validation-status");
  await page.waitForFunction((el) => el?.textContent?.startsWith("No problems found."), await status.elementHandle());

  step("a wire between ports whose types do not connect is refused, with the reason");
  const from = await page.locator('.flow-node[data-node="detect"] [data-handleid="out:width"]').boundingBox();
  const to = await page.locator('.flow-node[data-node="track"] [data-handleid="in:objects"]').boundingBox();
  check(from !== null && to !== null, "the ports have handles");
  await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
  await page.mouse.down();
  await page.mouse.move(to.x + to.width / 2, to.y + to.height / 2, { steps: 8 });
  await page.mouse.up();
  const refused = page.getByTestId("connect-refused");
  await refused.waitFor();
  check(/\$detect\.width is an integer, but input "objects" of track takes a list of objects/.test(await refused.textContent()),
    `the reason: ${await refused.textContent()}`);
  check(!(await status.textContent()).includes("Unsaved"), "a refused wire changes nothing");

  step("a setting out of its bounds is shown on its node and beside its field");
  await page.locator('.flow-node[data-node="track"]').click();
  check(/[?&]node=track/.test(page.url()), `node panel URL: ${page.url()}`);
  const panel = page.locator("aside", { has: page.getByRole("heading", { name: "Node track" }) });
  const iou = panel.getByLabel("iou", { exact: true });
  await iou.fill("5");
  const nodeErrors = page.locator('.flow-node[data-node="track"]').getByTestId("node-errors");
  await nodeErrors.waitFor();
  check(/config\.iou/.test(await nodeErrors.textContent()), `the error names config.iou: ${await nodeErrors.textContent()}`);
  await panel.locator('[data-field-error="config.iou"]').waitFor();
  await shoot(page, "flow-editor", [page.locator('.flow-node[data-node="detect"]'), nodeErrors, iou]);

  step("fixed, the error goes; saved, the flow has a new version");
  await iou.fill("0.35");
  await nodeErrors.waitFor({ state: "detached" });
  await page.waitForFunction((el) => el?.textContent?.startsWith("No problems found."), await status.elementHandle());
  await page.getByLabel("Comment").fill("iou 0.35 from the browser test");
  await page.getByRole("button", { name: "Save new version" }).click();
  await page.getByRole("heading", { name: `Flow face-structuring v${version + 1}` }).waitFor();
  check(new RegExp(`version=${version + 1}`).test(page.url()), `new version URL: ${page.url()}`);
  await page.locator('.flow-node[data-node="track"]').click();
  check((await panel.getByLabel("iou", { exact: true }).inputValue()) === "0.35", "the saved version has the new iou");
  await page.getByRole("link", { name: "← All flows" }).click();
  await page.locator('tr[data-flow="face-structuring"]').getByText(`v${version + 1}`).waitFor();

  step("a new flow: a node from the palette, its input mapped, saved as version 1");
  await page.getByRole("button", { name: "New flow" }).click();
  await page.getByRole("heading", { name: "New flow" }).waitFor();
  const name = `browser-flow-${Date.now()}`;
  await page.getByLabel("Flow name").fill(name);
  await page.getByRole("button", { name: "Add face-detect" }).click();
  await page.locator('.flow-node[data-node="faceDetect"]').waitFor();
  const required = page.locator('.flow-node[data-node="faceDetect"]').getByTestId("node-errors");
  await required.waitFor();
  const inputs = page.locator("aside", { has: page.getByRole("heading", { name: "Node faceDetect" }) }).getByLabel("Inputs (JSON)");
  await inputs.fill('{"image": "$input.image"}');
  await required.waitFor({ state: "detached" });
  await page.getByRole("button", { name: "Save flow" }).click();
  await page.getByRole("heading", { name: `Flow ${name} v1` }).waitFor();
  await page.locator('.flow-node[data-node="faceDetect"]').waitFor();
}

export async function viewer({ page, base, check, step }) {
  step("a viewer sees the flow in the editor, without New flow or Save");
  await page.goto(`${base}/flows?project=demo`);
  const row = page.locator('tr[data-flow="face-structuring"]');
  await row.waitFor();
  check((await page.getByRole("button", { name: "New flow" }).count()) === 0, "no New flow button for a viewer");
  await row.getByRole("link", { name: "face-structuring" }).click();
  await page.locator('.flow-node[data-node="detect"]').waitFor();
  check((await page.getByRole("button", { name: /^Save/ }).count()) === 0, "no Save button for a viewer");
  check((await page.getByRole("navigation", { name: "Node kinds" }).count()) === 0, "no palette for a viewer");
}
