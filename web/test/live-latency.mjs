// Measures the live view's capture-to-screen latency in Chromium: signs in,
// opens /live with the tiles given, waits until every tile draws, then
// samples each tile's shown latency (the median of its last 20 frames) and
// the part its flow took, for TIANSHU_SECONDS, and prints one JSON line.
// Run by BenchmarkLiveViewInBrowser (live_bench_test.go).
import { chromium } from "playwright-core";
import { env, launchBrowser, newWatchedPage, signInByApi } from "./lib.mjs";

const base = env("TIANSHU_URL");
const password = env("TIANSHU_ADMIN_PASSWORD");
const live = env("TIANSHU_LIVE_PATH");
const seconds = Number(env("TIANSHU_SECONDS", "20"));
const browser = await launchBrowser(chromium);
try {
  const { page, errors } = await newWatchedPage(browser);
  await signInByApi(page, base, password);
  await page.goto(`${base}${live}`);
  const tiles = page.getByTestId("live-tile");
  await page.waitForFunction(() => {
    const ts = [...document.querySelectorAll("[data-testid=live-tile]")];
    return ts.length > 0 && ts.every((t) => Number(t.dataset.frames) >= 3 && t.dataset.latencyMs !== "");
  }, null, { timeout: 120000 });
  const n = await tiles.count();
  const start = await tiles.evaluateAll((ts) => ts.map((t) => Number(t.dataset.frames)));
  const latency = [];
  const flow = [];
  const t0 = Date.now();
  while (Date.now() - t0 < seconds * 1000) {
    const s = await tiles.evaluateAll((ts) => ts.map((t) => [Number(t.dataset.latencyMs), Number(t.dataset.flowMs)]));
    for (const [l, f] of s) {
      latency.push(l);
      flow.push(f);
    }
    await page.waitForTimeout(250); // the sampling period
  }
  const end = await tiles.evaluateAll((ts) => ts.map((t) => Number(t.dataset.frames)));
  const elapsed = (Date.now() - t0) / 1000;
  const q = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
  console.log(JSON.stringify({
    tiles: n, seconds: elapsed, latencyP50: q(latency, 0.5), latencyP90: q(latency, 0.9), latencyMax: q(latency, 1),
    flowP50: q(flow, 0.5), flowP90: q(flow, 0.9), fps: end.map((e, i) => (e - start[i]) / elapsed), errors,
  }));
} finally {
  await browser.close();
}
