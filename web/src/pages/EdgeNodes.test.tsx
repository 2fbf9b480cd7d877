import { describe, expect, it } from "vitest";
import { bytesText, deployedOf } from "./EdgeNodes";

describe("bytesText", () => {
  it("keeps small counts in bytes and larger ones in the unit that fits", () => {
    expect(bytesText(0)).toBe("0 B");
    expect(bytesText(1023)).toBe("1023 B");
    expect(bytesText(1536)).toBe("1.5 KiB");
    expect(bytesText(3 << 20)).toBe("3.0 MiB");
  });
});

describe("deployedOf", () => {
  it("splits a node's versions into its software, flows and algorithms", () => {
    const d = deployedOf({ tianshu: "v1.2.0", "flow/flow-b": "2", "flow/flow-a": "1,3", "algorithm/alg-x": "1", other: "z" });
    expect(d.software).toBe("v1.2.0");
    expect(d.flows).toEqual([["flow-a", "1,3"], ["flow-b", "2"]]);
    expect(d.algorithms).toEqual([["alg-x", "1"]]);
  });
});
