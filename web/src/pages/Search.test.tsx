// The view library's logic: the requests a face and an attribute search send
// (typed condition values, rows without a field left out), the errors they
// show (a photo without a face next to the photo, an index being rebuilt as
// its own notice), and a face search's grid of crops. fetch is replaced with
// answers shaped as the gateway's; the browser test runs the page against a
// real platform.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { ApiError } from "../api";
import { SessionContext } from "../session";
import { sessionFor, stubActions } from "../testServer";
import { attrBody, conditionsBody, embedders, faceBody, readPhoto, rowOfCondition, Search, typed, unavailable } from "./Search";
import type { FaceQuery } from "./Search";

const q = (over: Partial<FaceQuery>): FaceQuery => ({ source: "photo", image: "aGk=", algorithm: "alg-desc", record: "", threshold: "", from: "", to: "", device: "", ...over });

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("faceBody", () => {
  it("sends a photo with its algorithm, the filters set and the page", () => {
    const b = faceBody("demo", q({ threshold: "0.8", device: "dev-1", from: "2026-12-06T10:00" }), 24);
    expect(b).toMatchObject({ ProjectId: "demo", Image: "aGk=", AlgorithmId: "alg-desc", Threshold: 0.8, DeviceIds: ["dev-1"], Offset: 24, Limit: 24 });
    expect(b.StartTime).toBe(new Date("2026-12-06T10:00").toISOString());
    expect(b.RecordId).toBeUndefined();
    expect(b.EndTime).toBeUndefined();
  });
  it("sends a record instead of a photo, and a threshold it cannot read as typed", () => {
    const b = faceBody("demo", q({ source: "record", record: " rec-1 ", threshold: "high" }), 0);
    expect(b.RecordId).toBe("rec-1");
    expect(b.Image).toBeUndefined();
    expect(b.Threshold).toBe("high");
  });
});

describe("conditions", () => {
  it("sends each value as the type chosen, and in as a list", () => {
    const { conditions, errors } = conditionsBody([
      { field: "Attributes.age", op: ">", value: "30", type: "number" },
      { field: "", op: "=", value: "ignored", type: "text" },
      { field: "Attributes.gender", op: "=", value: "female", type: "text" },
      { field: "Masked", op: "=", value: "true", type: "boolean" },
      { field: "Attributes.color", op: "in", value: "black, red", type: "text" },
    ]);
    expect(errors).toEqual({});
    expect(conditions).toEqual([
      { Field: "Attributes.age", Op: ">", Value: 30 },
      { Field: "Attributes.gender", Op: "=", Value: "female" },
      { Field: "Masked", Op: "=", Value: true },
      { Field: "Attributes.color", Op: "in", Values: ["black", "red"] },
    ]);
  });
  it("names the row whose value is not of its type", () => {
    expect(conditionsBody([{ field: "age", op: "<", value: "old", type: "number" }]).errors).toEqual({ "Conditions[0].Value": "not a number" });
    expect(conditionsBody([{ field: "x", op: "in", value: " , ", type: "text" }]).errors["Conditions[0].Value"]).toMatch(/one or more/);
    expect(conditionsBody([{ field: "x", op: "in", value: "1, two", type: "number" }]).errors["Conditions[0].Value"]).toMatch(/number/);
    expect(typed("maybe", "boolean")).toBeUndefined();
    expect(typed("", "number")).toBeUndefined();
  });
  it("maps the server's condition index (rows sent) back to the row shown", () => {
    const rows = [{ field: "", op: "=", value: "", type: "text" as const }, { field: "a", op: "=", value: "1", type: "text" as const }, { field: "b", op: "=", value: "", type: "text" as const }];
    expect(rowOfCondition(rows, 0)).toBe(1);
    expect(rowOfCondition(rows, 1)).toBe(2);
  });
  it("builds the attribute search with type, device and times", () => {
    const { body } = attrBody("demo", { type: "vehicle", from: "", to: "2026-12-06T11:00", device: "dev-2", conditions: [] }, 20);
    expect(body).toMatchObject({ ProjectId: "demo", Types: ["vehicle"], DeviceIds: ["dev-2"], Offset: 20, Limit: 20 });
    expect(body.EndTime).toBe(new Date("2026-12-06T11:00").toISOString());
    expect(body.Conditions).toBeUndefined();
  });
});

describe("helpers", () => {
  it("tells an index being rebuilt from other errors", () => {
    expect(unavailable(new ApiError("ResourceUnavailable", "the vector index is being rebuilt"))).toBe(true);
    expect(unavailable(new ApiError("InvalidParameterValue", "Image: no face found"))).toBe(false);
  });
  it("puts face-describing algorithms first", () => {
    const algs = [{ AlgorithmId: "alg-face-detect", Name: "face-detect" }, { AlgorithmId: "alg-2", Name: "face-descriptor" }];
    expect(embedders(algs).map((a) => a.Name)).toEqual(["face-descriptor", "face-detect"]);
  });
  it("reads a photo as base64 and refuses one too big to send", async () => {
    expect(await readPhoto(new Blob(["hi"], { type: "image/jpeg" }))).toBe("aGk=");
    await expect(readPhoto(new Blob([new Uint8Array((3 << 20) + 1)]))).rejects.toThrow(/at most 3 MB/);
  });
});

