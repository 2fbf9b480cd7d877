import { useEffect, useId, useRef, useState } from "react";
import type { FormEvent, ReactNode } from "react";
import { ApiError, call } from "../api";
import { ConfirmDelete } from "../components/ConfirmDelete";
import { Field } from "../components/Field";
import { ErrorLine, ListTable } from "../components/ListTable";
import { closeForm, PageHead } from "../components/PageHead";
import { offsetOf, PAGE, Pager } from "../components/Pager";
import { describe, formErrors, noErrors } from "../errors";
import type { FormErrors } from "../errors";
import { Link } from "../Layout";
import { navigate, useRoute, withQuery } from "../router";
import { can, useSession } from "../session";
import type { Session } from "../session";
import { upload } from "../tus";
import { useAction } from "../useAction";
import { useLoad } from "../useLoad";
import { usePolled } from "../usePoll";
import { accepts, DEFAULT_SERVING, dictionaryOf, pickRuntime, servingField, ServingFields, servingOf, withRuntime } from "./serving";
import type { ServingRuntime, ServingState } from "./serving";
import { CanaryCard } from "./Canary";
import type { Canary } from "./Canary";

// Response shapes of the algorithm actions (docs/api.md, docs/algorithms.md).

export interface AlgorithmInfo {
  AlgorithmId: string;
  ProjectId: string;
  Name: string;
  Description: string;
  CurrentVersion: string;
  Canary?: Canary | null;
  Builtin: boolean;
  CreatedTime?: string;
}

export interface ContractField {
  name: string;
  type: string;
  required?: boolean;
  doc?: string;
}

export interface Definition {
  runtime: string;
  protocol?: string;
  endpoints?: string[];
  package?: string;
  image?: string;
  replicas?: number;
  timeout?: string;
  contract?: { inputs?: ContractField[] | null; outputs?: ContractField[] | null; batch?: boolean };
}

export interface VersionInfo {
  AlgorithmId: string;
  Version: string;
  DesiredState: string;
  Definition: Definition;
  CreatedTime?: string;
}

export interface InstanceInfo {
  Version: string;
  InstanceId: string;
  Address: string;
  Status: string;
  Since: string;
  Restarts: number;
  LastError: string;
  Pid: number;
  Gpus: number[];
  Outstanding: number;
  Breaker: string;
  LogLines: string[];
  /** the cluster's replicas of a container version (Kubernetes), absent for other runtimes */
  Replicas?: ReplicaStatus;
}

/** ReplicaStatus is what the cluster reports of a container version's replicas. */
export interface ReplicaStatus {
  Desired: number;
  Updated: number;
  Ready: number;
  Available: number;
  Message?: string;
}

/** replicasText says a container version's replicas in one line, e.g. "1 of 2 ready (2 updated, 1 available)". */
export function replicasText(r: ReplicaStatus): string {
  return `${r.Ready} of ${r.Desired} ready (${r.Updated} updated, ${r.Available} available)`;
}

/** DetectedObject is an item of an output of type objects: a box in pixels of the image sent. */
export interface DetectedObject {
  box: [number, number, number, number];
  label?: string;
  score?: number;
  attributes?: Record<string, unknown>;
}

const REFRESH_MS = 2000;
const LIST_REFRESH_MS = 5000;
const COLUMNS = [{ label: "Name" }, { label: "Current version" }, { label: "Kind", wide: true }, { label: "Created", wide: true }];
const MAX_IMAGE = 3 << 20; // InvokeAlgorithm takes up to 4 MiB of base64
const PROTOCOLS = ["tianshu-v1", "oip-v2", "http-mapped"];
const DEFAULT_INPUTS = '[{"name": "image", "type": "image", "required": true}]';
const DEFAULT_OUTPUTS = '[{"name": "objects", "type": "objects"}]';

/** Runtime is a runtime a version may name, with why a person may or may not pick it. */
export interface Runtime {
  name: string;
  label: string;
  hint: string;
}

/**
 * runtimes are the runtimes the server offers this person: endpoint always;
 * process (a package the server runs) to platform admins only, as the server
 * refuses it to others; container is recorded but not run yet.
 */
export function runtimes(s: Pick<Session, "me">): Runtime[] {
  const out: Runtime[] = [{ name: "endpoint", label: "Endpoint (a running service)", hint: "Base URLs of the service, one instance each, one per line." }];
  if (s.me.PlatformAdmin) {
    out.push({ name: "process", label: "Package (the platform runs it)",
      hint: "A .tar.gz or .zip with manifest.json at its root; its command must be under a directory the operator allowed (--exec.allow)." });
    out.push({ name: "model", label: "Model file (a serving runtime runs it)",
      hint: "An .onnx file and how to feed it an image and read its output; no code. Runs as a process version (protocol oip-v2)." });
  }
  out.push({ name: "container", label: "Container image", hint: "Recorded with the version; running containers needs Kubernetes, which this server does not offer yet." });
  return out;
}

