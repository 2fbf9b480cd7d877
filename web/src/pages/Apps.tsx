import { useState } from "react";
import type { FormEvent } from "react";
import { call } from "../api";
import { ConfirmDelete } from "../components/ConfirmDelete";
import { Field } from "../components/Field";
import { ErrorLine, ListTable } from "../components/ListTable";
import { closeForm, PageHead } from "../components/PageHead";
import { offsetOf, PAGE, Pager } from "../components/Pager";
import { FieldError, FormButtons } from "../components/FormButtons";
import { SecretOnce } from "../components/SecretOnce";
import { describe, formErrors, noErrors } from "../errors";
import type { FormErrors } from "../errors";
import { numberOr } from "../input";
import { Link } from "../Layout";
import { navigate, useRoute, withQuery } from "../router";
import { can, useSession } from "../session";
import { useAction } from "../useAction";
import { useLoad } from "../useLoad";
import { usePolled } from "../usePoll";
import { loadRoles } from "./Roles";

/** AppInfo is an app as DescribeApps answers it. */
export interface AppInfo {
  AppId: string;
  ProjectId: string;
  Name: string;
  Description: string;
  Role: string;
  Status: string;
  ActiveKeyCount: number;
  RateLimit: { ReadRps: number; WriteRps: number; Burst: number };
  CreatedTime: string;
}

/** AppKey is a key pair as DescribeAppKeys answers it: never with its SecretKey. */
export interface AppKey {
  SecretId: string;
  Status: string;
  RequireSignedAction: boolean;
  CreatedTime: string;
}

/** NewKey is CreateAppKey's answer: the one time a SecretKey leaves the server. */
export interface NewKey {
  AppId: string;
  SecretId: string;
  SecretKey: string;
}

interface Project {
  ProjectId: string;
  Quota: { MaxApps: number };
}

const REFRESH_MS = 10000;
const COLUMNS = [{ label: "Name" }, { label: "Role" }, { label: "Active keys" }, { label: "Status", wide: true }, { label: "Created", wide: true }];
// The roles every project has (DescribeRoles adds the project's custom ones when the person may read roles).
const BUILT_IN_ROLES = ["viewer", "operator", "auditor", "admin", "owner"];

/** Apps lists the project's apps page by page and creates them; ?app= shows one with its key pairs. */
export function Apps() {
  const s = useSession();
  const route = useRoute();
  const projectId = s.project?.ProjectId ?? "";
  const appId = route.query.get("app") ?? "";
  if (appId) return <AppDetail appId={appId} projectId={projectId} editing={route.query.get("edit") === "1" && can(s, "ModifyApp")} />;
  return <AppList projectId={projectId} offset={offsetOf(route.query)} adding={route.query.get("add") === "1" && can(s, "CreateApp")} />;
}

async function loadApps(projectId: string, offset: number, quota: boolean) {
  const [apps, projects] = await Promise.all([
    call<{ TotalCount: number; AppSet: AppInfo[] }>("DescribeApps", { ProjectId: projectId, Offset: offset, Limit: PAGE }),
    quota ? call<{ ProjectSet: Project[] }>("DescribeProjects", { ProjectIds: [projectId] }).catch(() => undefined) : undefined,
  ]);
  const maxApps = projects?.ProjectSet.find((p) => p.ProjectId === projectId)?.Quota.MaxApps ?? 0;
  return { ...apps, maxApps };
}