describe("the page", () => {
  beforeEach(() => window.history.replaceState(null, "", "/search?project=demo"));
  const base = {
    DescribeDevices: () => ({ TotalCount: 1, DeviceSet: [{ DeviceId: "dev-1", Name: "gate" }] }),
    DescribeAlgorithms: () => ({ TotalCount: 1, AlgorithmSet: [{ AlgorithmId: "alg-desc", Name: "face-descriptor" }] }),
  };
  function show() {
    return render(
      <SessionContext.Provider value={sessionFor(["SearchFaces", "SearchRecords", "DescribeDevices", "DescribeAlgorithms"])}>
        <Search />
      </SessionContext.Provider>,
    );
  }
  async function choosePhoto() {
    const input = screen.getByLabelText("Photo");
    fireEvent.change(input, { target: { files: [new File(["hi"], "me.jpg", { type: "image/jpeg" })] } });
    await screen.findByText(/me\.jpg: its largest face/);
  }

  it("shows the hits as a grid of crops with similarity and the device's name, each a link to its record", async () => {
    const sent = stubActions({
      ...base,
      SearchFaces: () => ({ HasMore: true, FaceSet: [{ RecordId: "rec-1", Similarity: 0.9731, DeviceId: "dev-1", TaskId: "t", Time: "2026-12-06T10:00:00Z", CropUrl: "http://x/objects/a.jpg?sig=1" }] }),
    });
    show();
    await choosePhoto();
    fireEvent.click(screen.getByRole("button", { name: "Search" }));
    const grid = await screen.findByRole("list", { name: "Faces found" });
    const card = within(grid).getByRole("listitem");
    expect(within(card).getByTestId("similarity").textContent).toBe("0.973");
    expect(within(card).getByText("gate")).toBeTruthy();
    expect(within(card).getByRole("img").getAttribute("src")).toBe("/objects/a.jpg?sig=1");
    expect(within(card).getByRole("link").getAttribute("href")).toBe("/records?project=demo&record=rec-1");
    const search = sent.find((s) => s.action === "SearchFaces");
    expect(search?.body).toMatchObject({ Image: "aGk=", AlgorithmId: "alg-desc", Threshold: 0.5, Offset: 0 });
    fireEvent.click(screen.getByRole("button", { name: "Next" }));
    await waitFor(() => expect(sent.filter((s) => s.action === "SearchFaces").at(-1)?.body.Offset).toBe(24));
  });

  it("shows a photo without a face next to the photo, and an index being rebuilt as a notice", async () => {
    let answer: object = { Error: { Code: "InvalidParameterValue", Message: "Image: no face found in the photo; give Box to name one" } };
    stubActions({ ...base, SearchFaces: () => answer });
    show();
    fireEvent.click(screen.getByRole("button", { name: "Search" }));
    expect((await screen.findByText("choose a photo with a face")).getAttribute("data-field-error")).toBe("Image");
    await choosePhoto();
    fireEvent.click(screen.getByRole("button", { name: "Search" }));
    expect((await screen.findByText(/no face found in the photo/)).getAttribute("data-field-error")).toBe("Image");
    answer = { Error: { Code: "ResourceUnavailable", Message: "the vector index is being rebuilt from the store" } };
    fireEvent.click(screen.getByRole("button", { name: "Search" }));
    expect((await screen.findByTestId("search-unavailable")).textContent).toMatch(/rebuilding from the store/);
  });

  it("searches by attributes with typed conditions and shows the server's error next to its row", async () => {
    window.history.replaceState(null, "", "/search?project=demo&mode=attributes");
    const sent = stubActions({
      ...base,
      SearchRecords: (b) =>
        (b.Conditions as { Value?: unknown }[] | undefined)?.[0]?.Value === 30
          ? { TotalCount: 1, RecordSet: [{ RecordId: "rec-9", ProjectId: "demo", TaskId: "t", DeviceId: "dev-1", Type: "face", Time: "2026-12-06T10:00:00Z", Data: {}, ObjectKeys: [], ObjectUrls: [], CreatedTime: "" }] }
          : { Error: { Code: "InvalidParameterValue", Message: "Conditions[0].Field: \"bad path\": up to four names" } },
    });
    show();
    const form = screen.getByRole("form", { name: "Search by attributes" });
    fireEvent.change(within(form).getByLabelText("Field 1"), { target: { value: "bad path" } });
    fireEvent.click(within(form).getByRole("button", { name: "Search" }));
    expect((await within(form).findByText(/up to four names/)).getAttribute("data-field-error")).toBe("Conditions[0].Field");
    fireEvent.change(within(form).getByLabelText("Field 1"), { target: { value: "Attributes.age" } });
    fireEvent.change(within(form).getByLabelText("Operator 1"), { target: { value: ">" } });
    fireEvent.change(within(form).getByLabelText("Value 1"), { target: { value: "30" } });
    fireEvent.change(within(form).getByLabelText("Value type 1"), { target: { value: "number" } });
    fireEvent.click(within(form).getByRole("button", { name: "Search" }));
    const row = await screen.findByRole("row", { name: /2026-12-06T10:00:00Z/ });
    expect(row.getAttribute("data-record")).toBe("rec-9");
    expect(sent.filter((s) => s.action === "SearchRecords").at(-1)?.body).toMatchObject({ Types: ["face"], Conditions: [{ Field: "Attributes.age", Op: ">", Value: 30 }] });
  });
});