/** Algorithms lists the project's algorithms and onboards new ones; ?algorithm= opens one. */
export function Algorithms() {
  const s = useSession();
  const route = useRoute();
  const projectId = s.project?.ProjectId ?? "";
  const algId = route.query.get("algorithm") ?? "";
  if (algId) return <AlgorithmDetail algorithmId={algId} projectId={projectId} />;
  return <AlgorithmList projectId={projectId} offset={offsetOf(route.query)} adding={route.query.get("add") === "1" && can(s, "CreateAlgorithm")} />;
}

function AlgorithmList(props: { projectId: string; offset: number; adding: boolean }) {
  const s = useSession();
  const { projectId, offset, adding } = props;
  const { value: list, error, reload } = usePolled(
    () => call<{ TotalCount: number; AlgorithmSet: AlgorithmInfo[] }>("DescribeAlgorithms", { ProjectId: projectId, Offset: offset, Limit: PAGE }),
    LIST_REFRESH_MS,
    [projectId, offset],
  );
  return (
    <section aria-labelledby="page-title">
      <PageHead title="Algorithms" add={can(s, "CreateAlgorithm") && can(s, "CreateAlgorithmVersion") && !adding && "Onboard algorithm"} />
      {adding && (
        <VersionForm projectId={projectId} onDone={(id) => (id ? navigate(withQuery({ add: undefined, offset: undefined, algorithm: id })) : closeForm(reload)(false))} />
      )}
      <ErrorLine error={error} />
      <ListTable caption={`Algorithms of project ${projectId}`} columns={COLUMNS} empty="No algorithms yet." isEmpty={list?.AlgorithmSet.length === 0}>
        {list?.AlgorithmSet.map((a) => (
          <tr key={a.AlgorithmId} data-algorithm={a.Name}>
            <th scope="row">
              <Link to={withQuery({ algorithm: a.AlgorithmId, offset: undefined, add: undefined })}>{a.Name}</Link>
              {a.Description && <div className="muted small">{a.Description}</div>}
            </th>
            <td>{a.CurrentVersion || "—"}</td>
            <td className="wide-only">{a.Builtin ? "built in" : a.ProjectId}</td>
            <td className="wide-only">{a.CreatedTime ? new Date(a.CreatedTime).toLocaleString() : "—"}</td>
            <td>
              <div className="row-actions">
                {can(s, "DeleteAlgorithm") && !a.Builtin && (
                  <ConfirmDelete name={a.Name} action="DeleteAlgorithm" body={{ AlgorithmId: a.AlgorithmId }} onDeleted={reload} />
                )}
              </div>
            </td>
          </tr>
        ))}
      </ListTable>
      <Pager label="Pages of algorithms" offset={offset} total={list?.TotalCount ?? 0} />
    </section>
  );
}

interface Detail {
  alg: AlgorithmInfo;
  versions: VersionInfo[];
  instances: InstanceInfo[];
}

async function loadDetail(id: string): Promise<Detail> {
  const [list, versions, instances] = await Promise.all([
    call<{ AlgorithmSet: AlgorithmInfo[] }>("DescribeAlgorithms", { AlgorithmIds: [id], Limit: 1 }),
    call<{ VersionSet: VersionInfo[] }>("DescribeAlgorithmVersions", { AlgorithmId: id }),
    call<{ InstanceSet: InstanceInfo[] }>("DescribeAlgorithmInstances", { AlgorithmId: id }),
  ]);
  const alg = list.AlgorithmSet[0];
  if (!alg) throw new Error(`no algorithm ${id}`);
  return { alg, versions: versions.VersionSet, instances: instances.InstanceSet };
}

