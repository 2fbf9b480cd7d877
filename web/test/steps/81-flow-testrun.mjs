// Flow test runs: the demo's face-structuring flow run in the editor on an
// uploaded demo photo, every node's result on the canvas, the detect node's
// boxes drawn over the photo, one node (track) run alone on the outputs
// pinned from that run, and its two runs compared side by side; a short
// video made by ffmpeg from the photo run frame by frame; a viewer has no
// run controls.
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

async function openFlow(page) {
  const row = page.locator('tr[data-flow="face-structuring"]');
  await row.waitFor();
  await row.getByRole("link", { name: "face-structuring" }).click();
  await page.locator('.flow-node[data-node="detect"]').waitFor();
}

export async function admin({ page, media, shoot, check, step, goTo }) {
  step("test run: the whole flow on an uploaded photo, each node's result on the canvas");
  await goTo("Flows");
  await openFlow(page);
  const bar = page.getByRole("group", { name: "Test run" });
  await bar.getByLabel("File").setInputFiles(join(media, "1-astronaut.jpg"));
  await bar.getByRole("button", { name: "Run flow" }).click();
  const status = page.getByTestId("testrun-status");
  await page.waitForFunction((el) => /^Run #\d+ on 1-astronaut\.jpg/.test(el?.textContent ?? ""), await status.elementHandle(), { timeout: 90000 });
  check(!(await status.textContent()).includes("failed"), `the run: ${await status.textContent()}`);
  const detect = page.locator('.flow-node[data-node="detect"]');
  const result = await detect.getByTestId("node-result").textContent();
  check(/^ok · [\d.]+ ms · 1 object$/.test(result), `detect's result on the canvas: ${result}`);
  for (const id of ["faces", "track", "best"]) {
    const r = await page.locator(`.flow-node[data-node="${id}"]`).getByTestId("node-result").textContent();
    check(/^ok · [\d.]+ ms/.test(r), `${id}'s result on the canvas: ${r}`);
  }

  step("the detect node's output: JSON, the photo with its face boxed, the time");
  await detect.click();
  const results = page.getByRole("region", { name: "Test runs of detect" });
  await results.waitFor();
  const rects = results.getByTestId("testrun-boxes").locator("rect");
  await rects.first().waitFor();
  check((await rects.count()) > 0, "boxes drawn over the photo");
  const json = JSON.parse(await results.getByTestId("testrun-output").textContent());
  check(json.faces?.length === 1 && json.faces[0].box?.length === 4, `detect's output: ${JSON.stringify(json).slice(0, 200)}`);
  check(/ok · [\d.]+ ms · 1 object/.test(await results.getByTestId("testrun-run").locator("h3").textContent()), "the run's time and summary");

  step("the track node alone, on the outputs pinned from that run; its two runs compared");
  await page.locator('.flow-node[data-node="track"]').click();
  const track = page.getByRole("region", { name: "Test runs of track" });
  await track.waitFor();
  await bar.getByRole("button", { name: "Run this node" }).click();
  const history = track.getByTestId("testrun-history").locator("tbody tr");
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid="testrun-history"] tbody tr').length === n, 2, { timeout: 60000 });
  check((await history.count()) === 2, "two runs of track listed");
  check((await history.first().textContent()).includes("node alone"), `the latest run is the node alone: ${await history.first().textContent()}`);
  check(/^ok · /.test(await page.locator('.flow-node[data-node="track"]').getByTestId("node-result").textContent()), "track's new result on the canvas");
  await track.getByLabel(/^Compare run \d+$/).nth(0).check();
  await track.getByLabel(/^Compare run \d+$/).nth(1).check();
  const compare = track.getByTestId("testrun-compare");
  await compare.waitFor();
  check((await compare.getByTestId("testrun-run").count()) === 2, "two runs side by side");
  await compare.getByTestId("testrun-boxes").first().locator("rect").first().waitFor();
  await shoot(page, "flow-testrun", [bar, compare, page.locator('.flow-node[data-node="track"]').getByTestId("node-result")]);

  step("a short video runs frame by frame; the frame slider shows each frame's results");
  const video = join(mkdtempSync(join(tmpdir(), "tianshu-testrun-")), "face.mp4");
  execFileSync("ffmpeg", ["-y", "-loglevel", "error", "-loop", "1", "-t", "1", "-i", join(media, "1-astronaut.jpg"),
    "-f", "lavfi", "-t", "1", "-i", "color=black:s=512x512:r=10", "-filter_complex",
    "[0:v]scale=512:512,fps=10,format=yuv420p[a];[1:v]format=yuv420p[b];[a][b]concat=n=2:v=1[v]", "-map", "[v]", "-pix_fmt", "yuv420p", video]);
  await detect.click();
  await bar.getByLabel("File").setInputFiles(video);
  await bar.getByRole("button", { name: "Run flow" }).click();
  await page.waitForFunction((el) => /^Run #\d+ on face\.mp4 · \d+ frames/.test(el?.textContent ?? ""), await status.elementHandle(), { timeout: 120000 });
  check(!(await status.textContent()).includes("failed"), `the video run: ${await status.textContent()}`);
  const frames = Number(/(\d+) frames/.exec(await status.textContent())[1]);
  check(frames >= 8 && frames <= 12, `2 s at 5 frames a second: ${frames} frames`);
  const slider = page.getByRole("slider", { name: "Frame" });
  const badge = detect.getByTestId("node-result");
  check(!/1 object$/.test(await badge.textContent()), `the last frame (black) has no face: ${await badge.textContent()}`);
  await slider.fill("1");
  await page.waitForFunction((el) => / · 1 object$/.test(el?.textContent ?? ""), await badge.elementHandle());
  await page.getByTestId("testrun-frame").getByText(/^Frame 1 of \d+/).waitFor();
  await page.getByRole("region", { name: "Test runs of detect" }).getByTestId("testrun-boxes").locator("rect").first().waitFor();
  await shoot(page, "flow-testrun-video", [slider, badge]);
}

export async function viewer({ page, base, check, step }) {
  step("a viewer has no test-run controls");
  await page.goto(`${base}/flows?project=demo`);
  await openFlow(page);
  check((await page.getByRole("group", { name: "Test run" }).count()) === 0, "no test-run bar for a viewer");
  check((await page.getByRole("button", { name: "Run flow" }).count()) === 0, "no Run flow button for a viewer");
}
