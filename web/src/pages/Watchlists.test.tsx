// The Watchlists page: hits read from watchlist_hit records, the requests
// that add a person (photos with their algorithm, or an embedding), and
// what a viewer sees (lists, people and hits, no button that writes).
// fetch is replaced with answers shaped as the gateway's; the browser test
// runs the page against a real platform.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { SessionContext } from "../session";
import { sessionFor, stubActions } from "../testServer";
import { hitOf, hitsBody, parseEmbedding, parseThreshold, personBody, Watchlists } from "./Watchlists";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("logic", () => {
  it("reads a hit record's person, list and similarity", () => {
    expect(hitOf({ PersonName: "Ann", PersonId: "psn-1", WatchlistName: "vip", Similarity: 0.97, Threshold: 0.85 })).toEqual({ person: "Ann", list: "vip", similarity: 0.97, threshold: 0.85 });
    expect(hitOf({ PersonId: "psn-1", WatchlistId: "wl-1" })).toEqual({ person: "psn-1", list: "wl-1", similarity: undefined, threshold: undefined });
    expect(hitOf(null).person).toBe("");
  });
  it("asks for the newest hits, of one list when one is open", () => {
    expect(hitsBody("demo", "")).toEqual({ ProjectId: "demo", Types: ["watchlist_hit"], Limit: 20 });
    expect(hitsBody("demo", "wl-1").Conditions).toEqual([{ Field: "WatchlistId", Op: "=", Value: "wl-1" }]);
  });
  it("reads thresholds and embeddings as typed", () => {
    expect(parseThreshold("0.85")).toBe(0.85);
    expect(parseThreshold("high")).toBe("high");
    expect(parseEmbedding("[0.1, -2, 3e-1]")).toEqual([0.1, -2, 0.3]);
    expect(parseEmbedding("1 2 3")).toEqual([1, 2, 3]);
    expect(parseEmbedding("[1, x]")).toBeNull();
    expect(parseEmbedding("  ")).toBeNull();
  });
  it("sends each photo with the algorithm that describes it, and an embedding as is", () => {
    expect(personBody("demo", "wl-1", { name: "Ann", externalId: "e-1", photos: ["AAA", "BBB"], algorithm: "alg-d", embedding: [1, 2] })).toEqual({
      ProjectId: "demo", Name: "Ann", ExternalId: "e-1", WatchlistIds: ["wl-1"],
      Faces: [{ Image: "AAA", AlgorithmId: "alg-d" }, { Image: "BBB", AlgorithmId: "alg-d" }, { Embedding: [1, 2] }],
    });
  });
});

const list = { WatchlistId: "wl-1", ProjectId: "demo", Name: "vip", Description: "", Threshold: 0.85, Enabled: true, PersonCount: 1, CreatedTime: "", UpdatedTime: "" };
const answers = {
  DescribeWatchlists: () => ({ TotalCount: 1, WatchlistSet: [list] }),
  DescribeWatchlistPeople: () => ({ TotalCount: 1, PersonSet: [{ PersonId: "psn-1", ProjectId: "demo", Name: "Ann", ExternalId: "e-1", Notes: "", WatchlistIds: ["wl-1"], FaceSet: [{ FaceId: "wf-1", AlgorithmId: "", Box: [], Dim: 4 }] }] }),
  SearchRecords: () => ({ TotalCount: 1, RecordSet: [{ RecordId: "rec-h", ProjectId: "demo", TaskId: "t", DeviceId: "dev-1", Type: "watchlist_hit", Time: "2026-12-06T10:00:00Z",
    Data: { PersonName: "Ann", WatchlistName: "vip", Similarity: 0.9731 }, ObjectKeys: [], ObjectUrls: [], CreatedTime: "" }] }),
  DescribeDevices: () => ({ TotalCount: 1, DeviceSet: [{ DeviceId: "dev-1", Name: "gate" }] }),
  DescribeAlgorithms: () => ({ TotalCount: 0, AlgorithmSet: [] }),
};
const READ = ["DescribeWatchlists", "DescribeWatchlistPeople", "SearchRecords", "DescribeDevices", "DescribeAlgorithms"];
const WRITE = ["CreateWatchlist", "ModifyWatchlist", "DeleteWatchlist", "CreateWatchlistPerson", "DeleteWatchlistPeople"];

