import { describe, expect, it } from "vitest";
import { readInput, showInput } from "./InputFields";

describe("an input typed in the node panel", () => {
  it("is a path, a literal of the port's type, or the text", () => {
    expect(readInput("crop", "string")).toBe("crop");
    expect(readInput("0.25", "number")).toBe(0.25);
    expect(readInput("4", "integer")).toBe(4);
    expect(readInput("true", "bool")).toBe(true);
    expect(readInput("$item.box", "list")).toBe("$item.box");
    expect(readInput("[1, 2, 3, 4]", "list")).toEqual([1, 2, 3, 4]);
    expect(readInput("12", "string")).toBe("12");
    expect(readInput("abc", "number")).toBe("abc"); // ValidateFlow names what is wrong
    expect(readInput("  ", "any")).toBeUndefined();
  });
  it("shows what it holds", () => {
    expect(showInput("$detect.faces")).toBe("$detect.faces");
    expect(showInput(0.25)).toBe("0.25");
    expect(showInput(undefined)).toBe("");
    expect(showInput(readInput("[1,2]", "any"))).toBe("[1,2]");
  });
});
