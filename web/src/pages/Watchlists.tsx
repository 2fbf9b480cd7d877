// Watchlists: lists of people with reference faces that match flow nodes
// compare every face with, their people, and their recent hits
// (watchlist_hit records). ?list= opens a list, ?add=1 the new-list form,
// ?edit=wl-… a list's form.
import { useState } from "react";
import type { FormEvent } from "react";
import { call } from "../api";
import { ConfirmDelete } from "../components/ConfirmDelete";
import { Field } from "../components/Field";
import { ErrorLine, ListTable } from "../components/ListTable";
import { closeForm, PageHead } from "../components/PageHead";
import { formErrors, noErrors } from "../errors";
import type { FormErrors } from "../errors";
import { Link } from "../Layout";
import { navigate, useRoute, withQuery } from "../router";
import { can, useSession } from "../session";
import type { Algorithm, Device, RecordInfo } from "../types";
import { useAction } from "../useAction";
import { useLoad } from "../useLoad";
import { usePolled } from "../usePoll";
import { nameOf, Thumbnail } from "./Records";
import { embedders, readPhoto, similarityText } from "./Search";

const REFRESH_MS = 5000;
/** MAX_FACES is how many reference faces a person has at most (the API's limit). */
export const MAX_FACES = 10;

export interface WatchlistInfo {
  WatchlistId: string;
  ProjectId: string;
  Name: string;
  Description: string;
  Threshold: number;
  Enabled: boolean;
  PersonCount: number;
  CreatedTime: string;
  UpdatedTime: string;
}

export interface FaceInfo {
  FaceId: string;
  AlgorithmId: string;
  Box: number[];
  Dim: number;
}

export interface WatchPersonInfo {
  PersonId: string;
  ProjectId: string;
  Name: string;
  ExternalId: string;
  Notes: string;
  WatchlistIds: string[];
  FaceSet: FaceInfo[];
}

/** Hit is what a watchlist_hit record holds, as the hits list shows it. */
export interface Hit {
  person: string;
  list: string;
  similarity: number | undefined;
  threshold: number | undefined;
}

/** hitOf reads a watchlist_hit record's data; missing fields stay empty. */
export function hitOf(data: unknown): Hit {
  const d = (data ?? {}) as Record<string, unknown>;
  const str = (k: string) => (typeof d[k] === "string" ? (d[k] as string) : "");
  const num = (k: string) => (typeof d[k] === "number" ? (d[k] as number) : undefined);
  return { person: str("PersonName") || str("PersonId"), list: str("WatchlistName") || str("WatchlistId"), similarity: num("Similarity"), threshold: num("Threshold") };
}

/** hitsBody is the SearchRecords request for a project's newest hits, of one list when given. */
export function hitsBody(projectId: string, listId: string): Record<string, unknown> {
  const b: Record<string, unknown> = { ProjectId: projectId, Types: ["watchlist_hit"], Limit: 20 };
  if (listId) b.Conditions = [{ Field: "WatchlistId", Op: "=", Value: listId }];
  return b;
}

/** parseThreshold reads a threshold as typed; what is not a number goes as typed, for the server to name. */
export function parseThreshold(v: string): number | string {
  const n = Number(v);
  return v.trim() !== "" && Number.isFinite(n) ? n : v;
}

/** parseEmbedding reads an embedding pasted as a JSON array of numbers (or numbers separated by commas or spaces). */
export function parseEmbedding(text: string): number[] | null {
  const t = text.trim().replace(/^\[|\]$/g, "");
  if (t === "") return null;
  const parts = t.split(/[\s,]+/).filter((s) => s !== "");
  const v = parts.map(Number);
  return v.length > 0 && v.every(Number.isFinite) ? v : null;
}

/** personBody is CreateWatchlistPerson's request: the photos (base64) with the algorithm that describes them, or one embedding. */
export function personBody(projectId: string, listId: string, p: { name: string; externalId: string; photos: string[]; algorithm: string; embedding: number[] | null }): Record<string, unknown> {
  const faces: Record<string, unknown>[] = p.photos.map((img) => ({ Image: img, AlgorithmId: p.algorithm }));
  if (p.embedding) faces.push({ Embedding: p.embedding });
  return { ProjectId: projectId, Name: p.name, ExternalId: p.externalId, WatchlistIds: [listId], Faces: faces };
}

