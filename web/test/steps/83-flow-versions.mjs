// Flow versions: a change saved as a new version, the History panel, the
// diff of the two versions drawn and listed, the older version restored as
// a newer one, and the demo task moved to it without stopping; a viewer
// sees the history and the diff, and no Restore or Move buttons.

export async function admin({ page, shoot, check, step, goTo }) {
  step("versions: the demo flow changed and saved as a new version");
  await goTo("Flows");
  await page.locator('tr[data-flow="face-structuring"]').getByRole("link", { name: "face-structuring" }).click();
  await page.getByRole("heading", { name: /^Flow face-structuring v\d+$/ }).waitFor();
  const before = Number(/version=(\d+)/.exec(page.url())?.[1]);
  await page.locator('.flow-node[data-node="track"]').click();
  const panel = page.locator("aside", { has: page.getByRole("heading", { name: "Node track" }) });
  const iou = panel.getByLabel("iou", { exact: true });
  const old = await iou.inputValue();
  const next = old === "0.42" ? "0.41" : "0.42";
  await iou.fill(next);
  await page.waitForFunction((el) => el?.textContent?.startsWith("No problems found."), await page.getByTestId("validation-status").elementHandle());
  await page.getByLabel("Comment").fill("iou for the versions test");
  await page.getByRole("button", { name: "Save new version" }).click();
  const after = before + 1;
  await page.getByRole("heading", { name: `Flow face-structuring v${after}` }).waitFor();

  step("the History panel lists the versions newest first, with who and when");
  const history = page.getByTestId("flow-history");
  await history.locator("summary").click();
  await page.waitForURL(/[?&]history=1/); // the toggle event comes a moment after the click
  const newest = history.locator(`tr[data-version="${after}"]`);
  await newest.waitFor();
  check((await newest.textContent()).includes("iou for the versions test"), `the comment: ${await newest.textContent()}`);
  check((await newest.textContent()).includes("admin"), `who saved it: ${await newest.textContent()}`);
  const rows = await history.locator("tbody tr").evaluateAll((trs) => trs.map((tr) => Number(tr.getAttribute("data-version"))));
  check(rows[0] === after && rows[1] === before, `newest first: ${rows.join(", ")}`);
  await shoot(page, "flow-history", [newest, history.getByRole("link", { name: "Show the changes" })]);

  step("the diff of the two versions marks the changed node and lists its parameter old → new");
  await history.getByRole("link", { name: "Show the changes" }).click();
  await page.getByRole("heading", { name: `Flow face-structuring: v${before} → v${after}` }).waitFor();
  check(new RegExp(`[?&]diff=${before}\\.\\.${after}`).test(page.url()), `diff in the URL: ${page.url()}`);
  const changed = page.locator('.react-flow__node.diff-changed .flow-node[data-node="track"]');
  await changed.waitFor();
  check((await page.locator(".react-flow__node.diff-changed").count()) === 1, "only track is marked changed");
  const item = page.getByTestId("diff-list").locator('[data-diff-node="track"]');
  const text = await item.textContent();
  check(text.includes(`config.iou: ${old} → ${next}`), `the change listed: ${text}`);
  await shoot(page, "flow-diff", [changed, item]);

  step("restoring the earlier version makes a newer one with its document");
  await page.getByRole("link", { name: "← Back to the editor" }).click();
  await page.getByRole("heading", { name: `Flow face-structuring v${after}` }).waitFor();
  await history.getByRole("button", { name: `Restore v${before}` }).click();
  const restored = after + 1;
  await page.getByRole("heading", { name: `Flow face-structuring v${restored}` }).waitFor();
  await history.locator(`tr[data-version="${restored}"]`).getByText(`Rollback to v${before}`).waitFor();
  const url = new URL(page.url());
  url.searchParams.set("diff", `${before}..${restored}`);
  await page.goto(url.toString());
  await page.getByTestId("diff-list").getByText("The two versions are the same document.").waitFor();
  await page.goto(url.toString().replace(/&?diff=[^&]*/, ""));
  await page.getByRole("heading", { name: `Flow face-structuring v${restored}` }).waitFor();

  step("the demo task moves to the newest version and its page shows it");
  const task = history.locator('li[data-task="demo-face-structuring"]');
  await task.waitFor();
  await task.getByRole("button", { name: `Move demo-face-structuring to v${restored}` }).click();
  await task.getByTestId("task-version").getByText(`v${restored}`).waitFor();
  check((await task.getByRole("button").count()) === 0, "no Move button once the task runs the latest");
  await task.getByRole("link", { name: "demo-face-structuring" }).click();
  await page.getByRole("heading", { name: "Task demo-face-structuring" }).waitFor();
  await page.getByTestId("task-flow").getByText(`v${restored}`).waitFor();
  await page.getByText(`→ ${restored}`).first().waitFor(); // the event of the move
}

export async function viewer({ page, base, check, step }) {
  step("a viewer sees the history and the diff, without Restore or Move");
  await page.goto(`${base}/flows?project=demo`);
  await page.locator('tr[data-flow="face-structuring"]').getByRole("link", { name: "face-structuring" }).click();
  await page.locator('.flow-node[data-node="detect"]').waitFor();
  const history = page.getByTestId("flow-history");
  await history.locator("summary").click();
  await history.locator("tbody tr").nth(1).waitFor();
  await history.locator('li[data-task="demo-face-structuring"]').waitFor();
  check((await history.getByRole("button").count()) === 0, "no Restore or Move button for a viewer");
  await history.getByRole("link", { name: "Show the changes" }).click();
  await page.getByTestId("diff-list").waitFor();
  check((await page.getByRole("button", { name: /^Save/ }).count()) === 0, "no Save on the diff");
}
