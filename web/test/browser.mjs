// The console's browser test: drives Debian's Chromium (never a downloaded
// browser) through playwright-core against a running platform with the demo.
// web/browser_test.go starts the platform and runs this script; it can also
// run by hand against `tianshu serve --demo`:
//
//   TIANSHU_URL=http://127.0.0.1:8080 TIANSHU_ADMIN_PASSWORD=… TIANSHU_MEDIA=./tianshu-data/demo/photos \
//   TIANSHU_VIEWER_USER=… TIANSHU_VIEWER_PASSWORD=… TIANSHU_SCREENSHOTS=/tmp/shots node web/test/browser.mjs
//
// Any console error or uncaught exception in the page fails the run.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const env = (k, def) => {
  const v = process.env[k] ?? def;
  if (v === undefined) throw new Error(`${k} is not set`);
  return v;
};
const base = env("TIANSHU_URL");
const adminPassword = env("TIANSHU_ADMIN_PASSWORD");
const media = env("TIANSHU_MEDIA");
const viewerUser = env("TIANSHU_VIEWER_USER");
const viewerPassword = env("TIANSHU_VIEWER_PASSWORD");
const shots = env("TIANSHU_SCREENSHOTS");
const executablePath = env("CHROMIUM", "/usr/bin/chromium");
mkdirSync(shots, { recursive: true });

const WIDTHS = [
  { name: "1280", width: 1280, height: 800 },
  { name: "390", width: 390, height: 844 },
];

