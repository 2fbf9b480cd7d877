// Thumbnails ask the server once per device however often the list
// refreshes, and ask with MaxAgeMs so the server answers from its cache.
import { afterEach, describe, expect, it, vi } from "vitest";
import { forgetSnapshot, snapshotUrl } from "./Thumb";

afterEach(() => vi.unstubAllGlobals());

describe("snapshotUrl", () => {
  it("calls DescribeDeviceSnapshot once per device and remembers a device without a picture", async () => {
    const asked: Record<string, unknown>[] = [];
    vi.stubGlobal("fetch", async (_: string, init: RequestInit) => {
      const b = JSON.parse(String(init.body)) as Record<string, unknown>;
      asked.push(b);
      if (b.DeviceId === "dev-off") return new Response(JSON.stringify({ Response: { RequestId: "r", Error: { Code: "ResourceUnavailable", Message: "offline" } } }));
      return new Response(JSON.stringify({ Response: { RequestId: "r", Url: `http://x.example/objects/${String(b.DeviceId)}.jpg?s=1`, Time: "" } }));
    });
    const urls = await Promise.all(["dev-1", "dev-2", "dev-off"].map((d) => snapshotUrl(d, 1000)));
    expect(urls).toEqual(["/objects/dev-1.jpg?s=1", "/objects/dev-2.jpg?s=1", ""]);
    expect(await snapshotUrl("dev-1", 2000)).toBe("/objects/dev-1.jpg?s=1");
    expect(await snapshotUrl("dev-off", 2000)).toBe("");
    expect(asked).toHaveLength(3);
    expect(asked[0]?.MaxAgeMs).toBe(300000);
    forgetSnapshot("dev-1");
    await snapshotUrl("dev-1", 3000);
    expect(asked).toHaveLength(4);
  });
});
