import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { useState } from "react";
import { Field } from "./Field";

afterEach(cleanup);

function Harness(props: { error?: string }) {
  const [v, setV] = useState("");
  return <Field label="Address" name="Address" value={v} onChange={setV} error={props.error} hint="A folder of images" />;
}

describe("Field", () => {
  it("labels its input and shows the hint", () => {
    render(<Harness />);
    const input = screen.getByLabelText("Address");
    expect(input.getAttribute("name")).toBe("Address");
    expect(input.getAttribute("aria-invalid")).toBeNull();
    expect(input.getAttribute("aria-describedby")).toBeTruthy();
    fireEvent.change(input, { target: { value: "/media/photos" } });
    expect((input as HTMLInputElement).value).toBe("/media/photos");
  });

  it("shows the server's error next to the input it names and marks it invalid", () => {
    render(<Harness error="not under a media root" />);
    const input = screen.getByLabelText("Address");
    expect(input.getAttribute("aria-invalid")).toBe("true");
    const alert = screen.getByRole("alert");
    expect(alert.textContent).toBe("not under a media root");
    expect(input.getAttribute("aria-describedby")).toContain(alert.id);
  });
});
