// The console's browser test: drives Debian's Chromium (never a downloaded
// browser) through playwright-core against a running platform with the demo.
// web/browser_test.go starts the platform and runs this script; it can also
// run by hand against `tianshu serve --demo`:
//
//   TIANSHU_URL=http://127.0.0.1:8080 TIANSHU_ADMIN_PASSWORD=… TIANSHU_MEDIA=./tianshu-data/demo/photos \
//   TIANSHU_VIEWER_USER=… TIANSHU_VIEWER_PASSWORD=… TIANSHU_SCREENSHOTS=/tmp/shots node web/test/browser.mjs
//
// This file signs in and out; the pages are tested by the modules in steps/,
// run in the order of their names: each may export admin(t), run signed in
// as the project admin, and viewer(t), run afterwards signed in as a viewer
// of the demo project. t holds the page, the environment and the helpers of
// lib.mjs. Set TIANSHU_STEPS to a regular expression to run only the steps
// whose file names match (sign-in always runs).
//
// Any console error or uncaught exception in the page fails the run. The
// screenshots taken are listed in shots.json in the screenshots folder; the
// Go test checks each of them.
import { chromium } from "playwright-core";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { check, env, goTo, loaded, shooter, step } from "./lib.mjs";

const base = env("TIANSHU_URL");
const adminPassword = env("TIANSHU_ADMIN_PASSWORD");
const media = env("TIANSHU_MEDIA");
const viewerUser = env("TIANSHU_VIEWER_USER");
const viewerPassword = env("TIANSHU_VIEWER_PASSWORD");
const shots = env("TIANSHU_SCREENSHOTS");
const executablePath = env("CHROMIUM", "/usr/bin/chromium");
const only = new RegExp(env("TIANSHU_STEPS", ""));
mkdirSync(shots, { recursive: true });

const here = dirname(fileURLToPath(import.meta.url));
const stepFiles = readdirSync(join(here, "steps"))
  .filter((f) => f.endsWith(".mjs") && only.test(f))
  .sort();
const steps = [];
for (const f of stepFiles) steps.push({ file: f, mod: await import(join(here, "steps", f)) });

const problems = [];
const taken = [];
const shoot = shooter(shots, taken);
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

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});

async function newPage(who) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  ctx.setDefaultTimeout(30000);
  const page = await ctx.newPage();
  current = page;
  watch(page, who);
  return { ctx, page };
}

const t = (page, who) => ({ page, who, base, media, shoot, check, step, goTo: (label, heading) => goTo(page, label, heading), loaded });

try {
  const { ctx, page } = await newPage("admin");

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

  for (const s of steps) {
    if (!s.mod.admin) continue;
    step(`== ${s.file} (admin)`);
    current = page;
    await page.goto(`${base}/overview?project=demo`);
    await page.getByRole("heading", { name: "Overview" }).waitFor();
    await s.mod.admin(t(page, "admin"));
  }

  step("sign out");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in to Tianshu" }).waitFor();
  await ctx.close();

  step("sign in as a viewer");
  const v = await newPage("viewer");
  await v.page.goto(`${base}/overview?project=demo`);
  await v.page.getByLabel("User name").fill(viewerUser);
  await v.page.getByLabel("Password").fill(viewerPassword);
  await v.page.getByRole("button", { name: "Sign in" }).click();
  await v.page.getByRole("heading", { name: "Overview" }).waitFor();
  for (const s of steps) {
    if (!s.mod.viewer) continue;
    step(`== ${s.file} (viewer)`);
    current = v.page;
    await v.page.goto(`${base}/overview?project=demo`);
    await v.page.getByRole("heading", { name: "Overview" }).waitFor();
    await s.mod.viewer(t(v.page, "viewer"));
  }
  await v.ctx.close();
} catch (e) {
  await current?.screenshot({ path: join(shots, "failure.png"), fullPage: true }).catch(() => {});
  throw e;
} finally {
  await browser.close();
  writeFileSync(join(shots, "shots.json"), JSON.stringify(taken, null, 1));
}

if (problems.length > 0) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log(`browser test passed: ${stepFiles.length} step files, ${taken.length} screenshots`);
