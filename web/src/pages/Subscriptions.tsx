import { useState } from "react";
import type { FormEvent } from "react";
import { ApiError, call } from "../api";
import { ConfirmDelete } from "../components/ConfirmDelete";
import { Field } from "../components/Field";
import { ErrorLine, ListTable } from "../components/ListTable";
import { closeForm, PageHead } from "../components/PageHead";
import { offsetOf, PAGE, Pager } from "../components/Pager";
import { FieldError, FormButtons } from "../components/FormButtons";
import { SecretOnce } from "../components/SecretOnce";
import { formErrors, noErrors } from "../errors";
import type { FormErrors } from "../errors";
import { listOf, numberOr } from "../input";
import { Link } from "../Layout";
import { navigate, useRoute, withQuery } from "../router";
import { can, useSession } from "../session";
import { utcTime } from "../time";
import { useAction } from "../useAction";
import { usePolled } from "../usePoll";

/** Filter is a subscription's filter as the actions take and answer it. */
export interface Filter {
  TaskIds: string[];
  Types: string[];
  DeviceIds: string[];
  Expression: string;
}

/** SubscriptionInfo is a subscription as DescribeSubscriptions answers it: never with its secret. */
export interface SubscriptionInfo {
  SubscriptionId: string;
  ProjectId: string;
  AppId: string;
  Name: string;
  Channel: string;
  Url?: string;
  Filter: Filter;
  MaxAttempts: number;
  MaxAge: number;
  Status: string;
  CreatedTime: string;
  UpdatedTime: string;
}

/** SubscriptionStats is DescribeSubscriptionStats' answer. */
export interface SubscriptionStats {
  SubscriptionId: string;
  Status: string;
  Delivered: number;
  Failed: number;
  Retried: number;
  DeadLettered: number;
  DeadLetterCount: number;
  AckedSeq: number;
  Lag: number;
  LastError: string;
  LastErrorTime: string;
  DeliveredBy: string;
}

/** DeadLetter is one dead-lettered event. */
export interface DeadLetter {
  Seq: number;
  EventId: string;
  Subject: string;
  Attempts: number;
  LastError: string;
  DeadTime: string;
  Replaying: boolean;
}

const LIST_REFRESH_MS = 5000;
const DETAIL_REFRESH_MS = 2000;
const COLUMNS = [{ label: "Name" }, { label: "Status" }, { label: "Channel", wide: true }, { label: "Target", wide: true },
  { label: "Delivered" }, { label: "Lag" }, { label: "Dead letters", wide: true }];

/** lagText is a lag as a person reads it: -1 means the bus cannot tell its head. */
export function lagText(lag: number | undefined): string {
  if (lag === undefined) return "—";
  return lag < 0 ? "unknown" : String(lag);
}

interface Row {
  sub: SubscriptionInfo;
  stats: SubscriptionStats | undefined;
}

async function loadRows(projectId: string, offset: number): Promise<{ total: number; rows: Row[] }> {
  const r = await call<{ TotalCount: number; SubscriptionSet: SubscriptionInfo[] }>("DescribeSubscriptions",
    { ProjectId: projectId, Offset: offset, Limit: PAGE });
  // One deleted meanwhile has no stats.
  const stats = await Promise.all(r.SubscriptionSet.map((x) =>
    call<SubscriptionStats>("DescribeSubscriptionStats", { ProjectId: x.ProjectId, SubscriptionId: x.SubscriptionId }).catch(() => undefined)));
  return { total: r.TotalCount, rows: r.SubscriptionSet.map((sub, i) => ({ sub, stats: stats[i] })) };
}

/** Subscriptions lists the project's subscriptions with their delivery and lag, creates them; ?subscription= shows one. */
export function Subscriptions() {
  const s = useSession();
  const route = useRoute();
  const projectId = s.project?.ProjectId ?? "";
  const id = route.query.get("subscription") ?? "";
  if (id) {
    return <SubscriptionDetail id={id} projectId={projectId} offset={offsetOf(route.query)}
      editing={route.query.get("edit") === "1" && can(s, "ModifySubscription")} />;
  }
  return <SubscriptionList projectId={projectId} offset={offsetOf(route.query)} adding={route.query.get("add") === "1" && can(s, "CreateSubscription")} />;
}