function AlgorithmDetail(props: { algorithmId: string; projectId: string }) {
  const s = useSession();
  const route = useRoute();
  const id = props.algorithmId;
  const { value: d, error, reload } = usePolled(() => loadDetail(id), REFRESH_MS, [id]);
  const adding = route.query.get("add") === "1" && can(s, "CreateAlgorithmVersion") && d !== null && !d.alg.Builtin;
  const trying = route.query.get("try");
  const a = d?.alg;
  return (
    <section aria-labelledby="page-title">
      <p>
        <Link to={withQuery({ algorithm: undefined, add: undefined, try: undefined })}>← All algorithms</Link>
      </p>
      <PageHead title={`Algorithm ${a?.Name ?? id}`} add={can(s, "CreateAlgorithmVersion") && !!a && !a.Builtin && !adding && "Add version"} />
      <ErrorLine error={error} />
      {adding && a && <VersionForm projectId={a.ProjectId} algorithm={a} onDone={(changed) => closeForm(reload)(changed !== false)} />}
      {a && d && (
        <>
          <dl className="facts card">
            <dt>Id</dt>
            <dd>{a.AlgorithmId}</dd>
            <dt>Project</dt>
            <dd>{a.Builtin ? "built in (every project)" : a.ProjectId}</dd>
            <dt>Current version</dt>
            <dd>{a.CurrentVersion || "—"}</dd>
            {a.Description && (
              <>
                <dt>Description</dt>
                <dd>{a.Description}</dd>
              </>
            )}
          </dl>
          {!a.Builtin && (
            <CanaryCard key={JSON.stringify(a.Canary ?? null) + a.CurrentVersion} algorithmId={a.AlgorithmId} current={a.CurrentVersion} canary={a.Canary}
              versions={d.versions.map((v) => v.Version)} onChanged={reload} />
          )}
          {trying !== null && can(s, "InvokeAlgorithm") && (
            <TryIt algorithmId={a.AlgorithmId} versions={d.versions} version={trying || a.CurrentVersion} />
          )}
          <h2 className="section-title">Versions</h2>
          {d.versions.length === 0 && <p>No versions yet.</p>}
          {d.versions.map((v) => (
            <VersionCard key={v.Version} v={v} builtin={a.Builtin} onChanged={reload} />
          ))}
          <h2 className="section-title">Instances</h2>
          <p className="muted small">The instances of the process that answered, refreshed every {REFRESH_MS / 1000} s.</p>
          <Instances instances={d.instances} />
        </>
      )}
    </section>
  );
}