function AppList(props: { projectId: string; offset: number; adding: boolean }) {
  const s = useSession();
  const { projectId, offset, adding } = props;
  const quota = can(s, "DescribeProjects");
  const { value: list, error, reload } = usePolled(() => loadApps(projectId, offset, quota), REFRESH_MS, [projectId, offset, quota]);
  return (
    <section aria-labelledby="page-title">
      <PageHead title="Apps" add={can(s, "CreateApp") && !adding && "Create app"} />
      <p className="muted">
        Applications call the API with their key pairs, in this project, with the rights of their role.
      </p>
      {adding && (
        <AppForm projectId={projectId} onDone={(created) => {
          if (created) navigate(withQuery({ add: undefined, offset: undefined, app: created }));
          else closeForm(reload)(false);
        }} />
      )}
      <ErrorLine error={error} />
      <ListTable caption={`Apps of project ${projectId}`} columns={COLUMNS} empty="No apps yet." isEmpty={list?.AppSet.length === 0}>
        {list?.AppSet.map((a) => (
          <tr key={a.AppId} data-app={a.Name}>
            <th scope="row">
              <Link to={withQuery({ app: a.AppId, offset: undefined, add: undefined })}>{a.Name}</Link>
            </th>
            <td>{a.Role}</td>
            <td>{a.ActiveKeyCount}</td>
            <td className="wide-only">
              <span className={`status status-${a.Status}`}>{a.Status}</span>
            </td>
            <td className="wide-only">{a.CreatedTime}</td>
            <td>
              <div className="row-actions">
                {can(s, "DeleteApp") && <ConfirmDelete name={a.Name} action="DeleteApp" body={{ AppId: a.AppId }} onDeleted={reload} />}
              </div>
            </td>
          </tr>
        ))}
      </ListTable>
      <Pager label="Pages of apps" offset={offset} total={list?.TotalCount ?? 0} />
      {list && list.maxApps > 0 && (
        <p className="muted small" data-testid="app-quota">
          Project quota: {list.TotalCount} of {list.maxApps} apps.
        </p>
      )}
    </section>
  );
}

/** roleNames answers the roles an app of the project may be given: the built-in ones and the project's own. */
export async function roleNames(projectId: string, mayRead: boolean): Promise<string[]> {
  if (!mayRead) return BUILT_IN_ROLES;
  const custom = (await loadRoles(projectId)).filter((x) => !x.BuiltIn).map((x) => x.Name);
  return [...BUILT_IN_ROLES, ...custom];
}

interface Form {
  Name: string;
  Description: string;
  Role: string;
  ReadRps: string;
  WriteRps: string;
  Burst: string;
}

const FIELDS = ["Name", "Description", "Role", "RateLimit", "RateLimit.ReadRps", "RateLimit.WriteRps", "RateLimit.Burst"] as const;


/**
 * AppForm creates an app (no app given) or changes one. Rate limits are
 * offered to platform admins only: the server refuses them from anyone
 * else, since a project admin could lift their own app's limits.
 */
