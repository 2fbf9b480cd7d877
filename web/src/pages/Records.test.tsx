// The records page's search, export and image URLs; the browser test runs the
// page against a real platform. readAll gets answers shaped as the gateway's
// through a replaced fetch because jsdom has no server to reach.
import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import type { RecordInfo } from "../types";
import {
  attrText, boxesOf, BulkDelete, csvCell, deleteMatching, frameKey, FrameView, nameOf, parseAttr, readAll, sameOrigin, searchBody, searchOf, thumbUrl,
  toCsv, toJsonLines,
} from "./Records";

const rec = (id: string): RecordInfo => ({
  RecordId: id, ProjectId: "demo", TaskId: "task-1", DeviceId: "dev-1", Type: "face", Time: "2026-12-06T13:00:00Z",
  Data: { Crop: { ObjectKey: `demo/${id}.jpg` }, Note: 'say "hi", then go' }, ObjectKeys: [`demo/${id}.jpg`],
  ObjectUrls: [`http://other.example/objects/demo/${id}.jpg?sig=x`], CreatedTime: "",
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("searchBody", () => {
  it("sends only the filters set, times in UTC", () => {
    const b = searchBody("demo", { task: "task-1", device: "", site: "", type: "face", from: "2026-12-06T10:00", to: "", attrs: [] });
    expect(b.ProjectId).toBe("demo");
    expect(b.TaskIds).toEqual(["task-1"]);
    expect(b.Types).toEqual(["face"]);
    expect(b.DeviceIds).toBeUndefined();
    expect(b.EdgeNodeIds).toBeUndefined();
    expect(b.StartTime).toBe(new Date("2026-12-06T10:00").toISOString());
    expect(b.EndTime).toBeUndefined();
    expect(b.Attributes).toBeUndefined();
  });
  it("sends attribute filters with their comparison, leaving out those without a field", () => {
    const b = searchBody("demo", { task: "", device: "", site: "", type: "", from: "", to: "",
      attrs: [{ name: "Quality", op: ">=", value: "0.8" }, { name: "", op: "=", value: "x" }, { name: "gender", op: "=", value: "female" }] });
    expect(b.Attributes).toEqual([{ Name: "Quality", Op: ">=", Value: "0.8" }, { Name: "gender", Op: "=", Value: "female" }]);
  });
  it("sends a site as the edge node whose records are wanted", () => {
    expect(searchBody("demo", { task: "", device: "", site: "edge-1", type: "", from: "", to: "", attrs: [] }).EdgeNodeIds).toEqual(["edge-1"]);
  });
  it("leaves a time it cannot read for the server to refuse", () => {
    expect(searchBody("demo", { task: "", device: "", site: "", type: "", from: "", to: "soon", attrs: [] }).EndTime).toBe("soon");
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

describe("attribute filters", () => {
  it("reads a filter as written and writes it back for the URL", () => {
    expect(parseAttr("Quality >= 0.8")).toEqual({ name: "Quality", op: ">=", value: "0.8" });
    expect(parseAttr("Data.gender=female")).toEqual({ name: "gender", op: "=", value: "female" });
    expect(parseAttr("age!=30")).toEqual({ name: "age", op: "!=", value: "30" });
    expect(parseAttr("note=a = b")).toEqual({ name: "note", op: "=", value: "a = b" });
    expect(parseAttr("1bad=x")).toBeNull();
    expect(parseAttr("no operator")).toBeNull();
    for (const a of [{ name: "Quality", op: "<", value: "0.5" }, { name: "tag", op: "=", value: "<b>=" }]) expect(parseAttr(attrText(a))).toEqual(a);
  });
  it("keeps every filter of the URL", () => {
    const s = searchOf(new URLSearchParams("task=t1&attr=Quality%3E%3D0.8&attr=gender%3Dfemale&attr=junk"));
    expect(s.task).toBe("t1");
    expect(s.attrs).toEqual([{ name: "Quality", op: ">=", value: "0.8" }, { name: "gender", op: "=", value: "female" }]);
  });
});

describe("names", () => {
  it("shows a name where it knows the id, else the id", () => {
    const list = [{ id: "task-1", name: "gate faces" }];
    expect(nameOf(list, "task-1")).toBe("gate faces");
    expect(nameOf(list, "task-gone")).toBe("task-gone");
  });
});

describe("frame and boxes", () => {
  const face: RecordInfo = { ...rec("r1"), Data: { Box: [10, 20, 30, 40], Crop: { ObjectKey: "demo/crop.jpg" }, Image: { ObjectKey: "demo/frame.jpg" } },
    ObjectKeys: ["demo/frame.jpg", "demo/crop.jpg"], ObjectUrls: ["http://h/objects/demo/frame.jpg?s=1", "http://h/objects/demo/crop.jpg?s=2"] };
  it("finds the frame, the crop for the thumbnail, and the boxes", () => {
    expect(frameKey(face)).toBe("demo/frame.jpg");
    expect(thumbUrl(face)).toBe("/objects/demo/crop.jpg?s=2");
    expect(frameKey(rec("r2"))).toBeUndefined();
    expect(thumbUrl(rec("r2"))).toBe("/objects/demo/r2.jpg?sig=x");
    expect(boxesOf(face.Data)).toEqual([[10, 20, 30, 40]]);
    expect(boxesOf({ Boxes: [[1, 2, 3, 4], [0, 0, 0, 5], "x"] })).toEqual([[1, 2, 3, 4]]);
    expect(boxesOf({ Objects: [{ box: [5, 6, 7, 8] }, { label: "no box" }] })).toEqual([[5, 6, 7, 8]]);
    expect(boxesOf({ Box: [1, 2, "3", 4] })).toEqual([]);
    expect(boxesOf(null)).toEqual([]);
  });
  it("draws each box over the frame in the frame's pixels once it has loaded", () => {
    render(<FrameView url="/objects/demo/frame.jpg?s=1" boxes={[[10, 20, 30, 40]]} label="r1" />);
    const img = screen.getByTestId("record-frame");
    expect(screen.queryByTestId("record-box")).toBeNull();
    Object.defineProperty(img, "naturalWidth", { value: 640 });
    Object.defineProperty(img, "naturalHeight", { value: 480 });
    fireEvent.load(img);
    expect(screen.getByTestId("record-boxes").getAttribute("viewBox")).toBe("0 0 640 480");
    const box = screen.getByTestId("record-box");
    expect([box.getAttribute("x"), box.getAttribute("y"), box.getAttribute("width"), box.getAttribute("height")]).toEqual(["10", "20", "30", "40"]);
  });
});

describe("bulk delete", () => {
  // A store of records behind DescribeRecords (newest first) and DeleteRecords.
  function store(n: number) {
    let ids = Array.from({ length: n }, (_, i) => `r${i}`);
    const calls: string[] = [];
    vi.stubGlobal("fetch", async (_: string, init: RequestInit) => {
      const action = (init.headers as Record<string, string>)["X-TC-Action"] ?? "";
      const b = JSON.parse(String(init.body)) as { Offset: number; Limit: number; RecordIds: string[] };
      calls.push(action);
      if (action === "DeleteRecords") {
        const before = ids.length;
        ids = ids.filter((x) => !b.RecordIds.includes(x));
        return new Response(JSON.stringify({ Response: { RequestId: "r", DeletedCount: before - ids.length } }));
      }
      return new Response(JSON.stringify({ Response: { RequestId: "r", TotalCount: ids.length, RecordSet: ids.slice(b.Offset, b.Offset + b.Limit).map(rec) } }));
    });
    return { left: () => ids, calls };
  }
  it("deletes what a search matches page by page, no more than confirmed, telling progress", async () => {
    const s = store(250);
    const seen: number[] = [];
    expect(await deleteMatching({ ProjectId: "demo" }, 230, (p) => seen.push(p.done))).toBe(230);
    expect(seen).toEqual([100, 200, 230]);
    expect(s.left().length).toBe(20);
  });
  it("stops when nothing is left to delete", async () => {
    const s = store(5);
    expect(await deleteMatching({ ProjectId: "demo" }, 50, () => {})).toBe(5);
    expect(s.left()).toEqual([]);
  });
  it("asks to confirm, then deletes the selection and says how many went", async () => {
    const s = store(3);
    const done = vi.fn();
    render(<BulkDelete projectId="demo" body={{ ProjectId: "demo" }} total={3} selected={["r0", "r2"]} onSelectPage={() => {}} onClear={() => {}}
      onDone={done} />);
    fireEvent.click(screen.getByRole("button", { name: "Delete selected (2)" }));
    expect(s.calls).toEqual([]);
    fireEvent.click(screen.getByRole("button", { name: "Confirm deleting 2 records" }));
    expect((await screen.findByTestId("delete-note")).textContent).toBe("Deleted 2 records.");
    expect(s.left()).toEqual(["r1"]);
    expect(done).toHaveBeenCalledOnce();
  });
});
