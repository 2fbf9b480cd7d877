// Algorithms from a model file: onboard the tiny ONNX classifier that
// browser_test.go writes (input "images" [1,3,8,8], logits [1,3]) with the
// serving descriptor as a form. A size that does not match the model is
// refused with the server's error at the input group; fixed, the version
// starts on the onnx-cpu runtime and Try it answers a class. Skipped when
// the harness found no runtime installed (TIANSHU_ONNX_MODEL empty).
import { join } from "node:path";
import { stopAndDelete } from "../lib.mjs";

const NAME = "tiny-classifier-e2e";
const LABELS = ["dark", "middle", "bright"];

export async function admin({ page, media, shoot, check, step, goTo }) {
  const model = process.env.TIANSHU_ONNX_MODEL ?? "";
  if (!model) {
    step("model file: skipped, no onnx-cpu runtime installed (runtimes/onnx-node/node_modules)");
    return;
  }

  step("model file: the form takes the .onnx file and the serving descriptor");
  await goTo("Algorithms");
  await page.getByRole("button", { name: "Onboard algorithm" }).click();
  const form = page.locator("form", { has: page.getByRole("heading", { name: "Onboard an algorithm" }) });
  await form.getByLabel("Runtime").selectOption("model");
  await form.getByLabel("Name").fill(NAME);
  await form.getByLabel("Model file").setInputFiles(model);
  // The serving runtimes come from DescribeServingRuntimes, each saying whether this node runs it.
  const runtime = form.getByLabel("Serving runtime");
  await runtime.locator('option[value="onnx-cpu"]').waitFor({ state: "attached" });
  check((await runtime.inputValue()) === "onnx-cpu", "the runtime is onnx-cpu");
  const runtimeHint = await form.locator(`[id="${await runtime.getAttribute("aria-describedby")}"]`).textContent();
  check(/Speaks oip-v2/.test(runtimeHint), `the runtime is available here: ${runtimeHint}`);
  // 16×8 is not the model's 8×8: the server reads the file and says so at the input.
  await form.getByLabel("Width").fill("8");
  await form.getByLabel("Height").fill("16");
  await form.getByLabel("Output kind").selectOption("classification");
  await form.getByLabel("Top K").fill("3");
  await form.getByLabel("Labels").fill(LABELS.join("\n"));
  await form.getByLabel("Start it now").check();
  await form.getByRole("button", { name: "Save" }).click();
  const inputError = form.locator('[data-field-error="serving.input"]');
  await inputError.waitFor({ timeout: 60000 });
  const text = await inputError.textContent();
  check(/"images" float32 \[1,3,8,8\] does not match/.test(text), `the mismatch at the input: ${text}`);
  check((await form.getByTestId("upload-percent").textContent()) === "100%", "the model's upload reached 100%");
  await shoot(page, "algorithm-model-error", [inputError, form.getByTestId("upload-progress")]);

  step("model file: fixed, the version is created and its instance becomes ready");
  await form.getByLabel("Height").fill("8");
  await form.getByRole("button", { name: "Save" }).click();
  await page.getByRole("heading", { name: `Algorithm ${NAME}` }).waitFor({ timeout: 60000 });
  const version = page.locator('article[data-version="1"]');
  const contract = version.getByTestId("contract");
  await contract.getByRole("rowheader", { name: /^classes/ }).waitFor();
  check((await contract.getByRole("rowheader", { name: /^label/ }).count()) === 1, "the label output is filled in");
  const status = page.locator("article[data-instance]").first().getByTestId("instance-status");
  await status.waitFor({ timeout: 60000 });
  await page.waitForFunction((el) => el?.textContent === "ready", await status.elementHandle(), { timeout: 90000 });
  await shoot(page, "algorithm-model-detail", [contract, status]);

  step("model file: try it on a demo photo, a class comes back");
  await version.getByRole("link", { name: "Try it" }).click();
  const tryForm = page.locator("form.try");
  await tryForm.getByLabel("Image").setInputFiles(join(media, "1-astronaut.jpg"));
  await tryForm.getByRole("button", { name: "Run" }).click();
  const out = tryForm.getByTestId("try-json");
  await out.waitFor({ timeout: 60000 });
  const json = JSON.parse(await out.textContent());
  check(LABELS.includes(json.label) && json.classes?.length === 3, `the output: ${JSON.stringify(json).slice(0, 200)}`);
  const sum = json.classes.reduce((a, c) => a + c.score, 0);
  check(Math.abs(sum - 1) < 1e-3, `softmax scores sum to 1: ${sum}`);
  await shoot(page, "algorithm-model-try", [out]);

  step("model file: stop and delete it");
  await stopAndDelete(page, version, NAME);
}