export function AppForm(props: { projectId: string; app?: AppInfo; onDone(created: string | false): void }) {
  const s = useSession();
  const a = props.app;
  const [roles, setRoles] = useState<string[]>(BUILT_IN_ROLES);
  const [form, setForm] = useState<Form>({
    Name: a?.Name ?? "",
    Description: a?.Description ?? "",
    Role: a?.Role ?? "viewer",
    ReadRps: String(a?.RateLimit.ReadRps ?? 0),
    WriteRps: String(a?.RateLimit.WriteRps ?? 0),
    Burst: String(a?.RateLimit.Burst ?? 0),
  });
  const [errors, setErrors] = useState<FormErrors>(noErrors);
  const [busy, setBusy] = useState(false);
  const rateLimits = a !== undefined && s.me.PlatformAdmin;
  useLoad(() => roleNames(props.projectId, can(s, "DescribeRoles")), setRoles, (e) => setErrors({ fields: {}, form: describe(e) }), [props.projectId]);
  const set = (k: keyof Form) => (v: string) => setForm((f) => ({ ...f, [k]: v }));

  async function save(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setErrors(noErrors);
    try {
      if (!a) {
        const r = await call<{ AppId: string }>("CreateApp", { ProjectId: props.projectId, Name: form.Name, Description: form.Description, Role: form.Role });
        props.onDone(r.AppId);
        return;
      }
      const body: Record<string, unknown> = { AppId: a.AppId, Name: form.Name, Description: form.Description };
      // The role goes only when it changes: an owner app's role may be sent by an owner alone.
      if (form.Role !== a.Role) body.Role = form.Role;
      const rl = { ReadRps: numberOr(form.ReadRps), WriteRps: numberOr(form.WriteRps), Burst: numberOr(form.Burst) };
      if (rateLimits && (rl.ReadRps !== a.RateLimit.ReadRps || rl.WriteRps !== a.RateLimit.WriteRps || rl.Burst !== a.RateLimit.Burst)) body.RateLimit = rl;
      await call("ModifyApp", body);
      props.onDone(a.AppId);
    } catch (err) {
      setErrors(formErrors(err, FIELDS));
    } finally {
      setBusy(false);
    }
  }

  const options = roles.includes(form.Role) ? roles : [form.Role, ...roles];
  const title = a ? `Edit app ${a.Name}` : "Create an app";
  return (
    <form className="card" onSubmit={save} aria-labelledby="app-form-title" noValidate>
      <h2 id="app-form-title">{title}</h2>
      <ErrorLine error={errors.form} />
      <div className="form-grid">
        <Field label="Name" name="Name" value={form.Name} onChange={set("Name")} error={errors.fields.Name} required />
        <Field label="Role" name="Role" value={form.Role} onChange={set("Role")} error={errors.fields.Role} options={options}
          hint="What the app may do in this project." />
        <Field label="Description" name="Description" value={form.Description} onChange={set("Description")} error={errors.fields.Description} />
      </div>
      {rateLimits && (
        <fieldset className="form-grid">
          <legend>Rate limits (0: the gateway's defaults)</legend>
          <Field label="Reads per second" name="RateLimit.ReadRps" value={form.ReadRps} onChange={set("ReadRps")}
            error={errors.fields["RateLimit.ReadRps"]} type="number" />
          <Field label="Writes per second" name="RateLimit.WriteRps" value={form.WriteRps} onChange={set("WriteRps")}
            error={errors.fields["RateLimit.WriteRps"]} type="number" />
          <Field label="Burst" name="RateLimit.Burst" value={form.Burst} onChange={set("Burst")} error={errors.fields["RateLimit.Burst"]} type="number" />
          <FieldError name="RateLimit" error={errors.fields.RateLimit} />
        </fieldset>
      )}
      <FormButtons save="Save app" busy={busy} onCancel={() => props.onDone(false)} />
    </form>
  );
}

interface Detail {
  app: AppInfo;
  keys: AppKey[];
}

function AppDetail(props: { appId: string; projectId: string; editing: boolean }) {
  const s = useSession();
  const [created, setCreated] = useState<NewKey | null>(null);
  const { value: d, error, reload } = usePolled(
    async (): Promise<Detail> => {
      const [apps, keys] = await Promise.all([
        call<{ AppSet: AppInfo[] }>("DescribeApps", { AppIds: [props.appId], Limit: 1 }),
        call<{ KeySet: AppKey[] }>("DescribeAppKeys", { AppId: props.appId }),
      ]);
      const app = apps.AppSet[0];
      if (!app) throw new Error(`no app ${props.appId}`);
      return { app, keys: keys.KeySet };
    },
    REFRESH_MS,
    [props.appId],
  );
  const a = d?.app;
  const back = withQuery({ app: undefined, edit: undefined });
  return (
    <section aria-labelledby="page-title">
      <p>
        <Link to={back}>← All apps</Link>
      </p>
      <div className="page-head">
        <h1 id="page-title">App {a?.Name ?? props.appId}</h1>
        {a && (
          <div className="row-actions">
            {can(s, "ModifyApp") && !props.editing && (
              <button type="button" className="secondary" onClick={() => navigate(withQuery({ edit: 1 }))}>
                Edit
              </button>
            )}
            {can(s, "DeleteApp") && <ConfirmDelete name={a.Name} action="DeleteApp" body={{ AppId: a.AppId }} onDeleted={() => navigate(back)} />}
          </div>
        )}
      </div>
      <ErrorLine error={error} />
      {a && props.editing && (
        <AppForm projectId={props.projectId} app={a} onDone={(changed) => {
          navigate(withQuery({ edit: undefined }));
          if (changed) reload();
        }} />
      )}
      {a && d && (
        <>
          <dl className="facts card">
            <dt>Id</dt>
            <dd>{a.AppId}</dd>
            <dt>Project</dt>
            <dd>{a.ProjectId}</dd>
            <dt>Role</dt>
            <dd>{a.Role}</dd>
            <dt>Status</dt>
            <dd>{a.Status}</dd>
            <dt>Description</dt>
            <dd>{a.Description || "—"}</dd>
            <dt>Rate limits</dt>
            <dd>
              {a.RateLimit.ReadRps || a.RateLimit.WriteRps || a.RateLimit.Burst
                ? `${a.RateLimit.ReadRps} reads/s, ${a.RateLimit.WriteRps} writes/s, burst ${a.RateLimit.Burst}`
                : "the gateway's defaults"}
            </dd>
            <dt>Created</dt>
            <dd>{a.CreatedTime}</dd>
          </dl>
          <Keys app={a} keys={d.keys} onChanged={reload} onCreated={(k) => {
            setCreated(k);
            reload();
          }} />
        </>
      )}
      {created && (
        <SecretOnce title="Your new key pair" what="SecretKey"
          values={[{ label: "SecretId", value: created.SecretId }, { label: "SecretKey", value: created.SecretKey }]}
          onClose={() => setCreated(null)} />
      )}
    </section>
  );
}

function Keys(props: { app: AppInfo; keys: AppKey[]; onChanged(): void; onCreated(k: NewKey): void }) {
  const s = useSession();
  const [signed, setSigned] = useState(false);
  const { busy, error, run } = useAction();
  const create = () => run(async () => {
    props.onCreated(await call<NewKey>("CreateAppKey", { AppId: props.app.AppId, RequireSignedAction: signed }));
    setSigned(false);
  });
  return (
    <>
      <h2 className="section-title">Key pairs</h2>
      <p className="muted small">
        An app has at most two active key pairs: to rotate, create a second one, move the clients to it, then disable and delete the old one.
      </p>
      {can(s, "CreateAppKey") && (
        <div className="buttons card key-create">
          <label className="check">
            <input type="checkbox" checked={signed} onChange={(e) => setSigned(e.target.checked)} />
            Require the action to be signed (X-TC-Action in SignedHeaders)
          </label>
          <button type="button" disabled={busy} onClick={() => void create()}>
            Create key
          </button>
          <ErrorLine error={error} />
        </div>
      )}
      <ListTable caption={`Key pairs of app ${props.app.Name}`} columns={[{ label: "SecretId" }, { label: "Status" },
        { label: "Signed action", wide: true }, { label: "Created", wide: true }]} empty="No key pairs." isEmpty={props.keys.length === 0}>
        {props.keys.map((k) => <KeyRow key={k.SecretId} app={props.app} k={k} onChanged={props.onChanged} />)}
      </ListTable>
    </>
  );
}

function KeyRow(props: { app: AppInfo; k: AppKey; onChanged(): void }) {
  const s = useSession();
  const { k, app } = props;
  const toggle = useAction();
  const signed = useAction();
  const active = k.Status === "active";
  const action = active ? "DisableAppKey" : "EnableAppKey";
  const flip = () => toggle.run(async () => {
    await call(action, { AppId: app.AppId, SecretId: k.SecretId });
    props.onChanged();
  });
  const setSigned = (v: boolean) => signed.run(async () => {
    await call("ModifyAppKey", { AppId: app.AppId, SecretId: k.SecretId, RequireSignedAction: v });
    props.onChanged();
  });
  return (
    <tr data-key={k.SecretId}>
      <th scope="row" className="detail">
        <code>{k.SecretId}</code>
      </th>
      <td>
        <span className={`status status-${k.Status}`}>{k.Status}</span>
      </td>
      <td className="wide-only">
        {can(s, "ModifyAppKey") ? (
          <label className="check">
            <input type="checkbox" checked={k.RequireSignedAction} disabled={signed.busy} onChange={(e) => void setSigned(e.target.checked)}
              aria-label={`Require a signed action for ${k.SecretId}`} />
            required
          </label>
        ) : k.RequireSignedAction ? "required" : "not required"}
        {signed.error && <div className="form-error" role="alert">{signed.error}</div>}
      </td>
      <td className="wide-only">{k.CreatedTime}</td>
      <td>
        <div className="row-actions">
          {can(s, action) && (
            <button type="button" className="secondary" disabled={toggle.busy} onClick={() => void flip()} aria-label={`${active ? "Disable" : "Enable"} ${k.SecretId}`}>
              {active ? "Disable" : "Enable"}
            </button>
          )}
          {can(s, "DeleteAppKey") && (
            <ConfirmDelete name={k.SecretId} action="DeleteAppKey" body={{ AppId: app.AppId, SecretId: k.SecretId }} onDeleted={props.onChanged} />
          )}
        </div>
        {toggle.error && <div className="form-error" role="alert">{toggle.error}</div>}
      </td>
    </tr>
  );
}