/** Created is what CreateSubscription answered: the webhook secret, when generated, this once. */
interface Created {
  id: string;
  secret: string;
}

function SubscriptionList(props: { projectId: string; offset: number; adding: boolean }) {
  const s = useSession();
  const { projectId, offset, adding } = props;
  const [created, setCreated] = useState<Created | null>(null);
  const { value: list, error, reload } = usePolled(() => loadRows(projectId, offset), LIST_REFRESH_MS, [projectId, offset]);
  return (
    <section aria-labelledby="page-title">
      <PageHead title="Subscriptions" add={can(s, "CreateSubscription") && !adding && "Create subscription"} />
      <p className="muted">Standing orders that deliver the project's events to applications: webhooks, gRPC and SSE streams.</p>
      {adding && (
        <SubscriptionForm projectId={projectId} onDone={(c) => {
          if (c && c.secret) setCreated(c);
          closeForm(reload)(c !== false);
        }} />
      )}
      <ErrorLine error={error} />
      <ListTable caption={`Subscriptions of project ${projectId}`} columns={COLUMNS} empty="No subscriptions yet." isEmpty={list?.rows.length === 0}>
        {list?.rows.map((r) => <SubscriptionRow key={r.sub.SubscriptionId} row={r} onChanged={reload} />)}
      </ListTable>
      <Pager label="Pages of subscriptions" offset={offset} total={list?.total ?? 0} />
      {created && (
        <SecretOnce title="The webhook's signing secret" what="webhook secret"
          values={[{ label: "SubscriptionId", value: created.id }, { label: "Webhook secret", value: created.secret }]}
          onClose={() => setCreated(null)} />
      )}
    </section>
  );
}

function SubscriptionRow(props: { row: Row; onChanged(): void }) {
  const s = useSession();
  const { sub, stats } = props.row;
  return (
    <tr data-subscription={sub.Name || sub.SubscriptionId}>
      <th scope="row">
        <Link to={withQuery({ subscription: sub.SubscriptionId, offset: undefined, add: undefined })}>{sub.Name || sub.SubscriptionId}</Link>
      </th>
      <td>
        <span className={`status status-${sub.Status}`}>{sub.Status}</span>
      </td>
      <td className="wide-only">{sub.Channel}</td>
      <td className="wide-only detail">{sub.Url ?? "—"}</td>
      <td data-testid="delivered">{stats?.Delivered ?? "—"}</td>
      <td data-testid="lag">{lagText(stats?.Lag)}</td>
      <td className="wide-only">{stats?.DeadLetterCount ?? "—"}</td>
      <td>
        <div className="row-actions">
          <PauseResume sub={sub} onChanged={props.onChanged} />
          {can(s, "DeleteSubscription") && (
            <ConfirmDelete name={sub.Name || sub.SubscriptionId} action="DeleteSubscription"
              body={{ ProjectId: sub.ProjectId, SubscriptionId: sub.SubscriptionId }} onDeleted={props.onChanged} />
          )}
        </div>
      </td>
    </tr>
  );
}

/** PauseResume pauses an active subscription and resumes a paused one. */
function PauseResume(props: { sub: SubscriptionInfo; onChanged(): void }) {
  const s = useSession();
  const { busy, error, run } = useAction();
  const paused = props.sub.Status === "paused";
  const action = paused ? "ResumeSubscription" : "PauseSubscription";
  if (!can(s, action)) return null;
  const name = props.sub.Name || props.sub.SubscriptionId;
  const go = () => run(async () => {
    await call(action, { ProjectId: props.sub.ProjectId, SubscriptionId: props.sub.SubscriptionId });
    props.onChanged();
  });
  return (
    <>
      <button type="button" className="secondary" disabled={busy} onClick={() => void go()} aria-label={`${paused ? "Resume" : "Pause"} ${name}`}>
        {paused ? "Resume" : "Pause"}
      </button>
      {error && (
        <div className="form-error" role="alert">
          {error}
        </div>
      )}
    </>
  );
}