function show(actions: string[]) {
  return render(
    <SessionContext.Provider value={sessionFor(actions)}>
      <Watchlists />
    </SessionContext.Provider>,
  );
}

describe("the page", () => {
  beforeEach(() => window.history.replaceState(null, "", "/watchlists?project=demo&list=wl-1"));

  it("shows a viewer the lists, people and hits, and no button that writes", async () => {
    stubActions(answers);
    show(READ);
    await screen.findByRole("row", { name: /Ann.*e-1/ });
    const hit = await screen.findByRole("row", { name: /2026-12-06T10:00:00Z/ });
    expect(within(hit).getByText("0.973")).toBeTruthy();
    expect(within(hit).getByText("gate")).toBeTruthy();
    for (const name of [/New watchlist/, /Edit vip/, /Disable vip/, /Delete watchlist vip/, /Remove Ann/, /Add person/]) expect(screen.queryByRole("button", { name })).toBeNull();
  });

  it("lets an admin disable a list and add a person with an embedding", async () => {
    const sent = stubActions({ ...answers, ModifyWatchlist: () => ({}), CreateWatchlistPerson: () => ({ PersonId: "psn-2", FaceSet: [{ FaceId: "wf-2", AlgorithmId: "", Box: [], Dim: 3 }] }) });
    show([...READ, ...WRITE]);
    fireEvent.click(await screen.findByRole("button", { name: "Disable vip" }));
    await waitFor(() => expect(sent.find((s) => s.action === "ModifyWatchlist")?.body).toEqual({ ProjectId: "demo", WatchlistId: "wl-1", Enabled: false }));
    const form = screen.getByRole("form", { name: "Add a person to vip" });
    fireEvent.change(within(form).getByLabelText("Person's name"), { target: { value: "Bo" } });
    fireEvent.change(within(form).getByLabelText("Embedding"), { target: { value: "[1, x]" } });
    fireEvent.click(within(form).getByRole("button", { name: "Add person" }));
    expect((await within(form).findByText(/numbers, as a JSON array/)).getAttribute("data-field-error")).toBe("Embedding");
    fireEvent.change(within(form).getByLabelText("Embedding"), { target: { value: "[1, 0, 0.5]" } });
    fireEvent.click(within(form).getByRole("button", { name: "Add person" }));
    await within(form).findByText("Added Bo with 1 reference face.");
    expect(sent.find((s) => s.action === "CreateWatchlistPerson")?.body).toMatchObject({ Name: "Bo", WatchlistIds: ["wl-1"], Faces: [{ Embedding: [1, 0, 0.5] }] });
  });

  it("names the photo a face error is about", async () => {
    stubActions({ ...answers, CreateWatchlistPerson: () => ({ Error: { Code: "InvalidParameterValue", Message: "Faces[1].Image: no face found in the photo" } }) });
    show([...READ, ...WRITE]);
    const form = await screen.findByRole("form", { name: "Add a person to vip" });
    fireEvent.change(within(form).getByLabelText("Person's name"), { target: { value: "Cy" } });
    fireEvent.change(within(form).getByLabelText("Reference photos"), { target: { files: [new File(["a"], "a.jpg"), new File(["b"], "b.jpg")] } });
    await within(form).findByText(/a\.jpg, b\.jpg/);
    fireEvent.click(within(form).getByRole("button", { name: "Add person" }));
    expect((await within(form).findByText(/photo b\.jpg: no face found/)).getAttribute("data-field-error")).toBe("Faces");
  });
});
