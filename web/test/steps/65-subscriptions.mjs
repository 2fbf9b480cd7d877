// Subscriptions: create a webhook subscription to the receiver that
// browser_test.go runs ($TIANSHU_RECEIVER; an address the outbound policy
// refuses is shown next to URL first), see the real platform deliver the
// demo's events to it signed with the secret the console showed once, the
// delivered count rise and the lag fall to 0; pause (the lag grows) and
// resume (it falls again); replay from an earlier sequence (the receiver
// gets events again); delete. A viewer sees no button that writes.
import { env } from "../lib.mjs";

const receiver = () => env("TIANSHU_RECEIVER");

async function received() {
  const r = await fetch(`${receiver()}/count`);
  return r.json();
}

/** until polls f (the page and the receiver update on their own) until it answers true. */
async function until(what, f, ms = 60000) {
  const end = Date.now() + ms;
  for (;;) {
    if (await f()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export async function admin({ page, shoot, check, step, goTo }) {
  step("subscriptions list");
  await goTo("Subscriptions");
  const demoRow = page.locator('tr[data-subscription="demo-faces"]');
  await demoRow.waitFor();
  await shoot(page, "subscriptions", [demoRow, page.getByRole("button", { name: "Create subscription" })]);

  step("create a webhook: an address the outbound policy refuses is shown next to URL");
  await page.getByRole("button", { name: "Create subscription" }).click();
  check(page.url().includes("add=1"), "the create form has its URL");
  const form = page.locator("form", { has: page.getByRole("heading", { name: "Create a subscription" }) });
  await form.getByLabel("Name").fill("console-hook");
  await form.getByLabel("URL").fill("http://169.254.169.254/latest/meta-data");
  await form.getByLabel("Max attempts").fill("5");
  await form.getByRole("button", { name: "Save subscription" }).click();
  const urlErr = form.locator('[data-field-error="Channel.Webhook.Url"]');
  await urlErr.waitFor();
  check((await urlErr.textContent()).includes("outbound policy"), `URL error: ${await urlErr.textContent()}`);
  check((await form.getByLabel("URL").getAttribute("aria-invalid")) === "true", "URL marked invalid");
  await shoot(page, "subscriptions-create", [urlErr, form.getByRole("button", { name: "Save subscription" })]);

  step("save it with the receiver's URL: the generated secret is shown once");
  await form.getByLabel("URL").fill(`${receiver()}/hook`);
  await form.getByRole("button", { name: "Save subscription" }).click();
  const dialog = page.getByRole("dialog", { name: "The webhook's signing secret" });
  await dialog.waitFor();
  const secret = await dialog.getByLabel("Webhook secret", { exact: true }).inputValue();
  check(secret.startsWith("whsec_"), "a Standard Webhooks secret is shown");
  // The receiver checks every delivery's signature with the secret the console showed.
  await fetch(`${receiver()}/secret`, { method: "POST", body: secret });
  await dialog.getByRole("button", { name: /I have saved it/ }).click();
  await dialog.waitFor({ state: "detached" });
  check(!(await page.content()).includes(secret), "the secret is gone once the dialog is closed");
  const row = page.locator('tr[data-subscription="console-hook"]');
  await row.waitFor();

  step("the platform delivers to the receiver; the page shows the delivered count and the lag falling to 0");
  await row.getByRole("link", { name: "console-hook" }).click();
  await page.getByRole("heading", { name: "Subscription console-hook" }).waitFor();
  check(/[?&]subscription=sub-/.test(page.url()), `the subscription's page has its URL: ${page.url()}`);
  const value = (id) => page.getByTestId(id).locator(".stat-value");
  await until("a verified delivery", async () => (await received()).Verified > 0);
  await until("Delivered > 0 on the page", async () => Number(await value("delivered").textContent()) > 0);
  await until("lag 0 on the page", async () => (await value("lag").textContent()) === "0");
  const got = await received();
  check(got.Bad === 0, `every delivery after the secret was set is signed with it: ${JSON.stringify(got)}`);
  check(!(await page.content()).includes(secret), "the secret is not on the subscription's page");

  step("pause: events wait on the bus and the lag grows; resume: it falls to 0 again");
  await page.getByRole("button", { name: "Pause console-hook" }).click();
  await until("paused", async () => (await value("status").textContent()) === "paused");
  await until("lag > 0 while paused", async () => Number(await value("lag").textContent()) > 0);
  await page.getByRole("button", { name: "Resume console-hook" }).click();
  await until("active", async () => (await value("status").textContent()) === "active");
  await until("lag 0 after resuming", async () => (await value("lag").textContent()) === "0");

  step("replay from an earlier sequence, after a confirmation: the receiver gets events again");
  const acked = Number(await value("acked").textContent());
  const before = (await received()).Duplicates;
  const replay = page.locator("form", { has: page.getByRole("heading", { name: "Replay" }) });
  await replay.getByLabel("From a sequence").check();
  await replay.getByLabel("Start sequence").fill(String(Math.max(1, acked - 3)));
  await replay.getByRole("button", { name: "Replay…" }).click();
  await replay.getByText(/^Deliver from sequence \d+ again\?$/).waitFor();
  await replay.getByRole("button", { name: "Confirm replay" }).click();
  await replay.getByRole("status").waitFor();
  await until("events delivered again", async () => (await received()).Duplicates > before);

  step("aimed at a URL that fails, with one attempt, its events are dead-lettered and listed");
  const edit = async (url, attempts) => {
    await page.getByRole("button", { name: "Edit" }).click();
    const f = page.locator("form", { has: page.getByRole("heading", { name: "Edit subscription console-hook" }) });
    check(page.url().includes("edit=1"), "the edit form has its URL");
    check((await f.getByLabel("Secret").inputValue()) === "", "the secret is write-only");
    await f.getByLabel("URL").fill(url);
    await f.getByLabel("Max attempts").fill(attempts);
    await f.getByRole("button", { name: "Save subscription" }).click();
    await f.waitFor({ state: "detached" });
  };
  await edit(`${receiver()}/fail`, "1");
  await page.locator("tr[data-dead-letter]").first().waitFor();
  check((await page.locator("tr[data-dead-letter]").first().textContent()).includes("503"), "a dead letter shows the receiver's answer");
  await shoot(page, "subscription-detail", [page.getByTestId("subscription-stats"), page.getByRole("heading", { name: "Replay" }),
    page.locator("tr[data-dead-letter]").first()]);

  step("aimed back at the receiver, the dead letters are delivered again after a confirmation");
  await edit(`${receiver()}/hook`, "5");
  // An event already on its way to the failing URL when the subscription
  // was changed can still become a dead letter after a replay: as a person
  // would, replay the dead letters again until none is left.
  const noneLeft = async () => (await value("dead").textContent()) === "0" && (await page.locator("tr[data-dead-letter]").count()) === 0;
  for (let round = 1; ; round++) {
    await replay.getByLabel("The dead letters").check();
    await replay.getByRole("button", { name: "Replay…" }).click();
    await replay.getByRole("button", { name: "Confirm replay" }).click();
    await replay.getByText(/^\d+ dead letters queued for delivery\.$/).waitFor();
    try {
      await until("no dead letters left", noneLeft, 20000);
      break;
    } catch (e) {
      if (round === 4) throw e;
      step(`dead letters left after replay ${round}: replay them again`);
    }
  }

  step("delete it");
  await page.getByRole("button", { name: "Delete console-hook" }).click();
  await page.getByRole("button", { name: "Confirm deleting console-hook" }).click();
  await page.getByRole("heading", { name: "Subscriptions", exact: true }).waitFor();
  await demoRow.waitFor();
  check((await row.count()) === 0, "the subscription is gone from the list");
}

export async function viewer({ page, base, check, step }) {
  step("a viewer sees subscriptions and their delivery but no button that writes");
  await page.goto(`${base}/subscriptions?project=demo&add=1`);
  const row = page.locator('tr[data-subscription="demo-faces"]');
  await row.waitFor();
  check((await page.getByRole("heading", { name: "Create a subscription" }).count()) === 0, "no create form for a viewer");
  for (const name of ["Create subscription", /^Pause /, /^Resume /, /^Delete /]) {
    check((await page.getByRole("button", { name }).count()) === 0, `no ${name} button for a viewer`);
  }
  await row.getByRole("link", { name: "demo-faces" }).click();
  await page.getByRole("heading", { name: "Subscription demo-faces" }).waitFor();
  await page.getByTestId("subscription-stats").waitFor();
  check((await page.getByRole("heading", { name: "Replay" }).count()) === 0, "no replay for a viewer");
  check((await page.getByRole("button", { name: "Edit" }).count()) === 0, "no Edit for a viewer");
}
