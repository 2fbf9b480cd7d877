import { describe, expect, it } from "vitest";
import { markRange, scriptMarks } from "./scriptMarks";

describe("script marks", () => {
  const text = "def main(input):\n    return treshold +\n";
  it("underlines the word at a line and column", () => {
    const r = markRange(text, { line: 2, column: 12 });
    expect(text.slice(r.from, r.to)).toBe("treshold");
    const op = markRange(text, { line: 2, column: 21 });
    expect(text.slice(op.from, op.to)).toBe("+");
  });
  it("clamps places past the text", () => {
    expect(markRange(text, { line: 9, column: 1 })).toEqual({ from: text.length, to: text.length });
    // At the end of a line, its last character.
    expect(markRange(text, { line: 1, column: 80 })).toEqual({ from: 15, to: 16 });
    const newline = markRange(text, { line: 2, column: 22 });
    expect(text.slice(newline.from, newline.to)).toBe("+");
  });
  it("keeps the errors of the field that have a place", () => {
    const marks = scriptMarks([
      { NodeId: "fn", Field: "config.script", Message: "undefined: treshold", Line: 2, Column: 12 },
      { NodeId: "fn", Field: "config.script", Message: "the script must define main", Line: 0, Column: 0 },
      { NodeId: "fn", Field: "inputs.x", Message: "unknown node", Line: 0, Column: 0 },
    ], "config.script");
    expect(marks).toEqual([{ line: 2, column: 12, message: "undefined: treshold" }]);
  });
});
