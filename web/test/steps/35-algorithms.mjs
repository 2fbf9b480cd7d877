// Algorithms: onboard the bundled example package (examples/algorithms/
// face-attributes-node, packed by browser_test.go) into the demo project
// with the tus upload's progress shown, see its contract, start it, see an
// instance become ready with log lines, try it on a demo photo and see the
// box drawn, then stop and delete it. One chunk of the upload is dropped on
// the way: the upload goes on from where the server is. A viewer sees no write buttons.
import { join } from "node:path";
import { env, stopAndDelete } from "../lib.mjs";

const NAME = "face-attributes-e2e";

export async function admin({ page, base, media, shoot, check, step, goTo }) {
  const pkg = env("TIANSHU_ALGORITHM_PACKAGE");

  step("algorithms: the list, with the built-ins");
  await goTo("Algorithms");
  const onboard = page.getByRole("button", { name: "Onboard algorithm" });
  await page.locator("tr[data-algorithm]").first().waitFor();
  await shoot(page, "algorithms", [onboard, page.locator("tr[data-algorithm]").first()]);

  step("onboard the example package: the upload's progress reaches 100%");
  await onboard.click();
  const form = page.locator("form", { has: page.getByRole("heading", { name: "Onboard an algorithm" }) });
  check(/[?&]add=1/.test(page.url()), `onboard form URL: ${page.url()}`);
  // Saving with no name: the server's error is next to the field.
  await form.getByLabel("Runtime").selectOption("process");
  await form.getByLabel("Package").setInputFiles(pkg);
  await form.getByRole("button", { name: "Save" }).click();
  await form.locator('[data-field-error="Name"]').waitFor();
  await form.getByLabel("Name").fill(NAME);
  await form.getByLabel("Description").fill("Age, gender and emotion of a face crop (Node.js, TF.js).");
  await form.getByLabel("Start it now").uncheck();

  // The version's creation is held until the finished upload is shot.
  const patches = [];
  const onRequest = (r) => {
    if (r.method() === "PATCH" && r.url().includes("/files/")) patches.push(r.url());
  };
  page.on("request", onRequest);
  let release;
  const held = new Promise((r) => (release = r));
  let reached;
  const creating = new Promise((r) => (reached = r));
  const hold = async (route) => {
    if (route.request().method() === "POST" && route.request().headers()["x-tc-action"] === "CreateAlgorithmVersion") {
      reached();
      await held;
    }
    await route.continue();
  };
  await page.route(`${base}/`, hold);
  // The connection drops during the second chunk: the client asks the
  // server where it is (HEAD) and goes on.
  const heads = [];
  let dropped = false;
  const drop = async (route) => {
    const r = route.request();
    if (r.method() === "HEAD") heads.push(r.url());
    if (r.method() === "PATCH" && patches.length === 2 && !dropped) {
      dropped = true;
      await route.abort("aborted");
      return;
    }
    await route.continue();
  };
  await page.route("**/files/**", drop);
  await form.getByRole("button", { name: /Save|Uploading/ }).click();
  await creating;
  const bar = form.getByTestId("upload-progress");
  const [value, max] = await bar.evaluate((el) => [el.value, el.max]);
  check(max > 0 && value === max, `progress ${value} of ${max}`);
  check((await form.getByTestId("upload-percent").textContent()) === "100%", "100% shown");
  check(patches.length >= 3, `the package went in chunks: ${patches.length} PATCH requests`);
  check(dropped && heads.length >= 1, `resumed after the dropped chunk: ${heads.length} HEAD requests`);
  await shoot(page, "algorithm-onboard", [bar, form.getByLabel("Name")]);
  release();
  page.off("request", onRequest);

  step("the new algorithm's page: its version and contract");
  await page.getByRole("heading", { name: `Algorithm ${NAME}` }).waitFor();
  // Polls may be passing through the handler: they finish on their own.
  await page.unrouteAll({ behavior: "ignoreErrors" });
  check(/[?&]algorithm=alg-/.test(page.url()), `detail URL: ${page.url()}`);
  const version = page.locator('article[data-version="1"]');
  const contract = version.getByTestId("contract");
  await contract.getByRole("rowheader", { name: "image" }).waitFor();
  check((await contract.getByRole("rowheader", { name: "objects" }).count()) === 1, "the objects output is shown");
  await page.waitForFunction((el) => el?.textContent === "stopped", await version.getByTestId("version-state").elementHandle());

  step("start it: an instance becomes ready and shows its log lines");
  await version.getByRole("button", { name: "Start version 1" }).click();
  const instance = page.locator("article[data-instance]").first();
  const status = instance.getByTestId("instance-status");
  await status.waitFor();
  await page.waitForFunction((el) => el?.textContent === "ready", await status.elementHandle(), { timeout: 90000 });
  const logs = instance.getByTestId("instance-logs");
  await page.waitForFunction((el) => /listening on 127\.0\.0\.1/.test(el?.textContent ?? ""), await logs.elementHandle());
  await shoot(page, "algorithm-detail", [contract, status, logs]);

  step("try it on a demo photo: the box and labels are drawn");
  await version.getByRole("link", { name: "Try it" }).click();
  check(/[?&]try=1/.test(page.url()), `try URL: ${page.url()}`);
  const tryForm = page.locator("form.try");
  await tryForm.getByLabel("Image").setInputFiles(join(media, "1-astronaut.jpg"));
  const canvas = tryForm.getByTestId("try-canvas");
  await page.waitForFunction((el) => el?.dataset.drawn === "image", await canvas.elementHandle());
  await tryForm.getByRole("button", { name: "Run" }).click();
  await page.waitForFunction((el) => el?.dataset.drawn === "result", await canvas.elementHandle(), { timeout: 60000 });
  check((await canvas.getAttribute("data-boxes")) === "1", "one box drawn");
  const json = JSON.parse(await tryForm.getByTestId("try-json").textContent());
  check(json.objects?.[0]?.label === "face", `the output: ${JSON.stringify(json).slice(0, 200)}`);
  // The box is the whole photo: its green edge is on the canvas.
  const edge = await canvas.evaluate((c) => Array.from(c.getContext("2d").getImageData(0, Math.floor(c.height / 2), 1, 1).data));
  check(edge[1] > 150 && edge[0] < 120, `the box's edge is green: rgba(${edge})`);
  await shoot(page, "algorithm-try", [canvas, tryForm.getByTestId("try-summary")]);

  step("stop and delete it: the demo is as it was");
  await stopAndDelete(page, version, NAME);
}

export async function viewer({ page, base, check, step }) {
  step("a viewer sees the algorithms but no onboard, start, stop, try or delete");
  await page.goto(`${base}/algorithms?project=demo`);
  const first = page.locator("tr[data-algorithm]").first();
  await first.waitFor();
  check((await page.getByRole("button", { name: "Onboard algorithm" }).count()) === 0, "no Onboard button for a viewer");
  check((await page.getByRole("button", { name: /^Delete / }).count()) === 0, "no Delete buttons for a viewer");
  await first.getByRole("link").first().click();
  await page.getByRole("heading", { name: /^Algorithm / }).waitFor();
  await page.getByRole("heading", { name: "Versions" }).waitFor();
  check((await page.getByRole("button", { name: /^(Start|Stop) version / }).count()) === 0, "no Start/Stop for a viewer");
  check((await page.getByRole("button", { name: "Add version" }).count()) === 0, "no Add version for a viewer");
  check((await page.getByRole("link", { name: "Try it" }).count()) === 0, "no Try it for a viewer");
}