const problems = [];
let current = null; // the page in use, shot when a step fails
function watch(page, who) {
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`${who}: console error: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`${who}: uncaught: ${e.message}`));
  // A poll cut short by closing the page is aborted, not failed.
  page.on("requestfailed", (r) => {
    if (r.failure()?.errorText !== "net::ERR_ABORTED") problems.push(`${who}: request failed: ${r.url()} ${r.failure()?.errorText}`);
  });
}

function step(name) {
  console.log(`-- ${name}`);
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

// shoot saves the page at every width, each after the element that proves
// the page is there is visible at that width.
async function shoot(page, name, mustSee) {
  for (const w of WIDTHS) {
    await page.setViewportSize({ width: w.width, height: w.height });
    for (const l of mustSee) await l.waitFor({ state: "visible" });
    // The page's title is near the top at every width: no empty band pushes the page down.
    const title = await page.locator("h1").first().boundingBox();
    check(title !== null && title.y < 320, `${name} at ${w.name} px: the title is at y=${title?.y}`);
    await page.screenshot({ path: join(shots, `${name}-${w.name}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  ctx.setDefaultTimeout(30000);
  const page = await ctx.newPage();
  current = page;
  watch(page, "admin");

  step("sign-in page");
  await page.goto(`${base}/devices?project=demo`);
  const userName = page.getByLabel("User name");
  await shoot(page, "signin", [userName, page.getByRole("button", { name: "Sign in" })]);

  step("the server's error is shown next to the field it names");
  await page.getByRole("button", { name: "Sign in" }).click();
  const userErr = page.locator('[data-field-error="UserName"]');
  await userErr.waitFor();
  check((await userErr.textContent()) === "required", "UserName: required next to the user name");
  check((await userName.getAttribute("aria-invalid")) === "true", "user name marked invalid");

  step("sign in as admin, keyboard only");
  await userName.focus();
  await page.keyboard.type("admin");
  await page.keyboard.press("Tab");
  await page.keyboard.type(adminPassword);
  await page.keyboard.press("Enter");
  // The shared URL opens after sign-in.
  await page.getByRole("heading", { name: "Devices" }).waitFor();
  check(page.url().endsWith("/devices?project=demo"), `URL kept after sign-in: ${page.url()}`);

  step("overview");
  await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Overview" }).click();
  await page.getByRole("heading", { name: "Overview" }).waitFor();
  check(page.url().includes("/overview?project=demo"), `overview URL: ${page.url()}`);
  const online = page.locator(".stat", { hasText: "Devices online" }).locator(".stat-value");
  await page.waitForFunction((el) => el && /^\d+$/.test(el.textContent ?? ""), await online.elementHandle());
  check(Number(await online.textContent()) >= 0, "devices online counted");
  const running = page.locator(".stat", { hasText: "Tasks running" }).locator(".stat-value");
  // The demo's task is placed by the scheduler shortly after the platform starts.
  await page.waitForFunction((el) => el && Number(el.textContent) >= 1, await running.elementHandle(), { timeout: 90000 });
  await shoot(page, "overview", [online, page.getByRole("button", { name: "Sign out" })]);

  step("the project switcher changes the URL");
  await page.getByLabel("Project").selectOption("default");
  await page.waitForURL(/project=default/);
  await page.getByLabel("Project").selectOption("demo");
  await page.waitForURL(/project=demo/);

  step("devices list");
  await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Devices" }).click();
  await page.locator('tr[data-device="demo-camera"]').waitFor();
  await shoot(page, "devices", [page.locator('tr[data-device="demo-camera"]'), page.getByRole("button", { name: "Add device" })]);

  step("add a replay device: a bad address is shown next to Address");
  await page.getByRole("button", { name: "Add device" }).click();
  check(page.url().includes("add=1"), "the add form has its URL");
  const form = page.locator("form", { has: page.getByRole("heading", { name: "Add a device" }) });
  await form.getByLabel("Name").fill("console-camera");
  await form.getByLabel("Driver").selectOption("replay");
  // A path outside the server's media roots is refused, naming Address.
  await form.getByLabel("Address").fill("/etc/not-a-media-root");
  await form.getByRole("button", { name: "Probe" }).click();
  const addrErr = form.locator('[data-field-error="Address"]');
  await addrErr.waitFor();
  check((await addrErr.textContent()).length > 0, "Address error shown");

  step("probe, then save");
  await form.getByLabel("Address").fill(media);
  await form.getByRole("button", { name: "Probe" }).click();
  const probe = page.getByTestId("probe-result");
  await probe.waitFor();
  check((await probe.textContent()).startsWith("Probe: online"), `probe: ${await probe.textContent()}`);
  await shoot(page, "devices-add", [probe]);
  await form.getByRole("button", { name: "Save device" }).click();
  const row = page.locator('tr[data-device="console-camera"]');
  await row.waitFor();
  check(!page.url().includes("add=1"), "the form closes after saving");

  step("delete it");
  await row.getByRole("button", { name: "Delete console-camera" }).click();
  await row.getByRole("button", { name: "Confirm deleting console-camera" }).click();
  await row.waitFor({ state: "detached" });

  step("tasks: the demo's task runs; stop it and start it again");
  await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Tasks" }).click();
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
  await taskForm.getByLabel("minFaceSize").waitFor();
  await taskForm.getByRole("button", { name: "Save task" }).click();
  await taskForm.locator('[data-field-error="Name"]').waitFor();
  await shoot(page, "tasks-create", [taskForm.getByLabel("minFaceSize")]);
  await taskForm.getByRole("button", { name: "Cancel" }).click();

  step("records: the demo's faces appear with a thumbnail that loads");
  await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Records" }).click();
  const face = page.locator('tr[data-type="face"]').first();
  // The demo keeps a face's best shot a few seconds after the person leaves; the list refreshes itself.
  await face.waitFor({ timeout: 90000 });
  const loaded = (el) => el?.complete === true && el.naturalWidth > 0;
  await page.waitForFunction(loaded, await face.locator("img.thumb").elementHandle());
  await shoot(page, "records", [face.locator("img.thumb")]);

  step("search by task and type: the URL holds the search");
  const search = page.getByRole("form", { name: "Search records" });
  await search.getByLabel("Task").selectOption({ index: 1 });
  await search.getByLabel("Type").fill("face");
  await search.getByRole("button", { name: "Search" }).click();
  await page.waitForURL(/type=face/);
  check(/[?&]task=task-/.test(page.url()), `records search URL: ${page.url()}`);
  await face.waitFor();

  step("export the search as CSV");
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export CSV" }).click()]);
  check(download.suggestedFilename() === "records.csv", `export file: ${download.suggestedFilename()}`);
  await page.getByTestId("export-note").filter({ hasText: /^Exported \d+ records/ }).waitFor();

  step("a record's detail shows its JSON and its images");
  await face.getByRole("link").first().click();
  await page.getByRole("heading", { name: /^Record / }).waitFor();
  check(/[?&]record=/.test(page.url()), `record URL: ${page.url()}`);
  const image = page.getByTestId("record-image").first();
  await image.waitFor();
  await page.waitForFunction(loaded, await image.elementHandle());
  check((await page.getByTestId("record-json").textContent()).includes('"Type": "face"'), "the record's JSON is shown");
  await shoot(page, "record-detail", [image]);

  step("audit: the device added above is logged; filter by action and verify the chain");
  // A person's call is logged under the project it acted on: the device was added in "demo".
  await page.goto(`${base}/audit?project=demo`);
  const auditSearch = page.getByRole("form", { name: "Search audit events" });
  await auditSearch.getByLabel("Action").fill("CreateDevice");
  await auditSearch.getByRole("button", { name: "Search" }).click();
  await page.waitForURL(/action=CreateDevice/);
  const created = page.locator('tr[data-action="CreateDevice"]', { hasText: "OK" }).first();
  await created.waitFor();
  check((await page.locator("tr[data-action]").count()) === (await page.locator('tr[data-action="CreateDevice"]').count()), "only CreateDevice events listed");
  await page.getByRole("button", { name: "Verify chain" }).click();
  const verified = page.getByTestId("verify-result");
  await verified.waitFor();
  check((await verified.textContent()).startsWith("Valid:"), `verify: ${await verified.textContent()}`);
  await shoot(page, "audit", [created, verified]);

  step("sign out");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in to Tianshu" }).waitFor();
  await ctx.close();

  step("a viewer sees no Add button and a write is refused");
  const vctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  vctx.setDefaultTimeout(30000);
  const vpage = await vctx.newPage();
  current = vpage;
  watch(vpage, "viewer");
  await vpage.goto(`${base}/devices?project=demo&add=1`);
  await vpage.getByLabel("User name").fill(viewerUser);
  await vpage.getByLabel("Password").fill(viewerPassword);
  await vpage.getByRole("button", { name: "Sign in" }).click();
  await vpage.locator('tr[data-device="demo-camera"]').waitFor();
  check((await vpage.getByRole("button", { name: "Add device" }).count()) === 0, "no Add device button for a viewer");
  check((await vpage.getByRole("heading", { name: "Add a device" }).count()) === 0, "no add form for a viewer");
  check((await vpage.getByRole("button", { name: /^Delete / }).count()) === 0, "no Delete button for a viewer");
  const nav = vpage.getByRole("navigation", { name: "Pages" });
  check((await nav.getByRole("link", { name: "Audit" }).count()) === 0, "no Audit entry for a viewer");
  check((await nav.getByRole("link", { name: "Devices" }).count()) === 1, "a Devices entry for a viewer");
  const code = await vpage.evaluate(async () => {
    const r = await fetch("/", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-TC-Action": "CreateDevice", "X-Tianshu-CSRF": localStorage.getItem("tianshu.csrf") ?? "" },
      body: JSON.stringify({ ProjectId: "demo", Name: "sneaky", Driver: "replay", Address: "/tmp" }),
    });
    return (await r.json()).Response.Error?.Code ?? "OK";
  });
  check(code === "AuthFailure.UnauthorizedOperation", `viewer's CreateDevice: ${code}`);
  await vpage.goto(`${base}/tasks?project=demo`);
  await vpage.locator('tr[data-task="demo-face-structuring"]').waitFor();
  check((await vpage.getByRole("button", { name: /^(Stop|Start|Delete) / }).count()) === 0, "no task buttons for a viewer");
  check((await vpage.getByRole("button", { name: "Create task" }).count()) === 0, "no Create task button for a viewer");
  await vpage.goto(`${base}/devices?project=demo`);
  await vpage.locator('tr[data-device="demo-camera"]').waitFor();
  await shoot(vpage, "devices-viewer", [vpage.locator('tr[data-device="demo-camera"]')]);
  await vctx.close();
} catch (e) {
  await current?.screenshot({ path: join(shots, "failure.png"), fullPage: true }).catch(() => {});
  throw e;
} finally {
  await browser.close();
}

if (problems.length > 0) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log("browser test passed");
