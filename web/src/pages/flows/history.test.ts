import { describe, expect, it } from "vitest";
import { batch, historyReducer, LIMIT, record, redo, start, undo } from "./history";

describe("history", () => {
  it("undoes and redoes edits in order", () => {
    let h = start("a");
    h = record(h, "b");
    h = record(h, "c");
    h = undo(h);
    expect(h.present).toBe("b");
    h = undo(h);
    expect(h.present).toBe("a");
    expect(undo(h)).toBe(h); // nothing more to undo
    h = redo(h);
    expect(h.present).toBe("b");
    h = redo(h);
    expect(h.present).toBe("c");
    expect(redo(h)).toBe(h);
  });

  it("forgets the steps forward after a new edit", () => {
    let h = record(record(start(1), 2), 3);
    h = record(undo(h), 4);
    expect(h.present).toBe(4);
    expect(h.future).toEqual([]);
    expect(undo(h).present).toBe(2);
  });

  it("keeps at most LIMIT steps back", () => {
    let h = start(0);
    for (let i = 1; i <= LIMIT + 20; i++) h = record(h, i);
    expect(h.past.length).toBe(LIMIT);
    for (let i = 0; i < LIMIT; i++) h = undo(h);
    expect(h.present).toBe(20);
    expect(undo(h)).toBe(h);
  });

  it("an edit that changes nothing is not a step", () => {
    const h = start({ n: 1 });
    expect(historyReducer(h, { type: "apply", edit: (d) => d })).toBe(h);
  });

  it("a reset forgets every step", () => {
    let h = historyReducer(start("a"), { type: "apply", edit: () => "b" });
    h = historyReducer(h, { type: "reset", present: "v2" });
    expect(h).toEqual({ past: [], present: "v2", future: [] });
  });

  it("edits of one group are one step", () => {
    let h = record(start("a"), "b", 1);
    h = record(h, "c", 1);
    h = record(h, "d", 2);
    expect(h.past).toEqual(["a", "c"]);
    h = undo(h);
    expect(h.present).toBe("c");
    expect(undo(h).present).toBe("a");
    expect(record(record(start(0), 1), 2).past).toEqual([0, 1]); // no group: a step each
  });

  it("a batch is one task of the event loop", async () => {
    const a = batch();
    expect(batch()).toBe(a);
    await new Promise((r) => setTimeout(r, 0));
    expect(batch()).toBe(a + 1);
  });
});
