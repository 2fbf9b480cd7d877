import { describe, expect, it } from "vitest";
import { auditBody } from "./Audit";

describe("auditBody", () => {
  it("sends the URL's filters as the API's, times in UTC", () => {
    const q = new URLSearchParams("actor=admin&action=StopTask&from=2026-12-06T10:00&offset=20");
    expect(auditBody("demo", q)).toEqual({
      ProjectId: "demo",
      Filters: [
        { Name: "Actor", Values: ["admin"] },
        { Name: "Action", Values: ["StopTask"] },
      ],
      StartTime: new Date("2026-12-06T10:00").toISOString(),
    });
  });
  it("sends no filters when none is set", () => {
    expect(auditBody("demo", new URLSearchParams())).toEqual({ ProjectId: "demo" });
  });
});