/** Watchlists lists the project's watchlists; ?list= shows one with its people and hits. */
export function Watchlists() {
  const route = useRoute();
  const s = useSession();
  const projectId = s.project?.ProjectId ?? "";
  const listId = route.query.get("list") ?? "";
  const adding = route.query.get("add") === "1";
  const editing = route.query.get("edit") ?? "";
  const { value, error, reload } = usePolled(
    () => call<{ TotalCount: number; WatchlistSet: WatchlistInfo[] }>("DescribeWatchlists", { ProjectId: projectId, Limit: 100 }),
    REFRESH_MS,
    [projectId],
  );
  const lists = value?.WatchlistSet ?? [];
  const current = lists.find((l) => l.WatchlistId === listId);
  const mayCreate = can(s, "CreateWatchlist");
  const mayModify = can(s, "ModifyWatchlist");
  const edited = lists.find((l) => l.WatchlistId === editing);
  return (
    <section aria-labelledby="page-title">
      <PageHead title="Watchlists" add={mayCreate && !adding && "New watchlist"} />
      <p className="muted small">
        Match flow nodes compare every face with the project&apos;s enabled lists; a face at or above a list&apos;s threshold for one of its people is a hit
        (a <code>watchlist_hit</code> record and a <code>tianshu.watchlist.hit</code> event). Changes reach every match node within about a second.
      </p>
      {adding && mayCreate && <ListForm projectId={projectId} onDone={closeForm(reload)} />}
      {edited && mayModify && (
        <ListForm projectId={projectId} list={edited} onDone={(changed) => {
          navigate(withQuery({ edit: undefined }));
          if (changed) reload();
        }} />
      )}
      <ErrorLine error={error} />
      <ListTable caption={`Watchlists of project ${projectId}`} columns={[{ label: "Name" }, { label: "Threshold" }, { label: "Status" }, { label: "People", wide: true }]}
        empty="No watchlists yet." isEmpty={value !== null && lists.length === 0}>
        {lists.map((l) => (
          <tr key={l.WatchlistId} data-watchlist={l.Name} aria-current={l.WatchlistId === listId ? "true" : undefined}>
            <th scope="row">
              <Link to={withQuery({ list: l.WatchlistId, edit: undefined, add: undefined })} current={l.WatchlistId === listId}>
                {l.Name}
              </Link>
            </th>
            <td>{l.Threshold}</td>
            <td>
              <span className={`status status-${l.Enabled ? "enabled" : "disabled"}`}>{l.Enabled ? "enabled" : "disabled"}</span>
            </td>
            <td className="wide-only">{l.PersonCount}</td>
            <td>
              <div className="row-actions">
                {mayModify && <ListButtons list={l} onChanged={reload} />}
                {can(s, "DeleteWatchlist") && (
                  <ConfirmDelete name={`watchlist ${l.Name}`} action="DeleteWatchlist" body={{ ProjectId: projectId, WatchlistId: l.WatchlistId }}
                    onDeleted={() => {
                      if (l.WatchlistId === listId) navigate(withQuery({ list: undefined }));
                      reload();
                    }} />
                )}
              </div>
            </td>
          </tr>
        ))}
      </ListTable>
      {current && <People key={current.WatchlistId} projectId={projectId} list={current} onChanged={reload} />}
      {can(s, "SearchRecords") && <Hits projectId={projectId} list={current} />}
    </section>
  );
}

function ListButtons(props: { list: WatchlistInfo; onChanged(): void }) {
  const { busy, error, run } = useAction();
  const l = props.list;
  return (
    <>
      <button type="button" className="secondary" aria-label={`Edit ${l.Name}`} onClick={() => navigate(withQuery({ edit: l.WatchlistId, add: undefined }))}>
        Edit
      </button>
      <button type="button" className="secondary" disabled={busy} aria-label={`${l.Enabled ? "Disable" : "Enable"} ${l.Name}`}
        onClick={() => void run(async () => {
          await call("ModifyWatchlist", { ProjectId: l.ProjectId, WatchlistId: l.WatchlistId, Enabled: !l.Enabled });
          props.onChanged();
        })}>
        {l.Enabled ? "Disable" : "Enable"}
      </button>
      {error && (
        <div className="form-error" role="alert">
          {error}
        </div>
      )}
    </>
  );
}

