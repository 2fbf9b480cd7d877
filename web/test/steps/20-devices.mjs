// Devices: the list with thumbnails; add a replay device through the form
// generated from the driver's schema (a bad address shown next to Address,
// probe, save), edit it (a server error next to its field), open its page,
// draw a zone with the mouse and a line with the keyboard, save, reload and
// see them; discover an ONVIF camera (a WS-Discovery responder this step
// runs on loopback stands in for the camera) and prefill the add form; a
// viewer sees no add, edit, delete, discover or drawing controls.
import dgram from "node:dgram";

/** responder answers WS-Discovery probes on loopback as one ONVIF camera named TestCam would. */
async function responder() {
  const sock = dgram.createSocket("udp4");
  sock.on("message", (msg, from) => {
    const id = /MessageID[^>]*>([^<]+)</.exec(msg.toString())?.[1] ?? "";
    if (!msg.toString().includes("NetworkVideoTransmitter")) return;
    const body = `<?xml version="1.0" encoding="UTF-8"?><e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl">` +
      `<e:Header><a:MessageID>uuid:b0a7c1de-0000-4000-8000-000000000001</a:MessageID><a:RelatesTo>${id}</a:RelatesTo><a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</a:Action></e:Header>` +
      `<e:Body><d:ProbeMatches><d:ProbeMatch><a:EndpointReference><a:Address>urn:uuid:test-cam-1</a:Address></a:EndpointReference>` +
      `<d:Types>dn:NetworkVideoTransmitter</d:Types><d:Scopes>onvif://www.onvif.org/name/TestCam onvif://www.onvif.org/hardware/HW1</d:Scopes>` +
      `<d:XAddrs>http://192.0.2.10/onvif/device_service</d:XAddrs><d:MetadataVersion>1</d:MetadataVersion></d:ProbeMatch></d:ProbeMatches></e:Body></e:Envelope>`;
    sock.send(body, from.port, from.address);
  });
  await new Promise((ok) => sock.bind(0, "127.0.0.1", ok));
  return sock;
}