const URL_FIELD = "Channel.Webhook.Url";
const SECRET_FIELD = "Channel.Webhook.Secret";
const FIELDS = ["Name", "Channel.Type", URL_FIELD, SECRET_FIELD, "Filter.Types", "Filter.TaskIds", "Filter.DeviceIds", "Filter.Expression",
  "MaxAttempts", "MaxAge"] as const;

/**
 * subscriptionErrors places an error of CreateSubscription or
 * ModifySubscription next to its field: ModifySubscription names the
 * webhook's fields Webhook.Url and Webhook.Secret where CreateSubscription
 * has them under Channel, and an item of a list (Filter.Types[0]) goes to
 * the list's field.
 */
export function subscriptionErrors(e: unknown): FormErrors {
  if (e instanceof ApiError && e.field) {
    const f = e.field.replace(/^Webhook\./, "Channel.Webhook.").replace(/\[\d+\]$/, "");
    if (f !== e.field) e = new ApiError(e.code, f + e.message.slice(e.field.length), e.requestId);
  }
  return formErrors(e, FIELDS);
}


interface Form {
  Name: string;
  Type: string;
  Url: string;
  Secret: string;
  Types: string;
  TaskIds: string;
  DeviceIds: string;
  Expression: string;
  MaxAttempts: string;
  MaxAge: string;
}

/**
 * SubscriptionForm creates a subscription (none given) or changes one. The
 * webhook secret is write-only: empty generates one on create (shown once)
 * and keeps the current one on edit. The URL goes through the platform's
 * outbound policy, whose refusal shows next to the URL.
 */
