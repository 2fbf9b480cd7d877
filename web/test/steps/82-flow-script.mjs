// Flow scripts, input and zones: in a new flow, a function node's script
// with a syntax error is marked at its line in the code editor and on the
// node, then fixed; the Input node's image is wired into a face detector;
// a zone node uses a zone drawn on the demo camera, then a polygon drawn
// here on its picture; the flow is saved. A viewer's code editor is
// read-only.

import { wire } from "../lib.mjs";

const FLOW = "script-flow";

export async function admin({ page, shoot, check, step, goTo }) {
  step("the demo camera has a zone drawn on it (drawn now if it has none)");
  await goTo("Devices");
  await page.locator('tr[data-device="demo-camera"]').getByRole("link", { name: "demo-camera" }).click();
  await page.getByRole("heading", { name: "Zones and lines" }).waitFor();
  await page.locator(".zone-canvas img").waitFor();
  if ((await page.locator("li[data-zone]").count()) === 0) {
    await page.getByRole("button", { name: "Add zone" }).click();
    await page.getByLabel("Zone 1 name").fill("door");
    await page.getByRole("button", { name: "Save zones" }).click();
    await page.getByText(/^Saved 1 zone/).waitFor();
  }
  const zoneName = await page.locator("li[data-zone]").first().getAttribute("data-zone");

  step("a new flow with a function node: the code editor highlights the script");
  await goTo("Flows");
  await page.getByRole("button", { name: "New flow" }).click();
  await page.getByRole("heading", { name: "New flow" }).waitFor();
  const name = `${FLOW}-${Date.now()}`;
  await page.getByLabel("Flow name").fill(name);
  const palette = page.getByRole("navigation", { name: "Node kinds" });
  await palette.getByText("logic", { exact: true }).click();
  await palette.getByRole("button", { name: "Add function" }).click();
  const fnNode = page.locator('.flow-node[data-node="function"]');
  await fnNode.waitFor();
  const panel = page.locator("aside", { has: page.getByRole("heading", { name: "Node function" }) });
  const code = panel.locator('[data-testid="script-editor"] .cm-content');
  await code.waitFor();
  check((await panel.locator(".cm-lineNumbers").count()) === 1, "the code editor numbers its lines");

  step("a syntax error is marked at its line in the editor and shown on the node");
  await code.focus();
  await page.keyboard.press("ControlOrMeta+a");
  // Deleted first: typing over a selection of highlighted words makes Chrome keep their look with a style attribute, which the CSP refuses (and logs).
  await page.keyboard.press("Backspace");
  // Typed as a person does: Enter indents the next line by itself.
  await page.keyboard.type("def main(input):\nfaces = input\nreturn faces +\n");
  const mark = panel.locator(".cm-lintRange-error, .cm-lintPoint-error");
  await mark.first().waitFor();
  const markedLine = await mark.first().evaluate((el) => [...el.closest(".cm-content").querySelectorAll(".cm-line")].indexOf(el.closest(".cm-line")) + 1);
  check(markedLine === 3, `the error is marked on line 3, not ${markedLine}: ${await panel.locator(".field-error").allTextContents()}`);
  check((await panel.locator(".cm-lint-marker-error").count()) === 1, "the gutter marks the line");
  check((await code.locator(".cm-line span[class]").count()) > 0, "the script is highlighted");
  const fnErrors = fnNode.getByTestId("node-errors");
  await fnErrors.waitFor();
  check(/config\.script/.test(await fnErrors.textContent()), `the node names the script: ${await fnErrors.textContent()}`);
  await shoot(page, "flow-script", [code, mark.first(), fnErrors]);

  step("fixed, the marks go");
  await code.focus();
  await page.keyboard.press("ControlOrMeta+a");
  // Deleted first: typing over a selection of highlighted words makes Chrome keep their look with a style attribute, which the CSP refuses (and logs).
  await page.keyboard.press("Backspace");
  // Typed key by key, as a person does: validation answers arrive between the keys, and every key
  // must still land where it was typed (the editor indents the second line itself).
  await page.keyboard.type("def main(input):\nreturn {'faces': input}\n", { delay: 20 });
  await fnErrors.waitFor({ state: "detached", timeout: 15000 })
    .catch(async () => check(false, `the fixed script still has problems: ${await fnErrors.textContent()}; the script: ${await code.textContent()}`));
  await mark.first().waitFor({ state: "detached" });
  await page.locator(".react-flow__controls-fitview").click();

  step("the Input node's image wired into a face detector writes the mapping");
  await palette.getByRole("button", { name: "Add face-detect" }).click();
  const det = page.locator('.flow-node[data-node="faceDetect"]');
  await det.waitFor();
  await det.getByTestId("node-errors").waitFor();
  await page.locator(".react-flow__controls-fitview").click();
  await wire(page, check, page.locator('.flow-node[data-node="input"] [data-handleid="out:image"]'), det.locator('[data-handleid="in:image"]'));
  await det.getByTestId("node-errors").waitFor({ state: "detached" });
  await page.locator('.react-flow__edge[aria-label^="input to faceDetect"]').waitFor();
  await det.click();
  const detPanel = page.locator("aside", { has: page.getByRole("heading", { name: "Node faceDetect" }) });
  check((await detPanel.getByLabel("Inputs (JSON)").inputValue()).includes('"image": "$input.image"'), "the wire is the mapping $input.image");

  step("a zone node uses the zone drawn on the demo camera");
  await palette.getByText("stream", { exact: true }).click();
  await palette.getByRole("button", { name: "Add zone" }).click();
  const zoneNode = page.locator('.flow-node[data-node="zone"]');
  await zoneNode.waitFor();
  const zonePanel = page.locator("aside", { has: page.getByRole("heading", { name: "Node zone" }) });
  const picker = zonePanel.getByTestId("zone-picker");
  await picker.getByLabel("Device").selectOption({ label: "demo-camera" });
  await picker.getByRole("button", { name: new RegExp(`^Use (zone|line) ${zoneName}$`) }).click();
  await picker.getByTestId("zone-current").getByText(`the zone "${zoneName}"`).waitFor();
  check((await zonePanel.getByLabel("zone", { exact: true }).inputValue()) === zoneName, "config.zone is the picked zone");

  step("a polygon drawn on the camera's picture replaces it, in pixels");
  await picker.getByRole("button", { name: "Draw on demo-camera's picture" }).click();
  const picture = picker.locator(".zone-canvas img");
  await page.waitForFunction((el) => el?.complete && el.naturalWidth > 0, await picture.elementHandle());
  await picker.getByRole("button", { name: "Draw zone" }).click();
  await picker.locator(".zone-canvas").scrollIntoViewIfNeeded();
  const box = await picker.locator(".zone-canvas").boundingBox();
  for (const [x, y] of [[0.2, 0.2], [0.8, 0.2], [0.8, 0.8], [0.2, 0.8]]) await page.mouse.click(box.x + box.width * x, box.y + box.height * y);
  await picker.getByRole("button", { name: "Finish zone (4 points)" }).click();
  await picker.getByTestId("zone-current").getByText("a polygon of 4 points").waitFor();
  check((await zonePanel.getByLabel("zone", { exact: true }).inputValue()) === "", "the named zone is gone");
  const polygon = JSON.parse(await zonePanel.getByLabel("polygon", { exact: true }).inputValue());
  check(polygon.length === 4 && polygon.every((p) => Number.isInteger(p[0]) && Number.isInteger(p[1])) && polygon[2][0] > polygon[0][0],
    `the polygon is in the picture's pixels: ${JSON.stringify(polygon)}`);

  step("its objects wired from the detector, the flow has no problem and is saved");
  // Drawing the polygon scrolled the page to the picker: bring the canvas back into view, or a
  // handle may lie outside the window, where the mouse cannot reach it.
  await page.getByTestId("flow-canvas").scrollIntoViewIfNeeded();
  // New nodes are placed side by side: move the zone below the detector so its ports are apart.
  const head = await zoneNode.locator(".flow-node-head").boundingBox();
  await page.mouse.move(head.x + 10, head.y + head.height / 2);
  await page.mouse.down();
  await page.mouse.move(head.x + 10, head.y + 160, { steps: 8 });
  await page.mouse.up();
  await page.locator(".react-flow__controls-fitview").click();
  await wire(page, check, det.locator('[data-handleid="out:faces"]'), zoneNode.locator('[data-handleid="in:objects"]'));
  await page.locator('.react-flow__edge[data-id="d:faceDetect.faces>zone.objects"]').waitFor({ state: "attached" });
  await page.locator('.react-flow__edge[data-id="c:edges:faceDetect>zone"]').waitFor({ state: "attached" });
  await zoneNode.getByTestId("node-errors").waitFor({ state: "detached", timeout: 10000 })
    .catch(async () => check(false, `the zone node has no problem: ${await zoneNode.getByTestId("node-errors").textContent()}`));
  const status = page.getByTestId("validation-status");
  await page.waitForFunction((el) => el?.textContent?.startsWith("No problems found."), await status.elementHandle());
  await shoot(page, "flow-zone", [picker.locator(".zone-canvas"), picker.getByTestId("zone-current"), zoneNode]);
  await page.getByRole("button", { name: "Save flow" }).click();
  await page.getByRole("heading", { name: `Flow ${name} v1` }).waitFor();
}

export async function viewer({ page, base, check, step }) {
  step("a viewer's code editor is read-only");
  await page.goto(`${base}/flows?project=demo`);
  const row = page.locator(`tr[data-flow^="${FLOW}-"]`).first();
  await row.waitFor();
  await row.getByRole("link").first().click();
  await page.locator('.flow-node[data-node="function"]').click();
  const code = page.locator('[data-testid="script-editor"] .cm-content');
  await code.waitFor();
  check((await code.getAttribute("contenteditable")) === "false", "the viewer cannot type in the script");
  check((await code.textContent()).includes("def main(input):"), "the viewer sees the script");
}
