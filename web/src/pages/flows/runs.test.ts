import { describe, expect, it } from "vitest";
import { boxesOf, KEEP, loadHistory, nextSeq, pictureOf, pinnedFor, remember, saveHistory, summary, upstreamOf } from "./runs";
import type { FlowDoc } from "./graph";
import type { NodeRun } from "./runs";

const pic = (key: string) => ({ ObjectUrl: `/o/${key}`, ObjectKey: key, ContentType: "image/jpeg", Size: 10 });

describe("boxesOf", () => {
  it("finds boxes at any depth, as face-detect and foreach answer them", () => {
    expect(boxesOf({ faces: [{ box: [1, 2, 3, 4], score: 0.9 }], width: 640 })).toEqual([{ box: [1, 2, 3, 4], score: 0.9, label: undefined, trackId: undefined }]);
    const nested = { results: [{ box: [10, 20, 30, 40], crop: pic("c"), trackId: 3 }, { box: [0, 0, 1, 1] }] };
    expect(boxesOf(nested).map((b) => b.box)).toEqual([[10, 20, 30, 40], [0, 0, 1, 1]]);
    expect(boxesOf(nested)[0]?.trackId).toBe(3);
  });
  it("skips what is not a box of four numbers", () => {
    expect(boxesOf({ box: [1, 2, 3] })).toEqual([]);
    expect(boxesOf({ box: ["1", 2, 3, 4] })).toEqual([]);
    expect(boxesOf(null)).toEqual([]);
    expect(boxesOf("box")).toEqual([]);
  });
});

describe("pictureOf", () => {
  it("takes the shallowest picture, so a frame comes before crops inside objects", () => {
    expect(pictureOf({ results: [{ crop: pic("crop") }], image: pic("frame") })?.ObjectKey).toBe("frame");
    expect(pictureOf({ results: [{ crop: pic("crop") }] })?.ObjectKey).toBe("crop");
    expect(pictureOf({ image: { ContentType: "image/png", Size: 3, Omitted: "too many" } })).toBeUndefined();
    expect(pictureOf({ n: 1 })).toBeUndefined();
  });
});

describe("summary", () => {
  const run = (Output: unknown, Status = "ok", Error?: string): NodeRun => ({ NodeId: "n", Kind: "k", Status, DurationUs: 1500, Output, Error });
  it("says what a node produced in a few words", () => {
    expect(summary(run({ faces: [{ box: [0, 0, 1, 1] }, { box: [1, 1, 1, 1] }, { box: [2, 2, 1, 1] }] }))).toBe("3 objects");
    expect(summary(run({ faces: [{ box: [0, 0, 1, 1] }] }))).toBe("1 object");
    expect(summary(run({ best: [], ended: [1] }))).toBe("1 item");
    expect(summary(run({ image: pic("x") }))).toBe("picture");
    expect(summary(run({ a: 1, b: 2 }))).toBe("2 fields");
    expect(summary(run(null))).toBe("no output");
    expect(summary(run(undefined, "error", "boom"))).toBe("error: boom");
  });
});

const doc: FlowDoc = {
  nodes: [
    { id: "detect", kind: "algorithm", inputs: { image: "$input.image" } },
    { id: "frame", kind: "passthrough", inputs: { image: "$input.image" } },
    { id: "crop", kind: "algorithm", inputs: { image: "$frame.image", box: "$detect.faces[0].box" } },
    { id: "track", kind: "track", inputs: { objects: "$detect.faces" } },
    { id: "best", kind: "bestshot", inputs: { objects: "$track.objects" } },
  ],
  edges: [{ from: "detect", to: "track" }, { from: "frame", to: "best" }],
};

describe("pinning", () => {
  it("names the nodes a node reads, by reference or by wire", () => {
    expect(upstreamOf(doc, "crop")).toEqual(["detect", "frame"]);
    expect(upstreamOf(doc, "best")).toEqual(["frame", "track"]);
    expect(upstreamOf(doc, "detect")).toEqual([]);
    expect(upstreamOf(doc, "ghost")).toEqual([]);
  });
  it("pins the outputs of upstream nodes that succeeded", () => {
    const nodes: NodeRun[] = [
      { NodeId: "detect", Kind: "algorithm", Status: "ok", DurationUs: 1, Output: { faces: [] } },
      { NodeId: "frame", Kind: "passthrough", Status: "error", DurationUs: 1 },
      { NodeId: "track", Kind: "track", Status: "ok", DurationUs: 1, Output: { objects: [] } },
    ];
    expect(pinnedFor(doc, "crop", nodes)).toEqual({ detect: { faces: [] } });
    expect(pinnedFor(doc, "best", nodes)).toEqual({ track: { objects: [] } });
  });
});

describe("history", () => {
  const n = (id: string, us: number): NodeRun => ({ NodeId: id, Kind: "k", Status: "ok", DurationUs: us });
  it("keeps the last runs of each node, newest first", () => {
    let h = {};
    for (let i = 1; i <= KEEP + 5; i++) h = remember(h, [n("a", i), ...(i % 2 ? [n("b", i)] : [])], { seq: nextSeq(h), at: "t", mode: "flow", input: "x.jpg" });
    const a = (h as Record<string, { seq: number }[]>).a ?? [];
    expect(a.length).toBe(KEEP);
    expect(a[0]?.seq).toBe(KEEP + 5);
    expect(a[KEEP - 1]?.seq).toBe(6);
    expect(nextSeq(h)).toBe(KEEP + 6);
  });
  it("is kept per flow in storage, and halved when it does not fit", () => {
    const m = new Map<string, string>();
    let fits = 0;
    const store = {
      getItem: (k: string) => m.get(k) ?? null,
      setItem: (k: string, v: string) => {
        if (v.length > fits) throw new Error("quota");
        m.set(k, v);
      },
    };
    let h = {};
    for (let i = 1; i <= 8; i++) h = remember(h, [n("a", i)], { seq: i, at: "t", mode: "node", input: "cam" });
    fits = JSON.stringify(h).length / 3;
    saveHistory(store, "p/f", h);
    const back = loadHistory(store, "p/f") as Record<string, unknown[]>;
    expect(back.a?.length).toBe(2);
    expect(loadHistory(store, "p/other")).toEqual({});
    m.set("tianshu.flow.testruns.p/bad", "{");
    expect(loadHistory(store, "p/bad")).toEqual({});
  });
});
