// The device form is built from a driver's schema (DescribeDeviceDrivers);
// these check the values it shows and the request it sends.
import { describe, expect, it } from "vitest";
import { deviceBody, fieldNames, fromText, hint, initialValues } from "./driverForm";
import type { DriverSpec } from "./driverForm";

const rtsp: DriverSpec = {
  Name: "rtsp", Description: "RTSP", OpenOptions: false, PlatformAdmin: false,
  Fields: [
    { Name: "Address", Type: "string", Required: true, Description: "rtsp://", Secret: false },
    { Name: "Username", Type: "string", Required: false, Description: "", Secret: false },
    { Name: "Password", Type: "string", Required: false, Description: "", Secret: true },
    { Name: "Fps", Type: "number", Required: false, Description: "", Secret: false, Min: 0, Max: 120 },
  ],
  Options: [
    { Name: "transport", Type: "string", Required: false, Default: "tcp", Enum: ["tcp", "udp"], Description: "RTSP transport.", Secret: false },
    { Name: "quality", Type: "integer", Required: false, Default: 5, Min: 2, Max: 31, Description: "JPEG quality.", Secret: false },
    { Name: "stall", Type: "duration", Required: false, Default: "15s", Description: "", Secret: false },
    { Name: "loop", Type: "boolean", Required: false, Description: "", Secret: false },
    { Name: "args", Type: "strings", Required: false, Description: "", Secret: false },
  ],
};

const stored = {
  Address: "rtsp://cam/1", Username: "admin", HasPassword: true, Fps: 0, Width: 0,
  Options: { transport: "udp", quality: 7, env: [{ name: "K", value: "***", secret: true }], args: ["-a", "-b"] },
};

describe("initialValues", () => {
  it("leaves a new device's fields empty so defaults apply, and takes prefill", () => {
    const v = initialValues(rtsp, undefined, { Address: "rtsp://found/1" });
    expect(v).toEqual({ Address: "rtsp://found/1", Username: "", Password: "", Fps: "", "Options.transport": "", "Options.quality": "",
      "Options.stall": "", "Options.loop": "", "Options.args": "" });
  });
  it("shows a saved device's values but never its password", () => {
    const v = initialValues(rtsp, stored);
    expect(v.Address).toBe("rtsp://cam/1");
    expect(v.Username).toBe("admin");
    expect(v.Password).toBe("");
    expect(v.Fps).toBe("");
    expect(v["Options.quality"]).toBe("7");
    expect(v["Options.args"]).toBe("-a\n-b");
  });
});

describe("deviceBody", () => {
  it("types options from the schema and leaves empty ones out of a new device", () => {
    const b = deviceBody(rtsp, { Address: "rtsp://x/1", Username: "", Password: "pw", Fps: "5", "Options.transport": "udp",
      "Options.quality": "9", "Options.stall": "20", "Options.loop": "false", "Options.args": " -x \n\n-y " });
    expect(b).toEqual({ Address: "rtsp://x/1", Password: "pw", Fps: 5,
      Options: { transport: "udp", quality: 9, stall: 20, loop: false, args: ["-x", "-y"] } });
  });
  it("keeps a saved password left blank, and options it does not list or that did not change", () => {
    const v = initialValues(rtsp, stored);
    v["Options.quality"] = "";
    const b = deviceBody(rtsp, v, stored);
    expect(b).not.toHaveProperty("Password");
    expect(b.Username).toBe("admin");
    expect(b.Fps).toBe(0);
    expect(b.Options).toEqual({ transport: "udp", env: [{ name: "K", value: "***", secret: true }], args: ["-a", "-b"] });
  });
  it("sends what does not parse as typed, for the server to name the field", () => {
    expect(fromText("fast", "integer")).toBe("fast");
    expect(fromText("5s", "duration")).toBe("5s");
    expect(fromText("maybe", "boolean")).toBe("maybe");
  });
});

describe("fieldNames and hint", () => {
  it("names fields as the server's errors do", () => {
    expect(fieldNames(rtsp, ["Name"])).toEqual(["Name", "Address", "Username", "Password", "Fps", "Options.transport", "Options.quality",
      "Options.stall", "Options.loop", "Options.args"]);
  });
  it("tells the default, the range and that a secret is write-only", () => {
    const [, quality] = rtsp.Options;
    const [, , password] = rtsp.Fields;
    if (!quality || !password) throw new Error("schema");
    expect(hint(quality)).toBe("JPEG quality. Default: 5. 2 to 31.");
    expect(hint(password)).toContain("leave blank to keep");
  });
});
