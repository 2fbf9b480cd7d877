// Measures the flow editor with a 200-node flow in Chromium: signs in,
// creates the flow the browser step imports (steps/84-flow-large.mjs),
// opens it, lays it out, then pans and zooms for TIANSHU_SECONDS while the
// page records the time between animation frames; prints one JSON line.
// Run by BenchmarkFlowEditorLarge (flow_bench_test.go).
import { chromium } from "playwright-core";
import { env, launchBrowser, newWatchedPage, signInByApi } from "./lib.mjs";
import { largeFlow, measureFrames } from "./steps/84-flow-large.mjs";

const base = env("TIANSHU_URL");
const password = env("TIANSHU_ADMIN_PASSWORD");
const seconds = Number(env("TIANSHU_SECONDS", "4"));
const nodes = Number(env("TIANSHU_NODES", "200"));
const browser = await launchBrowser(chromium);
try {
  const { page, errors } = await newWatchedPage(browser);
  const csrf = await signInByApi(page, base, password);
  const flowId = await page.evaluate(async ({ csrf, doc }) => {
    const headers = { "Content-Type": "application/json", "X-TC-Action": "CreateFlow", "X-Tianshu-CSRF": csrf };
    const r = (await (await fetch("/", { method: "POST", headers, body: JSON.stringify({ ProjectId: "default", Name: doc.name, Document: doc }) })).json()).Response;
    if (r.Error) throw new Error(`CreateFlow: ${JSON.stringify(r.Error)}`);
    return r.FlowId;
  }, { csrf, doc: largeFlow(`large-bench-${Date.now()}`, nodes) });
  await page.goto(`${base}/flows?project=default&flow=${flowId}&version=1`);
  await page.waitForFunction((n) => document.querySelectorAll('.react-flow__node:not([data-id="input"])').length === n, nodes, { timeout: 60000 });
  await page.getByRole("button", { name: "Auto-layout" }).click();
  await page.waitForTimeout(500);
  const f = await measureFrames(page, seconds * 1000);
  console.log(JSON.stringify({ nodes, ...f, errors }));
} finally {
  await browser.close();
}
