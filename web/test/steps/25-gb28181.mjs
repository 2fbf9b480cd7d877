// GB/T 28181: a simulated camera (web/browser_test.go runs it) registered as
// gb-camera of the demo project, and its catalog's channel east-gate became a
// device. On the channel's page the admin steers it with the PTZ pad: a
// move at a chosen speed, a zoom, a stop, each answered with the command
// the camera acknowledged (the Go test then reads what the camera
// recorded); the "why no video" card shows the registration. A viewer sees
// the card but no pad.

async function openChannel(page, goTo) {
  await goTo("Devices");
  const row = page.locator('tr[data-device="east-gate"]');
  await row.waitFor();
  await row.getByRole("link", { name: "east-gate" }).click();
  await page.getByRole("heading", { name: "east-gate", exact: true }).waitFor();
}

export async function admin({ page, shoot, check, step, goTo }) {
  step("the channel found in the camera's catalog has its own page, with the PTZ pad");
  await openChannel(page, goTo);
  const pad = page.getByTestId("ptz");
  await pad.waitFor();
  await page.getByText(/^34020000001320000031 over UDP from/).waitFor();

  step("move up and right at speed 200: the camera acknowledged the command");
  await pad.getByLabel(/^Speed/).fill("200");
  await pad.getByRole("button", { name: "Move up and right" }).click();
  const status = pad.getByRole("status");
  await status.getByText(/^Move up and right at speed 200 sent/).waitFor();
  check((await status.textContent()).includes("PTZCmd A50F0109C8C800"), `status: ${await status.textContent()}`);
  await shoot(page, "device-ptz", [pad.getByRole("button", { name: "Stop" }), status]);

  step("zoom out, then stop");
  await pad.getByRole("button", { name: "Zoom out" }).click();
  await status.getByText(/^Zoom out at speed 200 sent/).waitFor();
  await pad.getByRole("button", { name: "Stop" }).click();
  await status.getByText(/^Stop sent/).waitFor();
  check((await pad.getByRole("alert").count()) === 0, "no error under the pad");
}

export async function viewer({ page, check, step, goTo }) {
  step("a viewer sees the channel's diagnosis but no PTZ pad");
  await openChannel(page, goTo);
  await page.getByRole("heading", { name: "Why no video" }).waitFor();
  check((await page.getByTestId("ptz").count()) === 0, "no PTZ pad for a viewer");
  check((await page.getByRole("button", { name: /^Move / }).count()) === 0, "no move buttons for a viewer");
}