const LIST_FIELDS = ["Name", "Description", "Threshold"];

/** ListForm creates a watchlist, or edits one (name, description, threshold). */
function ListForm(props: { projectId: string; list?: WatchlistInfo; onDone(changed: boolean): void }) {
  const l = props.list;
  const [form, setForm] = useState({ name: l?.Name ?? "", description: l?.Description ?? "", threshold: String(l?.Threshold ?? 0.85) });
  const [errors, setErrors] = useState<FormErrors>(noErrors);
  const [busy, setBusy] = useState(false);
  async function save(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    try {
      const body = { ProjectId: props.projectId, Name: form.name, Description: form.description, Threshold: parseThreshold(form.threshold) };
      if (l) await call("ModifyWatchlist", { ...body, WatchlistId: l.WatchlistId });
      else await call("CreateWatchlist", body);
      props.onDone(true);
    } catch (err) {
      setErrors(formErrors(err, LIST_FIELDS));
    } finally {
      setBusy(false);
    }
  }
  const title = l ? `Edit watchlist ${l.Name}` : "New watchlist";
  return (
    <form className="card" onSubmit={save} aria-label={title} noValidate>
      <h2>{title}</h2>
      <div className="form-grid">
        <Field label="Name" name="Name" value={form.name} onChange={(v) => setForm((f) => ({ ...f, name: v }))} error={errors.fields.Name} required />
        <Field label="Threshold" name="Threshold" value={form.threshold} onChange={(v) => setForm((f) => ({ ...f, threshold: v }))} error={errors.fields.Threshold}
          hint="Cosine similarity a face needs to hit a person (above 0, at most 1); see docs/search.md for values per model." />
        <Field label="Description" name="Description" value={form.description} onChange={(v) => setForm((f) => ({ ...f, description: v }))} error={errors.fields.Description} />
      </div>
      <ErrorLine error={errors.form} />
      <div className="buttons">
        <button type="submit" disabled={busy}>
          {l ? "Save" : "Create"}
        </button>
        <button type="button" className="secondary" onClick={() => props.onDone(false)}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function People(props: { projectId: string; list: WatchlistInfo; onChanged(): void }) {
  const s = useSession();
  const { value, error, reload } = usePolled(
    () => call<{ TotalCount: number; PersonSet: WatchPersonInfo[] }>("DescribeWatchlistPeople", { ProjectId: props.projectId, WatchlistIds: [props.list.WatchlistId], Limit: 100 }),
    REFRESH_MS,
    [props.projectId, props.list.WatchlistId],
  );
  const people = value?.PersonSet ?? [];
  const changed = () => {
    reload();
    props.onChanged();
  };
  return (
    <>
      <h2 className="section-title">People on {props.list.Name}</h2>
      {can(s, "CreateWatchlistPerson") && <PersonForm projectId={props.projectId} list={props.list} onAdded={changed} />}
      <ErrorLine error={error} />
      <ListTable caption={`People on ${props.list.Name}`} columns={[{ label: "Name" }, { label: "External id", wide: true }, { label: "Reference faces" }]}
        empty="Nobody on this list yet." isEmpty={value !== null && people.length === 0}>
        {people.map((p) => (
          <tr key={p.PersonId} data-person={p.Name}>
            <th scope="row" title={p.PersonId}>
              {p.Name}
            </th>
            <td className="wide-only">{p.ExternalId}</td>
            <td>{p.FaceSet.length}</td>
            <td>
              <div className="row-actions">
                {can(s, "DeleteWatchlistPeople") && (
                  <ConfirmDelete name={p.Name} verb="Remove" action="DeleteWatchlistPeople" body={{ ProjectId: props.projectId, PersonIds: [p.PersonId] }} onDeleted={changed} />
                )}
              </div>
            </td>
          </tr>
        ))}
      </ListTable>
      {value && value.TotalCount > people.length && (
        <p className="muted small">
          The first {people.length} of {value.TotalCount} people, by name.
        </p>
      )}
    </>
  );
}

function useAlgorithms(projectId: string): Algorithm[] {
  const s = useSession();
  const [algs, setAlgs] = useState<Algorithm[]>([]);
  useLoad(
    () => (can(s, "DescribeAlgorithms") ? call<{ AlgorithmSet: Algorithm[] }>("DescribeAlgorithms", { ProjectId: projectId, Limit: 100 }) : null),
    (r) => setAlgs(embedders(r.AlgorithmSet)),
    () => setAlgs([]),
    [projectId],
  );
  return algs;
}

/** PersonForm adds a person to a list with reference photos (described by an embedding algorithm) or an embedding. */
function PersonForm(props: { projectId: string; list: WatchlistInfo; onAdded(): void }) {
  const algs = useAlgorithms(props.projectId);
  const [form, setForm] = useState({ name: "", externalId: "", algorithm: "", embedding: "" });
  const [photos, setPhotos] = useState<{ name: string; data: string }[]>([]);
  const [errors, setErrors] = useState<FormErrors>(noErrors);
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState("");
  const algorithm = form.algorithm || algs[0]?.AlgorithmId || "";
  async function choose(files: FileList | null) {
    const chosen = Array.from(files ?? []);
    if (chosen.length > MAX_FACES) {
      setErrors({ fields: { Faces: `${chosen.length} photos; a person has at most ${MAX_FACES} reference faces` } });
      return;
    }
    try {
      setPhotos(await Promise.all(chosen.map(async (f) => ({ name: f.name, data: await readPhoto(f) }))));
      setErrors(noErrors);
    } catch (err) {
      setErrors({ fields: { Faces: String(err instanceof Error ? err.message : err) } });
    }
  }
  async function save(e: FormEvent) {
    e.preventDefault();
    const embedding = parseEmbedding(form.embedding);
    if (form.embedding.trim() !== "" && !embedding) {
      setErrors({ fields: { Embedding: "numbers, as a JSON array or separated by commas" } });
      return;
    }
    setBusy(true);
    setNote("");
    try {
      const r = await call<{ PersonId: string; FaceSet: FaceInfo[] }>("CreateWatchlistPerson",
        personBody(props.projectId, props.list.WatchlistId, { name: form.name, externalId: form.externalId, photos: photos.map((p) => p.data), algorithm, embedding }));
      setErrors(noErrors);
      setNote(`Added ${form.name} with ${r.FaceSet.length} reference ${r.FaceSet.length === 1 ? "face" : "faces"}.`);
      setForm((f) => ({ ...f, name: "", externalId: "", embedding: "" }));
      setPhotos([]);
      props.onAdded();
    } catch (err) {
      const f = formErrors(err, ["Name", "ExternalId", "Faces"]);
      // A face's error names it (Faces[1].Image): say which photo.
      if (f.fields.Faces !== undefined && err instanceof Error) {
        const m = /^Faces\[(\d+)\]/.exec(err.message);
        const i = m ? Number(m[1]) : -1;
        const which = i >= 0 && i < photos.length ? `photo ${photos[i]?.name}` : i >= photos.length ? "the embedding" : "";
        f.fields = { ...f.fields, Faces: which ? `${which}: ${f.fields.Faces}` : f.fields.Faces };
      }
      setErrors(f);
    } finally {
      setBusy(false);
    }
  }
  const f = errors.fields;
  return (
    <form className="card" onSubmit={save} aria-label={`Add a person to ${props.list.Name}`} noValidate>
      <div className="form-grid">
        <Field label="Person's name" name="Name" value={form.name} onChange={(v) => setForm((x) => ({ ...x, name: v }))} error={f.Name} required />
        <Field label="External id" name="ExternalId" value={form.externalId} onChange={(v) => setForm((x) => ({ ...x, externalId: v }))} error={f.ExternalId}
          hint="Your system's id for the person (optional)." />
        <div className={f.Faces ? "field field-invalid" : "field"}>
          <label htmlFor="person-photos">Reference photos</label>
          <input id="person-photos" name="Faces" type="file" accept="image/jpeg,image/png" multiple aria-invalid={f.Faces ? true : undefined}
            onChange={(e) => void choose(e.target.files)} />
          <div className="field-hint">
            {photos.length ? `${photos.map((p) => p.name).join(", ")}: the largest face of each is described.` : `Up to ${MAX_FACES}, one face each (the largest is taken).`}
          </div>
          {f.Faces && (
            <div className="field-error" role="alert" data-field-error="Faces">
              {f.Faces}
            </div>
          )}
        </div>
        <Field label="Embedding algorithm" name="AlgorithmId" value={algorithm} onChange={(v) => setForm((x) => ({ ...x, algorithm: v }))}
          options={algs.length ? algs.map((a) => ({ value: a.AlgorithmId, label: a.Name })) : [{ value: "", label: "none onboarded" }]}
          hint="The model the match nodes' embeddings come from." />
      </div>
      <details>
        <summary>Or an embedding</summary>
        <Field label="Embedding" name="Embedding" value={form.embedding} onChange={(v) => setForm((x) => ({ ...x, embedding: v }))} error={f.Embedding}
          hint="A descriptor from your own model, as a JSON array of numbers; it is matched against faces of the same length only." />
      </details>
      <ErrorLine error={errors.form} />
      <div className="buttons">
        <button type="submit" disabled={busy}>
          {busy ? "Adding…" : "Add person"}
        </button>
        {note && (
          <span className="muted" role="status">
            {note}
          </span>
        )}
      </div>
    </form>
  );
}

function Hits(props: { projectId: string; list: WatchlistInfo | undefined }) {
  const s = useSession();
  const listId = props.list?.WatchlistId ?? "";
  const [devices, setDevices] = useState<Device[]>([]);
  useLoad(
    () => (can(s, "DescribeDevices") ? call<{ DeviceSet: Device[] }>("DescribeDevices", { ProjectId: props.projectId, Limit: 100 }) : null),
    (r) => setDevices(r.DeviceSet),
    () => setDevices([]),
    [props.projectId],
  );
  const { value, error } = usePolled(
    () => call<{ TotalCount: number; RecordSet: RecordInfo[] }>("SearchRecords", hitsBody(props.projectId, listId)),
    REFRESH_MS,
    [props.projectId, listId],
  );
  const names = devices.map((d) => ({ id: d.DeviceId, name: d.Name }));
  return (
    <>
      <h2 className="section-title">Recent hits{props.list ? ` on ${props.list.Name}` : ""}</h2>
      <ErrorLine error={error} />
      <ListTable caption="Recent watchlist hits" columns={[{ label: "Crop" }, { label: "Time" }, { label: "Person" }, { label: "List", wide: true }, { label: "Similarity" }, { label: "Camera", wide: true }]}
        empty="No hits yet." isEmpty={value !== null && value.RecordSet.length === 0}>
        {value?.RecordSet.map((r) => {
          const h = hitOf(r.Data);
          return (
            <tr key={r.RecordId} data-hit={r.RecordId}>
              <td>
                <Thumbnail record={r} />
              </td>
              <th scope="row">
                <Link to={withQuery({ record: r.RecordId, list: undefined, edit: undefined }, "/records")}>{r.Time}</Link>
              </th>
              <td>{h.person}</td>
              <td className="wide-only">{h.list}</td>
              <td>{h.similarity === undefined ? "" : similarityText(h.similarity)}</td>
              <td className="wide-only" title={r.DeviceId}>
                {nameOf(names, r.DeviceId)}
              </td>
              <td />
            </tr>
          );
        })}
      </ListTable>
      {value && value.TotalCount > value.RecordSet.length && (
        <p className="muted small">
          The newest {value.RecordSet.length} of {value.TotalCount} hits: <Link to={withQuery({ mode: "attributes", list: undefined }, "/search")}>search them</Link> by person, list or
          similarity.
        </p>
      )}
    </>
  );
}