export async function admin({ page, media, shoot, check, step, goTo, loaded }) {
  step("devices list with thumbnails");
  await goTo("Devices");
  const demoRow = page.locator('tr[data-device="demo-camera"]');
  await demoRow.waitFor();
  const thumb = demoRow.locator('img[data-thumb="demo-camera"]');
  await thumb.waitFor();
  await page.waitForFunction(loaded, await thumb.elementHandle());
  await shoot(page, "devices", [demoRow, thumb, page.getByRole("button", { name: "Add device" })]);

  step("add a replay device through the generated form: a bad address is shown next to Address");
  await page.getByRole("button", { name: "Add device" }).click();
  check(page.url().includes("add=1"), "the add form has its URL");
  const form = page.locator("form", { has: page.getByRole("heading", { name: "Add a device" }) });
  await form.getByLabel("Name", { exact: true }).fill("console-camera");
  await form.getByLabel("Driver").selectOption("replay");
  check((await form.getByLabel("loop").count()) === 1, "the replay driver's own option loop is in the form");
  check((await form.getByLabel("Password").count()) === 0, "replay takes no password");
  await form.getByLabel("Address").fill("/etc/not-a-media-root");
  await form.getByRole("button", { name: "Probe" }).click();
  const addrErr = form.locator('[data-field-error="Address"]');
  await addrErr.waitFor();
  check((await addrErr.textContent()).length > 0, "Address error shown");

  step("probe, then save");
  await form.getByLabel("Address").fill(media);
  await form.getByLabel("loop").selectOption("true");
  await form.getByRole("button", { name: "Probe" }).click();
  const probe = page.getByTestId("probe-result");
  await probe.waitFor();
  check((await probe.textContent()).startsWith("Probe: online"), `probe: ${await probe.textContent()}`);
  await shoot(page, "devices-add", [probe]);
  await form.getByRole("button", { name: "Save device" }).click();
  const row = page.locator('tr[data-device="console-camera"]');
  await row.waitFor();
  check(!page.url().includes("add=1"), "the form closes after saving");

  step("edit it: the server's error next to its field, then a good change");
  await row.getByRole("button", { name: "Edit console-camera" }).click();
  const edit = page.locator("form", { has: page.getByRole("heading", { name: "Edit console-camera" }) });
  await edit.waitFor();
  check(page.url().includes("edit=dev-"), "the edit form has its URL");
  check((await edit.getByLabel("Address").inputValue()) === media, "the saved address is shown");
  check((await edit.getByLabel("loop").inputValue()) === "true", "the saved option is shown");
  await edit.getByLabel("quality").fill("99");
  await edit.getByRole("button", { name: "Save changes" }).click();
  const qErr = edit.locator('[data-field-error="Options.quality"]');
  await qErr.waitFor();
  check((await qErr.textContent()).includes("31"), `quality error: ${await qErr.textContent()}`);
  await edit.getByLabel("quality").fill("");
  await edit.getByLabel("Description").fill("the console's camera");
  await edit.getByRole("button", { name: "Save changes" }).click();
  await edit.waitFor({ state: "detached" });

  step("open its page and draw a zone with the mouse and a line with the keyboard");
  await row.getByRole("link", { name: "console-camera" }).click();
  await page.getByRole("heading", { name: "console-camera", exact: true }).waitFor();
  check(page.url().includes("device=dev-"), "the device page has its URL");
  const picture = page.getByRole("img", { name: "Latest picture of console-camera" });
  await picture.waitFor();
  await page.waitForFunction(loaded, await picture.elementHandle());
  await page.getByRole("button", { name: "Draw zone" }).click();
  const box = await picture.boundingBox();
  for (const [x, y] of [[0.1, 0.2], [0.55, 0.15], [0.6, 0.8], [0.15, 0.85]]) {
    // Clicks at the picture's own coordinates (Playwright scrolls it into view).
    await picture.click({ position: { x: box.width * x, y: box.height * y } });
  }
  await page.getByRole("button", { name: "Finish zone (4 points)" }).click();
  await page.getByLabel("Zone 1 name").fill("entrance");
  await page.getByRole("button", { name: "Add line" }).click();
  await page.getByLabel("Line 2 name").fill("tripwire");
  const end = page.getByRole("button", { name: /^end of tripwire/ });
  await end.focus();
  for (let i = 0; i < 3; i++) await page.keyboard.press("ArrowDown");
  check((await end.getAttribute("aria-label")).includes("y 0.53"), `keyboard moved the line's end: ${await end.getAttribute("aria-label")}`);
  await page.getByRole("button", { name: "Save zones" }).click();
  await page.getByText("Saved 2 zones and lines.").waitFor();
  await shoot(page, "device-detail", [picture, page.locator('li[data-zone="entrance"]'), page.getByRole("button", { name: /^point 1 of entrance/ })]);

  step("reload: the zone and the line are there, where they were drawn");
  await page.reload();
  await page.locator('li[data-zone="entrance"]').waitFor();
  await page.locator('li[data-zone="tripwire"]').waitFor();
  const p1 = await page.getByRole("button", { name: /^point 1 of entrance/ }).getAttribute("aria-label");
  check(p1.includes("x 0.10, y 0.20"), `first corner after reload: ${p1}`);
  check((await page.getByRole("button", { name: /^end of tripwire/ }).getAttribute("aria-label")).includes("y 0.53"), "the line's end after reload");

  step("discover an ONVIF camera and prefill the add form");
  const sock = await responder();
  try {
    await page.getByRole("button", { name: "Back to devices" }).click();
    await page.getByRole("button", { name: "Discover ONVIF cameras" }).click();
    const disc = page.locator("form", { has: page.getByRole("heading", { name: "Discover ONVIF cameras" }) });
    await disc.getByLabel("Target").fill(`127.0.0.1:${sock.address().port}`);
    await disc.getByLabel("Seconds to listen").fill("1");
    await disc.getByRole("button", { name: "Search" }).click();
    const found = disc.locator('li[data-discovered="urn:uuid:test-cam-1"]');
    await found.waitFor();
    await shoot(page, "devices-discover", [found]);
    await found.getByRole("button", { name: "Add TestCam" }).click();
    const add = page.locator("form", { has: page.getByRole("heading", { name: "Add a device" }) });
    await add.waitFor();
    check((await add.getByLabel("Driver").inputValue()) === "onvif", "the driver is onvif");
    check((await add.getByLabel("Address").inputValue()) === "http://192.0.2.10/onvif/device_service", "the address is prefilled");
    check((await add.getByLabel("Name", { exact: true }).inputValue()) === "TestCam", "the name is prefilled");
    check((await add.getByLabel("Password").count()) === 1, "onvif takes a password");
    await add.getByRole("button", { name: "Cancel" }).click();
    check(!page.url().includes("address="), "the prefill goes with the form");
  } finally {
    sock.close();
  }

  step("delete it");
  await row.getByRole("button", { name: "Delete console-camera" }).click();
  await row.getByRole("button", { name: "Confirm deleting console-camera" }).click();
  await row.waitFor({ state: "detached" });
}

export async function viewer({ page, base, shoot, check, step }) {
  step("a viewer sees no Add, Edit, Delete or Discover, even at the forms' URLs");
  await page.goto(`${base}/devices?project=demo&add=1&discover=1`);
  const demoRow = page.locator('tr[data-device="demo-camera"]');
  await demoRow.waitFor();
  check((await page.getByRole("button", { name: "Add device" }).count()) === 0, "no Add device button for a viewer");
  check((await page.getByRole("heading", { name: "Add a device" }).count()) === 0, "no add form for a viewer");
  check((await page.getByRole("button", { name: /^Discover/ }).count()) === 0, "no Discover for a viewer");
  check((await page.getByRole("button", { name: /^(Delete|Edit) / }).count()) === 0, "no Delete or Edit button for a viewer");
  await shoot(page, "devices-viewer", [demoRow]);

  step("a viewer sees a device's zones but no drawing controls");
  await demoRow.getByRole("link", { name: "demo-camera" }).click();
  await page.getByRole("img", { name: "Latest picture of demo-camera" }).waitFor();
  for (const name of ["Draw zone", "Draw line", "Add zone", "Add line", "Save zones"]) {
    check((await page.getByRole("button", { name }).count()) === 0, `no ${name} for a viewer`);
  }
}
