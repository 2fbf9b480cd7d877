// Helpers shared by the browser test's harness (browser.mjs) and its steps
// (steps/*.mjs).
import { join } from "node:path";

export const env = (k, def) => {
  const v = process.env[k] ?? def;
  if (v === undefined) throw new Error(`${k} is not set`);
  return v;
};

export const WIDTHS = [
  { name: "1280", width: 1280, height: 800 },
  { name: "390", width: 390, height: 844 },
];

export function step(name) {
  console.log(`-- ${name}`);
}

export function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

/** loaded is a waitForFunction predicate: an <img> that has loaded a picture. */
export const loaded = (el) => el?.complete === true && el.naturalWidth > 0;

/** shooter returns shoot(page, name, mustSee): it saves the page at every
 * width, each after the elements that prove the page is there are visible at
 * that width, and records the name in taken. */
export function shooter(dir, taken) {
  return async function shoot(page, name, mustSee) {
    for (const w of WIDTHS) {
      await page.setViewportSize({ width: w.width, height: w.height });
      for (const l of mustSee) await l.waitFor({ state: "visible" });
      // The page's title is near the top at every width: no empty band pushes the page down.
      const title = await page.locator("h1").first().boundingBox();
      check(title !== null && title.y < 320, `${name} at ${w.name} px: the title is at y=${title?.y}`);
      const file = `${name}-${w.name}.png`;
      await page.screenshot({ path: join(dir, file), fullPage: true });
      taken.push({ file, width: w.width });
    }
    await page.setViewportSize({ width: 1280, height: 800 });
  };
}

/** goTo follows the navigation entry with the label and waits for the page's title. */
export async function goTo(page, label, heading = label) {
  await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: label }).click();
  await page.getByRole("heading", { name: heading, exact: true }).first().waitFor();
}

/** launchBrowser starts Debian's Chromium ($CHROMIUM) headless, as the benchmarks' scripts drive it. */
export function launchBrowser(chromium) {
  return chromium.launch({
    executablePath: env("CHROMIUM", "/usr/bin/chromium"),
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
}

/** signInByApi signs the page in as admin with Login (no sign-in form) and answers the CSRF token the console keeps. */
export async function signInByApi(page, base, password) {
  await page.goto(`${base}/`);
  return page.evaluate(async (pw) => {
    const r = await fetch("/", { method: "POST", headers: { "Content-Type": "application/json", "X-TC-Action": "Login" },
      body: JSON.stringify({ UserName: "admin", Password: pw }) });
    const csrf = (await r.json()).Response.CsrfToken;
    localStorage.setItem("tianshu.csrf", csrf);
    return csrf;
  }, password);
}

/** newWatchedPage opens a 1280×800 page whose console errors are collected in errors. */
export async function newWatchedPage(browser) {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  const errors = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  return { page, errors };
}

// wire draws a wire with the mouse from one handle to another, both in view and not under the canvas' controls.
// The view is fitted first: a wire dragged near the canvas' edge pans it (React Flow's auto-pan), which can push
// the next wire's handles out of view or under the node panel.
export async function wire(page, check, from, to) {
  await page.getByTestId("flow-canvas").scrollIntoViewIfNeeded();
  await page.getByRole("button", { name: "Fit View" }).click();
  await page.waitForTimeout(300);
  const a = await from.boundingBox();
  const b = await to.boundingBox();
  check(a !== null && b !== null, "both ends of the wire have handles");
  for (const [h, at] of [[from, a], [to, b]]) {
    const top = await h.evaluate((el, p) => {
      const hit = document.elementFromPoint(p.x, p.y);
      return hit?.closest(".react-flow__handle") === el ? "" : `${hit?.tagName}.${hit?.className?.baseVal ?? hit?.className} ${hit?.getAttribute("data-handleid") ?? ""}`;
    }, { x: at.x + at.width / 2, y: at.y + at.height / 2 });
    check(top === "", `the handle ${await h.getAttribute("data-handleid")} of ${await h.getAttribute("data-nodeid")} at ${JSON.stringify(at)} is in view, not under ${top}`);
  }
  await page.mouse.move(a.x + a.width / 2, a.y + a.height / 2);
  await page.mouse.down();
  await page.mouse.move(b.x + b.width / 2, b.y + b.height / 2, { steps: 10 });
  await page.mouse.up();
}

/** stopAndDelete stops version 1 of the algorithm NAME shown on its page, goes back to the list and deletes it. */
export async function stopAndDelete(page, version, name) {
  await version.getByRole("button", { name: "Stop version 1" }).click();
  await page.getByText("No instances run here.").waitFor({ timeout: 60000 });
  await page.getByRole("link", { name: "← All algorithms" }).click();
  const row = page.locator(`tr[data-algorithm="${name}"]`);
  await row.getByRole("button", { name: `Delete ${name}` }).click();
  await row.getByRole("button", { name: `Confirm deleting ${name}` }).click();
  await row.waitFor({ state: "detached" });
}