export function SubscriptionForm(props: { projectId: string; sub?: SubscriptionInfo; onDone(c: Created | false): void }) {
  const x = props.sub;
  const [form, setForm] = useState<Form>({
    Name: x?.Name ?? "",
    Type: x?.Channel ?? "webhook",
    Url: x?.Url ?? "",
    Secret: "",
    Types: x?.Filter.Types.join(", ") ?? "",
    TaskIds: x?.Filter.TaskIds.join(", ") ?? "",
    DeviceIds: x?.Filter.DeviceIds.join(", ") ?? "",
    Expression: x?.Filter.Expression ?? "",
    MaxAttempts: x ? String(x.MaxAttempts) : "",
    MaxAge: x ? String(x.MaxAge) : "",
  });
  const [errors, setErrors] = useState<FormErrors>(noErrors);
  const [busy, setBusy] = useState(false);
  const set = (k: keyof Form) => (v: string) => setForm((f) => ({ ...f, [k]: v }));
  const webhook = form.Type === "webhook";

  async function save(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setErrors(noErrors);
    try {
      const body: Record<string, unknown> = {
        ProjectId: x?.ProjectId ?? props.projectId,
        Name: form.Name,
        Filter: { Types: listOf(form.Types), TaskIds: listOf(form.TaskIds), DeviceIds: listOf(form.DeviceIds), Expression: form.Expression },
      };
      if (form.MaxAttempts !== "") body.MaxAttempts = numberOr(form.MaxAttempts);
      if (form.MaxAge !== "") body.MaxAge = numberOr(form.MaxAge);
      const hook: Record<string, string> = { Url: form.Url };
      if (form.Secret) hook.Secret = form.Secret;
      if (x) {
        body.SubscriptionId = x.SubscriptionId;
        if (webhook) body.Webhook = hook;
        await call("ModifySubscription", body);
        props.onDone({ id: x.SubscriptionId, secret: "" });
      } else {
        body.Channel = webhook ? { Type: "webhook", Webhook: hook } : { Type: form.Type };
        const r = await call<{ SubscriptionId: string; Secret?: string }>("CreateSubscription", body);
        props.onDone({ id: r.SubscriptionId, secret: r.Secret ?? "" });
      }
    } catch (err) {
      setErrors(subscriptionErrors(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="card" onSubmit={save} aria-labelledby="sub-form-title" noValidate>
      <h2 id="sub-form-title">{x ? `Edit subscription ${x.Name || x.SubscriptionId}` : "Create a subscription"}</h2>
      <ErrorLine error={errors.form} />
      <div className="form-grid">
        <Field label="Name" name="Name" value={form.Name} onChange={set("Name")} error={errors.fields.Name} />
        {!x && (
          <Field label="Channel" name="Channel.Type" value={form.Type} onChange={set("Type")} error={errors.fields["Channel.Type"]}
            options={["webhook", "sse", "grpc"]} hint="SSE and gRPC: the app connects with its key pair (docs/push.md)." />
        )}
      </div>
      {webhook && (
        <fieldset className="form-grid">
          <legend>Webhook</legend>
          <Field label="URL" name={URL_FIELD} value={form.Url} onChange={set("Url")} error={errors.fields[URL_FIELD]} type="url"
            required={!x} hint="POSTed each event, signed (Standard Webhooks). The outbound policy may refuse some addresses." />
          <Field label="Secret" name={SECRET_FIELD} value={form.Secret} onChange={set("Secret")} error={errors.fields[SECRET_FIELD]}
            type="password" autoComplete="new-password"
            hint={x ? "Write-only: empty keeps the current secret." : "Empty: one is generated and shown once. Or whsec_ + base64 of 24 to 64 bytes."} />
        </fieldset>
      )}
      <fieldset className="form-grid">
        <legend>Filter (empty: every event of the project)</legend>
        <Field label="Event types" name="Filter.Types" value={form.Types} onChange={set("Types")} error={errors.fields["Filter.Types"]}
          hint="Comma-separated; globs such as tianshu.face.*" />
        <Field label="Task ids" name="Filter.TaskIds" value={form.TaskIds} onChange={set("TaskIds")} error={errors.fields["Filter.TaskIds"]} />
        <Field label="Device ids" name="Filter.DeviceIds" value={form.DeviceIds} onChange={set("DeviceIds")} error={errors.fields["Filter.DeviceIds"]} />
        <Field label="Expression" name="Filter.Expression" value={form.Expression} onChange={set("Expression")}
          error={errors.fields["Filter.Expression"]} hint={'Starlark, e.g. data["Quality"] > 0.8'} />
      </fieldset>
      {webhook && (
        <fieldset className="form-grid">
          <legend>Retries</legend>
          <Field label="Max attempts" name="MaxAttempts" value={form.MaxAttempts} onChange={set("MaxAttempts")} error={errors.fields.MaxAttempts}
            type="number" hint="Before an event is dead-lettered; empty: 15." />
          <Field label="Max age (s)" name="MaxAge" value={form.MaxAge} onChange={set("MaxAge")} error={errors.fields.MaxAge}
            type="number" hint="An event still failing this long is dead-lettered; empty: 86400." />
        </fieldset>
      )}
      <FormButtons save="Save subscription" busy={busy} onCancel={() => props.onDone(false)} />
    </form>
  );
}

interface Detail {
  sub: SubscriptionInfo;
  stats: SubscriptionStats;
  dead: { TotalCount: number; DeadLetterSet: DeadLetter[] };
}

function SubscriptionDetail(props: { id: string; projectId: string; offset: number; editing: boolean }) {
  const s = useSession();
  const { value: d, error, reload } = usePolled(
    async (): Promise<Detail> => {
      const ids = { ProjectId: props.projectId, SubscriptionId: props.id };
      const [list, stats, dead] = await Promise.all([
        call<{ SubscriptionSet: SubscriptionInfo[] }>("DescribeSubscriptions", { ProjectId: props.projectId, SubscriptionIds: [props.id], Limit: 1 }),
        call<SubscriptionStats>("DescribeSubscriptionStats", ids),
        call<Detail["dead"]>("DescribeSubscriptionDeadLetters", { ...ids, Offset: props.offset, Limit: PAGE }),
      ]);
      const sub = list.SubscriptionSet[0];
      if (!sub) throw new Error(`no subscription ${props.id}`);
      return { sub, stats, dead };
    },
    DETAIL_REFRESH_MS,
    [props.id, props.projectId, props.offset],
  );
  const x = d?.sub;
  const st = d?.stats;
  const back = withQuery({ subscription: undefined, edit: undefined, offset: undefined });
  const f = x?.Filter;
  return (
    <section aria-labelledby="page-title">
      <p>
        <Link to={back}>← All subscriptions</Link>
      </p>
      <div className="page-head">
        <h1 id="page-title">Subscription {x ? x.Name || x.SubscriptionId : props.id}</h1>
        {x && (
          <div className="row-actions">
            {can(s, "ModifySubscription") && !props.editing && (
              <button type="button" className="secondary" onClick={() => navigate(withQuery({ edit: 1 }))}>
                Edit
              </button>
            )}
            <PauseResume sub={x} onChanged={reload} />
            {can(s, "DeleteSubscription") && (
              <ConfirmDelete name={x.Name || x.SubscriptionId} action="DeleteSubscription"
                body={{ ProjectId: x.ProjectId, SubscriptionId: x.SubscriptionId }} onDeleted={() => navigate(back)} />
            )}
          </div>
        )}
      </div>
      <ErrorLine error={error} />
      {x && props.editing && (
        <SubscriptionForm projectId={props.projectId} sub={x} onDone={(c) => {
          navigate(withQuery({ edit: undefined }));
          if (c) reload();
        }} />
      )}
      {x && st && d && f && (
        <>
          <div className="stats" data-testid="subscription-stats">
            <Counter label="Status" value={st.Status} testId="status" />
            <Counter label="Delivered" value={st.Delivered} testId="delivered" />
            <Counter label="Lag (events)" value={lagText(st.Lag)} testId="lag" />
            <Counter label="Failed" value={st.Failed} />
            <Counter label="Retried" value={st.Retried} />
            <Counter label="Dead letters" value={st.DeadLetterCount} testId="dead" />
            <Counter label="Acknowledged up to" value={st.AckedSeq} testId="acked" />
          </div>
          <dl className="facts card">
            <dt>Id</dt>
            <dd>{x.SubscriptionId}</dd>
            <dt>Channel</dt>
            <dd>{x.Channel}</dd>
            {x.Url && (
              <>
                <dt>URL</dt>
                <dd>{x.Url}</dd>
              </>
            )}
            <dt>App</dt>
            <dd>{x.AppId || "created in the console"}</dd>
            <dt>Filter</dt>
            <dd>
              {[f.Types.length > 0 && `types ${f.Types.join(", ")}`, f.TaskIds.length > 0 && `tasks ${f.TaskIds.join(", ")}`,
                f.DeviceIds.length > 0 && `devices ${f.DeviceIds.join(", ")}`, f.Expression && `where ${f.Expression}`].filter(Boolean).join("; ") ||
                "every event of the project"}
            </dd>
            {x.Channel === "webhook" && (
              <>
                <dt>Retries</dt>
                <dd>
                  {x.MaxAttempts === 1 ? "1 attempt" : `${x.MaxAttempts} attempts`}, at most {x.MaxAge} s
                </dd>
              </>
            )}
            <dt>Delivered by</dt>
            <dd>{st.DeliveredBy || "no replica holds it now"}</dd>
            <dt>Last error</dt>
            <dd className={st.LastError ? "form-error" : ""}>{st.LastError ? `${st.LastError} (${st.LastErrorTime})` : "none"}</dd>
            <dt>Created</dt>
            <dd>{x.CreatedTime}</dd>
          </dl>
          {can(s, "ReplaySubscription") && <Replay sub={x} deadLetters={st.DeadLetterCount} onDone={reload} />}
          <h2 className="section-title">Dead letters</h2>
          <ListTable caption="Dead-lettered events, oldest first" columns={[{ label: "Seq" }, { label: "Event", wide: true }, { label: "Attempts", wide: true },
            { label: "Last error" }, { label: "Dead since", wide: true }]} empty="No dead letters." isEmpty={d.dead.DeadLetterSet.length === 0}>
            {d.dead.DeadLetterSet.map((l) => (
              <tr key={l.Seq} data-dead-letter={l.Seq}>
                <th scope="row">{l.Seq}</th>
                <td className="detail wide-only">
                  {l.EventId}
                  <div className="muted small">{l.Subject}</div>
                </td>
                <td className="wide-only">{l.Attempts}</td>
                <td className="detail">{l.LastError}</td>
                <td className="wide-only">{l.DeadTime}</td>
                <td>{l.Replaying && <span className="status">replaying</span>}</td>
              </tr>
            ))}
          </ListTable>
          <Pager label="Pages of dead letters" offset={props.offset} total={d.dead.TotalCount} />
        </>
      )}
    </section>
  );
}

function Counter(props: { label: string; value: string | number; testId?: string }) {
  return (
    <div className="stat" data-testid={props.testId}>
      <div className="stat-value">{props.value}</div>
      <div className="stat-label">{props.label}</div>
    </div>
  );
}

type Mode = "seq" | "time" | "dead";

/** replayBody is ReplaySubscription's request for a mode; what does not parse goes as typed, for the server to name. */
export function replayBody(sub: SubscriptionInfo, mode: Mode, seq: string, time: string): Record<string, unknown> {
  const b: Record<string, unknown> = { ProjectId: sub.ProjectId, SubscriptionId: sub.SubscriptionId };
  if (mode === "seq" && seq !== "") b.StartSeq = numberOr(seq);
  if (mode === "time" && time !== "") b.StartTime = utcTime(time);
  if (mode === "dead") b.DeadLetters = true;
  return b;
}

/** Replay delivers events again from a sequence or a time, or the dead letters, after a confirmation. */
function Replay(props: { sub: SubscriptionInfo; deadLetters: number; onDone(): void }) {
  const [mode, setMode] = useState<Mode>("seq");
  const [seq, setSeq] = useState("");
  const [time, setTime] = useState("");
  const [confirming, setConfirming] = useState(false);
  const [errors, setErrors] = useState<FormErrors>(noErrors);
  const [done, setDone] = useState("");
  const [busy, setBusy] = useState(false);
  const what = mode === "seq" ? `from sequence ${seq || "?"}` : mode === "time" ? `from ${time || "?"}` : `the ${props.deadLetters} dead letters`;
  async function go() {
    setBusy(true);
    setErrors(noErrors);
    setDone("");
    try {
      const r = await call<{ DeadLetterCount: number }>("ReplaySubscription", replayBody(props.sub, mode, seq, time));
      setDone(mode === "dead" ? `${r.DeadLetterCount} dead letters queued for delivery.` : `Delivery restarts ${what}.`);
      props.onDone();
    } catch (e) {
      setErrors(formErrors(e, ["StartSeq", "StartTime", "DeadLetters"]));
    } finally {
      setBusy(false);
      setConfirming(false);
    }
  }
  function ask(e: FormEvent) {
    e.preventDefault();
    setConfirming(true);
  }
  const modes: Mode[] = props.sub.Channel === "webhook" ? ["seq", "time", "dead"] : ["seq", "time"];
  const labels: Record<Mode, string> = { seq: "From a sequence", time: "From a time", dead: "The dead letters" };
  return (
    <form className="card" onSubmit={ask} aria-labelledby="replay-title" noValidate>
      <h2 id="replay-title">Replay</h2>
      <p className="muted small">Delivers events again: the receiver gets them a second time (deduplicate by the event id).</p>
      <fieldset>
        <legend>What to deliver again</legend>
        {modes.map((m) => (
          <label key={m} className="check">
            <input type="radio" name="replay-mode" value={m} checked={mode === m} onChange={() => {
              setMode(m);
              setConfirming(false);
            }} />
            {labels[m]}
          </label>
        ))}
      </fieldset>
      <ErrorLine error={errors.form} />
      <div className="form-grid">
        {mode === "seq" && (
          <Field label="Start sequence" name="StartSeq" value={seq} onChange={setSeq} error={errors.fields.StartSeq} type="number"
            hint={'An event\'s bus sequence; see "Acknowledged up to".'} />
        )}
        {mode === "time" && (
          <Field label="Start time" name="StartTime" value={time} onChange={setTime} error={errors.fields.StartTime} type="datetime-local"
            hint="In your time zone; the first event stored at or after it." />
        )}
      </div>
      <FieldError name="DeadLetters" error={errors.fields.DeadLetters} />
      <div className="buttons">
        {!confirming && <button type="submit">Replay…</button>}
        {confirming && (
          <>
            <span role="alert">Deliver {what} again?</span>
            <button type="button" className="danger" disabled={busy} onClick={() => void go()}>
              Confirm replay
            </button>
            <button type="button" className="secondary" onClick={() => setConfirming(false)}>
              Cancel
            </button>
          </>
        )}
      </div>
      {done && (
        <p className="probe probe-ok" role="status">
          {done}
        </p>
      )}
    </form>
  );
}
