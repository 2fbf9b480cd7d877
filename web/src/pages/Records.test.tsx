// The records page's search, export and image URLs; the browser test runs the
// page against a real platform. readAll gets answers shaped as the gateway's
// through a replaced fetch because jsdom has no server to reach.
import { afterEach, describe, expect, it, vi } from "vitest";
import type { RecordInfo } from "../types";
import { csvCell, readAll, sameOrigin, searchBody, toCsv, toJsonLines } from "./Records";

const rec = (id: string): RecordInfo => ({
  RecordId: id, ProjectId: "demo", TaskId: "task-1", DeviceId: "dev-1", Type: "face", Time: "2026-12-06T13:00:00Z",
  Data: { Crop: { ObjectKey: `demo/${id}.jpg` }, Note: 'say "hi", then go' }, ObjectKeys: [`demo/${id}.jpg`],
  ObjectUrls: [`http://other.example/objects/demo/${id}.jpg?sig=x`], CreatedTime: "",
});

afterEach(() => vi.unstubAllGlobals());

describe("searchBody", () => {
  it("sends only the filters set, times in UTC", () => {
    const b = searchBody("demo", { task: "task-1", device: "", type: "face", from: "2026-12-06T10:00", to: "" });
    expect(b.ProjectId).toBe("demo");
    expect(b.TaskIds).toEqual(["task-1"]);
    expect(b.Types).toEqual(["face"]);
    expect(b.DeviceIds).toBeUndefined();
    expect(b.StartTime).toBe(new Date("2026-12-06T10:00").toISOString());
    expect(b.EndTime).toBeUndefined();
  });
  it("leaves a time it cannot read for the server to refuse", () => {
    expect(searchBody("demo", { task: "", device: "", type: "", from: "", to: "soon" }).EndTime).toBe("soon");
  });
});

describe("sameOrigin", () => {
  it("serves the platform's objects from the console's origin", () => {
    expect(sameOrigin("http://other.example/objects/demo/a.jpg?sig=x")).toBe("/objects/demo/a.jpg?sig=x");
    expect(sameOrigin("https://bucket.s3.example/demo/a.jpg")).toBe("https://bucket.s3.example/demo/a.jpg");
  });
});

describe("export", () => {
  it("writes CSV with quoting and JSON lines without signed URLs", () => {
    expect(csvCell("a,b")).toBe('"a,b"');
    expect(csvCell("plain")).toBe("plain");
    const csv = toCsv([rec("r1")]).split("\r\n");
    expect(csv[0]).toBe("RecordId,Time,Type,TaskId,DeviceId,ObjectKeys,Data");
    expect(csv[1]).toBe('r1,2026-12-06T13:00:00Z,face,task-1,dev-1,demo/r1.jpg,"{""Crop"":{""ObjectKey"":""demo/r1.jpg""},""Note"":""say \\""hi\\"", then go""}"');
    const line = JSON.parse(toJsonLines([rec("r1")]).trim()) as Record<string, unknown>;
    expect(line.RecordId).toBe("r1");
    expect(line.ObjectUrls).toBeUndefined();
  });

  it("reads every page of a search, stopping at the cap", async () => {
    const all = Array.from({ length: 250 }, (_, i) => rec(`r${i}`));
    const asked: number[] = [];
    vi.stubGlobal("fetch", async (_: string, init: RequestInit) => {
      const b = JSON.parse(String(init.body)) as { Offset: number; Limit: number };
      asked.push(b.Offset);
      return new Response(JSON.stringify({ Response: { RequestId: "r", TotalCount: all.length, RecordSet: all.slice(b.Offset, b.Offset + b.Limit) } }));
    });
    const whole = await readAll({ ProjectId: "demo" });
    expect(whole.records.map((r) => r.RecordId)).toEqual(all.map((r) => r.RecordId));
    expect(asked).toEqual([0, 100, 200]);
    const capped = await readAll({ ProjectId: "demo" }, 150);
    expect(capped.records.length).toBe(150);
    expect(capped.total).toBe(250);
  });
});
