// Live: the demo's camera with the faces its task finds drawn over the
// frames, the latency from capture to screen shown; a viewer watches too.

async function watchDemo({ page, base, check, step }, who) {
  step(`${who}: open Live and pick the demo's task`);
  await page.goto(`${base}/live?project=demo&grid=1&tiles=`);
  await page.getByRole("heading", { name: "Live", exact: true }).waitFor();
  const select = page.getByLabel("Camera 1");
  await page.waitForFunction((el) => el && [...el.options].some((o) => o.textContent === "demo-face-structuring"), await select.elementHandle(), {
    timeout: 90000,
  });
  await select.selectOption({ label: "demo-face-structuring" });
  await page.waitForURL(/tiles=task-/);

  step(`${who}: a frame is drawn with at least one box`);
  const tile = page.getByTestId("live-tile").first();
  await page.waitForFunction((el) => el && Number(el.dataset.boxes) >= 1, await tile.elementHandle(), { timeout: 60000 });
  const latency = tile.getByTestId("live-latency");
  await page.waitForFunction((el) => el && /^\d+ ms$/.test(el.textContent ?? ""), await latency.elementHandle());
  const ms = Number((await latency.textContent()).replace(" ms", ""));
  check(Number.isFinite(ms) && ms >= 0, `latency shown: ${ms}`);
  // The canvas holds the picture, not a blank: some of its pixels differ.
  const colours = await tile.locator("canvas").evaluate((c) => {
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    const seen = new Set();
    for (let i = 0; i < d.length && seen.size < 50; i += 4 * 97) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    return seen.size;
  });
  check(colours >= 10, `the canvas shows a picture (${colours} colours sampled)`);
  console.log(`   ${who}: ${await tile.getAttribute("data-frames")} frames, ${await tile.getAttribute("data-boxes")} boxes drawn, latency ${ms} ms of which the flow took ${Math.round(Number(await tile.getAttribute("data-flow-ms")))} ms`);
  return tile;
}

export async function admin(t) {
  await watchDemo(t, "admin");
  t.step("the grid size is in the URL");
  await t.page.getByRole("button", { name: "2×2" }).click();
  await t.page.waitForURL(/grid=2/);
  await t.page.waitForFunction((el) => el && Number(el.dataset.frames) >= 1, await t.page.getByTestId("live-tile").first().elementHandle(), { timeout: 30000 });
  await t.shoot(t.page, "live", [t.page.getByTestId("live-tile").first(), t.page.getByLabel("Camera 4")]);
}

export async function viewer(t) {
  await watchDemo(t, "viewer");
}