function ContractTable(props: { title: string; fields: ContractField[] | null | undefined }) {
  const fields = props.fields ?? [];
  return (
    <div className="table-wrap">
      <table>
        <caption>{props.title}</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Type</th>
            <th scope="col">Required</th>
          </tr>
        </thead>
        <tbody>
          {fields.map((f) => (
            <tr key={f.name}>
              <th scope="row">
                {f.name}
                {f.doc && <div className="muted small">{f.doc}</div>}
              </th>
              <td>{f.type}</td>
              <td>{f.required ? "yes" : "no"}</td>
            </tr>
          ))}
          {fields.length === 0 && (
            <tr>
              <td colSpan={3}>None declared.</td>
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}

function VersionCard(props: { v: VersionInfo; builtin: boolean; onChanged(): void }) {
  const s = useSession();
  const { busy, error, run } = useAction();
  const v = props.v;
  const def = v.Definition;
  const running = v.DesiredState === "running";
  const action = running ? "StopAlgorithmVersion" : "StartAlgorithmVersion";
  const verb = running ? "Stop" : "Start";
  const where = def.runtime === "endpoint" ? (def.endpoints ?? []).join(", ") : def.runtime === "container" ? def.image : def.package;
  return (
    <article className="card version" data-version={v.Version} aria-label={`Version ${v.Version}`}>
      <div className="page-head">
        <h3>
          Version {v.Version}{" "}
          <span className={`status status-${v.DesiredState}`} data-testid="version-state">
            {v.DesiredState || "—"}
          </span>
        </h3>
        <div className="row-actions">
          {can(s, "InvokeAlgorithm") && <Link to={withQuery({ try: v.Version, add: undefined })}>Try it</Link>}
          {!props.builtin && can(s, action) && (
            <button type="button" className="secondary" disabled={busy} aria-label={`${verb} version ${v.Version}`}
              onClick={() => void run(async () => {
                await call(action, { AlgorithmId: v.AlgorithmId, Version: v.Version });
                props.onChanged();
              })}>
              {verb}
            </button>
          )}
        </div>
      </div>
      <ErrorLine error={error} />
      <dl className="facts">
        <dt>Runtime</dt>
        <dd>{def.runtime}</dd>
        {def.protocol && (
          <>
            <dt>Protocol</dt>
            <dd>{def.protocol}</dd>
          </>
        )}
        {where && (
          <>
            <dt>{def.runtime === "endpoint" ? "Endpoints" : def.runtime === "container" ? "Image" : "Package"}</dt>
            <dd className="detail">{where}</dd>
          </>
        )}
        {def.replicas !== undefined && def.replicas > 0 && (
          <>
            <dt>Replicas</dt>
            <dd>{def.replicas}</dd>
          </>
        )}
        {def.timeout && (
          <>
            <dt>Timeout</dt>
            <dd>{def.timeout}</dd>
          </>
        )}
      </dl>
      <div className="contract" data-testid="contract">
        <ContractTable title="Inputs" fields={def.contract?.inputs} />
        <ContractTable title="Outputs" fields={def.contract?.outputs} />
      </div>
    </article>
  );
}

function Instances(props: { instances: InstanceInfo[] }) {
  if (props.instances.length === 0) return <p>No instances run here.</p>;
  return (
    <>
      {props.instances.map((i) => (
        <article key={i.InstanceId} className="card instance" data-instance={i.InstanceId} aria-label={`Instance ${i.InstanceId}`}>
          <dl className="facts">
            <dt>Instance</dt>
            <dd>
              {i.InstanceId} <span className="muted small">version {i.Version}</span>
            </dd>
            <dt>Health</dt>
            <dd>
              <span className={`status status-${i.Status}`} data-testid="instance-status">
                {i.Status}
              </span>{" "}
              {i.Breaker && i.Breaker !== "closed" && <span className="muted small">breaker {i.Breaker}</span>}
              <span className="muted small"> since {new Date(i.Since).toLocaleTimeString()}</span>
            </dd>
            <dt>Restarts</dt>
            <dd data-testid="instance-restarts">{i.Restarts}</dd>
            <dt>Address</dt>
            <dd className="detail">
              {i.Address || "—"}
              {i.Pid > 0 && <span className="muted small"> pid {i.Pid}</span>}
              {i.Gpus.length > 0 && <span className="muted small"> GPUs {i.Gpus.join(", ")}</span>}
            </dd>
            {i.Replicas && (
              <>
                <dt>Replicas</dt>
                <dd data-testid="instance-replicas">
                  {replicasText(i.Replicas)}
                  {i.Replicas.Message && <span className="form-error detail"> {i.Replicas.Message}</span>}
                </dd>
              </>
            )}
            <dt>Calls in flight</dt>
            <dd>{i.Outstanding}</dd>
            {i.LastError && (
              <>
                <dt>Last error</dt>
                <dd className="form-error detail">{i.LastError}</dd>
              </>
            )}
          </dl>
          <details open={i.LogLines.length > 0}>
            <summary>Recent log lines ({i.LogLines.length})</summary>
            <pre className="json logs" data-testid="instance-logs" tabIndex={0} aria-label={`Log lines of ${i.InstanceId}`}>
              {i.LogLines.slice(-50).join("\n") || "No output yet."}
            </pre>
          </details>
        </article>
      ))}
    </>
  );
}

/** TextArea is a labelled multi-line input with the server's error beside it, as Field is for one line. */
function TextArea(p: { label: string; name: string; value: string; onChange(v: string): void; error?: string | undefined; hint?: ReactNode; rows?: number }) {
  const id = useId();
  const described = [p.error ? `${id}-error` : "", p.hint ? `${id}-hint` : ""].filter(Boolean).join(" ") || undefined;
  return (
    <div className={p.error ? "field field-invalid" : "field"}>
      <label htmlFor={id}>{p.label}</label>
      <textarea id={id} name={p.name} value={p.value} rows={p.rows ?? 3} spellCheck={false} aria-invalid={p.error ? true : undefined}
        aria-describedby={described} onChange={(e) => p.onChange(e.target.value)} />
      {p.hint && (
        <div className="field-hint" id={`${id}-hint`}>
          {p.hint}
        </div>
      )}
      {p.error && (
        <div className="field-error" id={`${id}-error`} role="alert" data-field-error={p.name}>
          {p.error}
        </div>
      )}
    </div>
  );
}

interface VersionFormState {
  Name: string;
  Description: string;
  runtime: string;
  protocol: string;
  endpoints: string;
  image: string;
  inputs: string;
  outputs: string;
  timeout: string;
  replicas: string;
  Start: boolean;
}

// The fields of the form, as the server names them in its errors (Definition. dropped).
const FORM_FIELDS = ["Name", "Description", "PackageUploadId", "ModelUploadId", "RecognitionModelUploadId", "runtime", "protocol", "endpoints", "image", "contract", "timeout", "replicas"];

/** definitionOf builds a version's Definition from the form; contract text that is not JSON is refused before anything is sent. */
export function definitionOf(f: VersionFormState, serving?: ServingState, characters: string[] = []): { def: Record<string, unknown>; errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  if (f.runtime === "model") {
    // runtime, protocol and contract are the server's to fill in from the descriptor and the model.
    const s = servingOf(serving ?? DEFAULT_SERVING, characters);
    const def: Record<string, unknown> = { serving: s.serving };
    if (f.replicas.trim()) def.replicas = Number(f.replicas);
    if (f.timeout.trim()) def.timeout = f.timeout.trim();
    return { def, errors: s.errors };
  }
  const list = (text: string, field: string): unknown => {
    try {
      return JSON.parse(text || "[]") as unknown;
    } catch (e) {
      errors[field] = `not JSON: ${e instanceof Error ? e.message : String(e)}`;
      return [];
    }
  };
  const def: Record<string, unknown> = {
    runtime: f.runtime,
    protocol: f.protocol,
    contract: { inputs: list(f.inputs, "inputs"), outputs: list(f.outputs, "outputs") },
  };
  if (f.runtime === "endpoint") def.endpoints = f.endpoints.split(/[\s,]+/).filter(Boolean);
  if (f.runtime === "container") def.image = f.image.trim();
  if (f.runtime === "process" && f.replicas.trim()) def.replicas = Number(f.replicas);
  if (f.timeout.trim()) def.timeout = f.timeout.trim();
  return { def, errors };
}

/** placeError puts an error of CreateAlgorithm or CreateAlgorithmVersion next to its field: contract errors keep their path. */
export function placeError(e: unknown): FormErrors {
  if (e instanceof ApiError && e.field?.startsWith("Definition.serving")) {
    const f = servingField(e.field.slice("Definition.".length));
    if (f) return { fields: { [f]: e.field === `Definition.${f}` ? e.detail : `${e.field.slice(`Definition.${f}`.length).replace(/^\./, "")}: ${e.detail}` } };
  }
  if (e instanceof ApiError && e.field?.startsWith("Definition.contract.")) {
    const rest = e.field.slice("Definition.contract.".length);
    const side = rest.startsWith("outputs") ? "outputs" : "inputs";
    return { fields: { [side]: `${rest}: ${e.detail}` } };
  }
  return formErrors(e, FORM_FIELDS, "Definition.");
}

/** Progress is an upload's progress: bytes sent of all. */
interface Progress {
  sent: number;
  total: number;
  field?: string;
}

/**
 * VersionForm onboards: with algorithm unset it creates an algorithm and its
 * first version, else a new version of algorithm. A package, or a model
 * file with its serving descriptor, is uploaded with tus first, its
 * progress shown; what was created or uploaded is kept, so
 * sending again after fixing a field repeats neither.
 */
export function VersionForm(props: { projectId: string; algorithm?: AlgorithmInfo; onDone(algorithmId: string | false): void }) {
  const s = useSession();
  const offered = runtimes(s);
  const [form, setForm] = useState<VersionFormState>({
    Name: "", Description: "", runtime: offered.find((r) => r.name === "process")?.name ?? "endpoint", protocol: "tianshu-v1",
    endpoints: "", image: "", inputs: DEFAULT_INPUTS, outputs: DEFAULT_OUTPUTS, timeout: "", replicas: "1", Start: true,
  });
  const [serving, setServing] = useState<ServingState>(DEFAULT_SERVING);
  const [files, setFiles] = useState<Partial<Record<UploadField, File>>>({});
  const [progress, setProgress] = useState<Progress | null>(null);
  const [errors, setErrors] = useState<FormErrors>(noErrors);
  const [busy, setBusy] = useState(false);
  const created = useRef<string>(props.algorithm?.AlgorithmId ?? "");
  const uploaded = useRef<Partial<Record<UploadField, { file: File; id: string }>>>({});
  const set = <K extends keyof VersionFormState>(k: K) => (v: VersionFormState[K]) => setForm((f) => ({ ...f, [k]: v }));
  const runtime = offered.find((r) => r.name === form.runtime);
  const fileId = useId();
  const model = form.runtime === "model";
  const ocr = model && serving.kind === "ocr";
  // The serving runtimes come from the server, with whether this node runs each.
  const [servingRuntimes, setServingRuntimes] = useState<ServingRuntime[] | null>(null);
  useLoad(
    () => (model && !servingRuntimes ? call<{ RuntimeSet: ServingRuntime[] }>("DescribeServingRuntimes", {}) : null),
    (r) => {
      setServingRuntimes(r.RuntimeSet);
      setServing((sv) => withRuntime(sv, r.RuntimeSet, pickRuntime(r.RuntimeSet, sv.runtime)));
    },
    (err) => setErrors({ fields: { "serving.runtime": err instanceof ApiError ? describe(err) : String(err) } }),
    [model],
  );
  const modelAccept = accepts(servingRuntimes?.find((r) => r.Name === serving.runtime)) || ".onnx";
  const pickFile = (field: UploadField) => (f: File | null) => {
    setFiles((fs) => ({ ...fs, [field]: f ?? undefined }));
    setProgress(null);
  };

  async function save(e: FormEvent) {
    e.preventDefault();
    setErrors(noErrors);
    // The files this version needs, as the fields the server names in its errors.
    const need: [UploadField, string][] = form.runtime === "process" ? [["PackageUploadId", "choose the package file"]]
      : model ? [["ModelUploadId", "choose the model file"], ...(ocr ? [["RecognitionModelUploadId", "choose the recognition model file"] as [UploadField, string]] : [])]
      : [];
    const local: Record<string, string> = {};
    let characters: string[] = [];
    if (ocr) {
      const dict = files.dictionary;
      if (dict) characters = dictionaryOf(await dict.text());
      else local["serving.recognition.characters"] = "choose the dictionary file";
    }
    const built = definitionOf(form, serving, characters);
    Object.assign(local, built.errors);
    for (const [field, msg] of need) if (!files[field]) local[field] = msg;
    if (Object.keys(local).length > 0) {
      setErrors({ fields: local });
      return;
    }
    setBusy(true);
    try {
      if (!created.current) {
        const r = await call<{ AlgorithmId: string }>("CreateAlgorithm", { ProjectId: props.projectId, Name: form.Name, Description: form.Description });
        created.current = r.AlgorithmId;
      }
      const body: Record<string, unknown> = { AlgorithmId: created.current, Definition: built.def, Start: form.Start };
      for (const [field] of need) {
        const file = files[field];
        if (!file) continue;
        let done = uploaded.current[field];
        if (done?.file !== file) {
          try {
            done = { file, id: await uploadFile(props.projectId, file, (p) => setProgress({ ...p, field })) };
          } catch (err) {
            setErrors({ fields: { [field]: err instanceof ApiError ? describe(err) : String(err instanceof Error ? err.message : err) } });
            return;
          }
          uploaded.current[field] = done;
        }
        body[field] = done.id;
      }
      await call("CreateAlgorithmVersion", body);
      props.onDone(created.current);
    } catch (err) {
      setErrors(placeError(err));
    } finally {
      setBusy(false);
    }
  }

  const pct = progress && progress.total > 0 ? Math.floor((100 * progress.sent) / progress.total) : 0;
  const title = props.algorithm ? `Add a version to ${props.algorithm.Name}` : "Onboard an algorithm";
  const fileField = (field: UploadField, label: string, accept: string, empty: string) => (
    <FileField key={field} field={field} label={label} accept={accept} empty={empty} file={files[field] ?? null} onFile={pickFile(field)}
      progress={progress?.field === field ? progress : null} error={errors.fields[field === "dictionary" ? "serving.recognition.characters" : field]} />
  );
  return (
    <form className="card" onSubmit={save} aria-labelledby="onboard-title" noValidate>
      <h2 id="onboard-title">{title}</h2>
      <ErrorLine error={errors.form} />
      <div className="form-grid">
        {!props.algorithm && (
          <>
            <Field label="Name" name="Name" value={form.Name} onChange={set("Name")} error={errors.fields.Name} required />
            <Field label="Description" name="Description" value={form.Description} onChange={set("Description")} error={errors.fields.Description} />
          </>
        )}
        <div className={errors.fields.runtime ? "field field-invalid" : "field"}>
          <label htmlFor={`${fileId}-runtime`}>Runtime</label>
          <select id={`${fileId}-runtime`} name="runtime" value={form.runtime} onChange={(e) => set("runtime")(e.target.value)}
            aria-describedby={`${fileId}-runtime-hint`}>
            {offered.map((r) => (
              <option key={r.name} value={r.name}>
                {r.label}
              </option>
            ))}
          </select>
          <div className="field-hint" id={`${fileId}-runtime-hint`}>
            {runtime?.hint}
          </div>
          {errors.fields.runtime && (
            <div className="field-error" role="alert" data-field-error="runtime">
              {errors.fields.runtime}
            </div>
          )}
        </div>
        {!model && (
          <Field label="Protocol" name="protocol" value={form.protocol} onChange={set("protocol")} error={errors.fields.protocol} options={PROTOCOLS}
            hint="tianshu-v1: image bytes in, JSON out; oip-v2: KServe/Triton; http-mapped: any HTTP API through scripts." />
        )}
        {form.runtime === "endpoint" && (
          <TextArea label="Endpoints" name="endpoints" value={form.endpoints} onChange={set("endpoints")} error={errors.fields.endpoints}
            hint="e.g. http://10.0.0.5:8080" rows={2} />
        )}
        {form.runtime === "container" && (
          <Field label="Image" name="image" value={form.image} onChange={set("image")} error={errors.fields.image} hint="e.g. registry.example.com/plates:1.2" />
        )}
        {form.runtime === "process" && fileField("PackageUploadId", "Package", ".tar.gz,.tgz,.zip,application/gzip,application/zip", "A .tar.gz or .zip with manifest.json at its root.")}
        {model && fileField("ModelUploadId", "Model file", modelAccept, ocr ? "The text detector's .onnx file." : "An .onnx file, up to 2 GiB.")}
        {(form.runtime === "process" || model) && (
          <Field label="Replicas" name="replicas" value={form.replicas} onChange={set("replicas")} error={errors.fields.replicas} type="number" />
        )}
        <Field label="Timeout" name="timeout" value={form.timeout} onChange={set("timeout")} error={errors.fields.timeout} hint="Per call, e.g. 2s; empty: the default." />
      </div>
      {model ? (
        <ServingFields value={serving} onChange={setServing} errors={errors.fields} runtimes={servingRuntimes} extra={
          <>
            {fileField("RecognitionModelUploadId", "Recognition model file", modelAccept, "The CTC text recognizer's .onnx file.")}
            {fileField("dictionary", "Dictionary", ".txt,text/plain", "The recognizer's characters, one a line (PaddleOCR: ppocr_keys_v1.txt).")}
            <label className="check">
              <input type="checkbox" checked={serving.space} onChange={(e) => setServing({ ...serving, space: e.target.checked })} /> Add a space as the last
              character (PaddleOCR)
            </label>
          </>
        } />
      ) : (
        <fieldset className="form-grid">
          <legend>Contract</legend>
          <TextArea label="Inputs" name="inputs" value={form.inputs} onChange={set("inputs")} error={errors.fields.inputs ?? errors.fields.contract}
            hint="JSON: [{name, type, required}]; types image, objects, embedding, text, json, number, integer, bool, object, list." />
          <TextArea label="Outputs" name="outputs" value={form.outputs} onChange={set("outputs")} error={errors.fields.outputs} />
        </fieldset>
      )}
      <label className="check">
        <input type="checkbox" checked={form.Start} onChange={(e) => set("Start")(e.target.checked)} /> Start it now
      </label>
      <div className="buttons">
        <button type="submit" disabled={busy}>
          {!busy ? "Save" : progress && pct < 100 ? `Uploading… ${pct}%` : "Saving…"}
        </button>
        <button type="button" className="secondary" onClick={() => props.onDone(created.current && !props.algorithm ? created.current : false)}>
          Cancel
        </button>
      </div>
    </form>
  );
}

/** UploadField is a file of the form: those the server takes as uploads by the field's name, and the OCR dictionary read here. */
type UploadField = "PackageUploadId" | "ModelUploadId" | "RecognitionModelUploadId" | "dictionary";

/** FileField is a file input with the upload's progress under it and the server's error for it. */
function FileField(p: { field: UploadField; label: string; accept: string; empty: string; file: File | null; onFile(f: File | null): void;
  progress: Progress | null; error: string | undefined }) {
  const id = useId();
  const pct = p.progress && p.progress.total > 0 ? Math.floor((100 * p.progress.sent) / p.progress.total) : 0;
  return (
    <div className={p.error ? "field field-invalid" : "field"}>
      <label htmlFor={id}>{p.label}</label>
      <input id={id} type="file" name={p.field} accept={p.accept} aria-invalid={p.error ? true : undefined}
        aria-describedby={p.error ? `${id}-error` : `${id}-progress`} onChange={(e) => p.onFile(e.target.files?.[0] ?? null)} />
      <div className="field-hint" id={`${id}-progress`}>
        {p.progress ? (
          <span className="upload">
            <progress max={p.progress.total} value={p.progress.sent} aria-label={`${p.label} upload`} data-testid="upload-progress" />{" "}
            <span data-testid="upload-percent">{pct}%</span> · {bytes(p.progress.sent)} of {bytes(p.progress.total)}
          </span>
        ) : p.file ? (
          p.field === "dictionary" ? `${p.file.name}, ${bytes(p.file.size)}; read when saved.` : `${p.file.name}, ${bytes(p.file.size)}; uploaded in resumable chunks when saved.`
        ) : (
          p.empty
        )}
      </div>
      {p.error && (
        <div className="field-error" id={`${id}-error`} role="alert" data-field-error={p.field}>
          {p.error}
        </div>
      )}
    </div>
  );
}

async function uploadFile(projectId: string, file: File, onProgress: (p: Progress) => void): Promise<string> {
  const t = await call<{ Token: string; Endpoint: string }>("CreateUploadToken", { ProjectId: projectId, MaxSize: file.size });
  return upload({
    endpoint: t.Endpoint || "/files/", token: t.Token, file, name: file.name, scope: projectId,
    onProgress: (sent, total) => onProgress({ sent, total }),
  });
}

/** bytes is a size as a person reads it. */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

/** objectsOf finds the boxes in a version's outputs: every output that is a list of {box: [x, y, w, h]}. */
export function objectsOf(outputs: Record<string, unknown>): DetectedObject[] {
  const out: DetectedObject[] = [];
  for (const v of Object.values(outputs)) {
    if (!Array.isArray(v)) continue;
    for (const o of v as unknown[]) {
      const box = (o as { box?: unknown } | null)?.box;
      if (Array.isArray(box) && box.length === 4 && box.every((x) => typeof x === "number")) out.push(o as DetectedObject);
    }
  }
  return out;
}

/** caption is what is written by a box: its label, score and scalar attributes. */
export function caption(o: DetectedObject): string {
  const parts = [o.label ?? "object"];
  if (typeof o.score === "number") parts.push(o.score.toFixed(2));
  for (const [k, v] of Object.entries(o.attributes ?? {})) {
    if (typeof v === "string" || (typeof v === "number" && !k.endsWith("Score"))) parts.push(`${k} ${typeof v === "number" ? Math.round(v * 100) / 100 : v}`);
  }
  return parts.join(" · ");
}

function base64(buf: ArrayBuffer): string {
  const b = new Uint8Array(buf);
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

interface TryResult {
  outputs: Record<string, unknown>;
  durationUs: number;
  objects: DetectedObject[];
}

/** TryIt calls a version on an image a person picks and draws the boxes of its outputs over the image. */
function TryIt(props: { algorithmId: string; versions: VersionInfo[]; version: string }) {
  const [file, setFile] = useState<File | null>(null);
  const [result, setResult] = useState<TryResult | null>(null);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const canvas = useRef<HTMLCanvasElement>(null);
  const id = useId();

  // The image is drawn when chosen, and again with the boxes when a result comes.
  useEffect(() => {
    const c = canvas.current;
    if (!file || !c) return;
    let stale = false;
    void createImageBitmap(file).then(
      (img) => {
        if (stale) return;
        c.width = img.width;
        c.height = img.height;
        const g = c.getContext("2d");
        if (!g) return;
        g.drawImage(img, 0, 0);
        const objs = result?.objects ?? [];
        const line = Math.max(2, Math.round(img.width / 300));
        g.lineWidth = line;
        g.font = `${Math.max(12, Math.round(img.width / 45))}px sans-serif`;
        g.textBaseline = "top";
        for (const o of objs) {
          const [x, y, w, h] = o.box;
          g.strokeStyle = "#22c55e";
          // Inside the box, so that a box as big as the image still shows.
          g.strokeRect(x + line / 2, y + line / 2, Math.max(0, w - line), Math.max(0, h - line));
          const text = caption(o);
          const tw = g.measureText(text).width + 8;
          const th = parseInt(g.font, 10) + 6;
          const ty = y >= th ? y - th : y;
          g.fillStyle = "rgba(0, 0, 0, 0.7)";
          g.fillRect(x, ty, Math.min(tw, img.width - x), th);
          g.fillStyle = "#fff";
          g.fillText(text, x + 4, ty + 3);
        }
        c.dataset.boxes = String(objs.length);
        c.dataset.drawn = result ? "result" : "image";
        img.close();
      },
      (e: unknown) => !stale && setError(`the image cannot be read: ${String(e)}`),
    );
    return () => void (stale = true);
  }, [file, result]);

  async function run(e: FormEvent) {
    e.preventDefault();
    if (!file) {
      setError("Image: choose an image");
      return;
    }
    if (file.size > MAX_IMAGE) {
      setError(`Image: ${bytes(file.size)} is over the ${bytes(MAX_IMAGE)} a call takes`);
      return;
    }
    setBusy(true);
    setError("");
    setResult(null);
    try {
      const r = await call<{ Outputs: Record<string, unknown>; DurationUs: number }>("InvokeAlgorithm", {
        AlgorithmId: props.algorithmId, Version: props.version, Image: base64(await file.arrayBuffer()),
      });
      const outputs = r.Outputs ?? {};
      setResult({ outputs, durationUs: r.DurationUs, objects: objectsOf(outputs) });
    } catch (err) {
      setError(describe(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="card try" onSubmit={run} aria-labelledby={`${id}-title`}>
      <div className="page-head">
        <h2 id={`${id}-title`}>Try version {props.version}</h2>
        <Link to={withQuery({ try: undefined })}>Close</Link>
      </div>
      <div className="form-grid">
        <div className="field">
          <label htmlFor={`${id}-version`}>Version</label>
          <select id={`${id}-version`} value={props.version} onChange={(e) => navigate(withQuery({ try: e.target.value }), true)}>
            {props.versions.map((v) => (
              <option key={v.Version} value={v.Version}>
                {v.Version} ({v.DesiredState})
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor={`${id}-image`}>Image</label>
          <input id={`${id}-image`} type="file" accept="image/jpeg,image/png" onChange={(e) => {
            setFile(e.target.files?.[0] ?? null);
            setResult(null);
            setError("");
          }} />
          <div className="field-hint">A JPEG or PNG, up to {bytes(MAX_IMAGE)}.</div>
        </div>
      </div>
      <ErrorLine error={error} />
      <div className="buttons">
        <button type="submit" disabled={busy || !file}>
          {busy ? "Running…" : "Run"}
        </button>
      </div>
      <div className="try-result">
        {file && <canvas ref={canvas} className="try-canvas" data-testid="try-canvas" aria-label={result ? `The image with ${result.objects.length} boxes drawn` : "The image"} />}
        {result && (
          <div>
            <p data-testid="try-summary">
              {result.objects.length} {result.objects.length === 1 ? "object" : "objects"} in {(result.durationUs / 1000).toFixed(1)} ms
            </p>
            <pre className="json" data-testid="try-json" tabIndex={0} aria-label="Outputs as JSON">
              {JSON.stringify(result.outputs, null, 2)}
            </pre>
          </div>
        )}
      </div>
    </form>
  );
}
