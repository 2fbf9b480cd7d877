// The zone editor from the keyboard: add a line, move its end with the
// arrow keys, reverse it; a read-only editor offers no drawing controls.
// Mouse drawing runs in the browser test (20-devices.mjs).
import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { useState } from "react";
import { ZoneEditor } from "./ZoneEditor";
import type { Zone } from "./zoneMath";

afterEach(cleanup);

let last: Zone[] = [];

function Harness(props: { readOnly?: boolean; zones?: Zone[]; errors?: Record<string, string> }) {
  const [zones, setZones] = useState<Zone[]>(props.zones ?? []);
  return (
    <ZoneEditor imageUrl="data:image/gif;base64,R0lGODlhAQABAAAAACw=" imageAlt="picture" zones={zones} readOnly={props.readOnly ?? false}
      errors={props.errors ?? {}} onChange={(z) => {
        last = z;
        setZones(z);
      }} />
  );
}

describe("ZoneEditor", () => {
  it("adds a line and moves its end with the keyboard", () => {
    render(<Harness />);
    fireEvent.click(screen.getByRole("button", { name: "Add line" }));
    const end = screen.getByRole("button", { name: /^end of line/ });
    fireEvent.keyDown(end, { key: "ArrowDown" });
    fireEvent.keyDown(end, { key: "ArrowDown", shiftKey: true });
    expect(last[0]?.Points[1]).toEqual([0.8, 0.61]);
    fireEvent.click(screen.getByRole("button", { name: "Reverse direction of line" }));
    expect(last[0]?.Points[0]).toEqual([0.8, 0.61]);
  });

  it("removes a polygon's point with Delete while three remain", () => {
    render(<Harness />);
    fireEvent.click(screen.getByRole("button", { name: "Add zone" }));
    fireEvent.keyDown(screen.getByRole("button", { name: /^point 2 of zone/ }), { key: "Delete" });
    expect(last[0]?.Points).toHaveLength(3);
    fireEvent.keyDown(screen.getByRole("button", { name: /^point 1 of zone/ }), { key: "Delete" });
    expect(last[0]?.Points).toHaveLength(3);
  });

  it("shows the server's error next to the zone it names", () => {
    const z: Zone = { Name: "door", Kind: "polygon", Points: [[0, 0], [1, 0], [1, 1]] };
    render(<Harness zones={[z]} errors={{ "Zones[0].Name": "names two zones" }} />);
    expect(screen.getByRole("alert").getAttribute("data-field-error")).toBe("Zones[0].Name");
  });

  it("offers no drawing controls when read-only", () => {
    const z: Zone = { Name: "door", Kind: "polygon", Points: [[0, 0], [1, 0], [1, 1]] };
    render(<Harness readOnly zones={[z]} />);
    expect(screen.queryByRole("button", { name: "Draw zone" })).toBeNull();
    expect(screen.queryByRole("button", { name: "Add line" })).toBeNull();
    expect(screen.queryByRole("button", { name: /^Remove/ })).toBeNull();
    expect((screen.getByRole("button", { name: /^point 1 of door/ }) as HTMLButtonElement).disabled).toBe(true);
  });
});
