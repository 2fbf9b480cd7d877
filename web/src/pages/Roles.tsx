import { useState } from "react";
import type { FormEvent } from "react";
import { call } from "../api";
import { Checks } from "../components/Checks";
import { ConfirmDelete } from "../components/ConfirmDelete";
import { Field } from "../components/Field";
import { ErrorLine, ListTable } from "../components/ListTable";
import { closeForm, PageHead } from "../components/PageHead";
import { offsetOf, PAGE, Pager } from "../components/Pager";
import { formErrors, noErrors } from "../errors";
import type { FormErrors } from "../errors";
import { Link } from "../Layout";
import { navigate, useRoute, withQuery } from "../router";
import { can, useSession } from "../session";
import type { Device, Task } from "../types";
import { useLoad } from "../useLoad";
import { usePolled } from "../usePoll";
import { FormButtons } from "../components/FormButtons";

/** RoleInfo is a role as DescribeRoles answers it: built-in (no RoleId) or a custom role of the project. */
export interface RoleInfo {
  RoleId: string;
  ProjectId: string;
  Name: string;
  Description: string;
  BuiltIn: boolean;
  Actions: string[];
  DeviceIds: string[];
  DeviceGroups: string[];
  TaskIds: string[];
  CreatedTime: string;
}

/** ROLES_MAX is the most roles a picker offers: the built-in ones and the first custom ones, one page of the server's largest. */
const ROLES_MAX = 100;

/** loadRoles answers the roles a member of the project may hold (up to ROLES_MAX): the built-in ones, then the project's own. */
export async function loadRoles(projectId: string): Promise<RoleInfo[]> {
  const r = await call<{ RoleSet: RoleInfo[] }>("DescribeRoles", { ProjectId: projectId, Limit: ROLES_MAX });
  return r.RoleSet;
}

/** loadRolePage answers one page of the project's roles and every action a role may grant (the owner's, first of the list). */
async function loadRolePage(projectId: string, offset: number) {
  const [page, first] = await Promise.all([
    call<{ TotalCount: number; RoleSet: RoleInfo[] }>("DescribeRoles", { ProjectId: projectId, Offset: offset, Limit: PAGE }),
    offset === 0 ? null : call<{ RoleSet: RoleInfo[] }>("DescribeRoles", { ProjectId: projectId, Limit: 1 }),
  ]);
  return { ...page, actions: grantable((first ?? page).RoleSet) };
}

/**
 * grantable is every action a role may grant: the owner role's, which
 * DescribeRoles expands over the registry (platform-only actions are in no
 * role). A custom role's patterns are matched against these.
 */
export function grantable(roles: readonly RoleInfo[]): string[] {
  return roles.find((r) => r.BuiltIn && r.Name === "owner")?.Actions ?? [];
}

/** matches tells whether an action pattern (exact, or * for any run of characters) matches name, as the server does. */
export function matches(pattern: string, name: string): boolean {
  const re = new RegExp(`^${pattern.split("*").map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);
  return re.test(name);
}

/** matched is the actions among names that a pattern matches. */
export function matched(pattern: string, names: readonly string[]): string[] {
  return pattern.trim() === "" ? [] : names.filter((n) => matches(pattern.trim(), n));
}

/** Resources are the project's devices and tasks a role may be narrowed to, by name. */
export interface Resources {
  devices: Device[];
  tasks: Task[];
}

const noResources: Resources = { devices: [], tasks: [] };

function useResources(projectId: string, want: boolean): Resources {
  const [res, setRes] = useState<Resources>(noResources);
  useLoad(
    () => want
      ? Promise.all([
        call<{ DeviceSet: Device[] }>("DescribeDevices", { ProjectId: projectId, Limit: 100 }),
        call<{ TaskSet: Task[] }>("DescribeTasks", { ProjectId: projectId, Limit: 100 }),
      ])
      : null,
    ([d, t]) => setRes({ devices: d.DeviceSet, tasks: t.TaskSet }),
    () => setRes(noResources), // a person who may not list them picks from nothing; the ids still show
    [projectId, want],
  );
  return res;
}

/** scopeText is a role's resource scope as a person reads it, by name where the name is known. */
export function scopeText(r: RoleInfo, res: Resources): string {
  const device = (id: string) => res.devices.find((d) => d.DeviceId === id)?.Name ?? id;
  const task = (id: string) => res.tasks.find((t) => t.TaskId === id)?.Name ?? id;
  const parts: string[] = [];
  if (r.DeviceIds.length) parts.push(`devices ${r.DeviceIds.map(device).join(", ")}`);
  if (r.DeviceGroups.length) parts.push(`groups ${r.DeviceGroups.join(", ")}`);
  if (r.TaskIds.length) parts.push(`tasks ${r.TaskIds.map(task).join(", ")}`);
  return parts.length ? parts.join("; ") : "every resource of the project";
}

/** Roles lists the built-in roles (read-only, with the actions they grant) and the project's custom roles; ?role= opens one, ?add=1 creates one. */
export function Roles() {
  const s = useSession();
  const route = useRoute();
  const projectId = s.project?.ProjectId ?? "";
  const open = route.query.get("role") ?? "";
  const res = useResources(projectId, can(s, "DescribeDevices") && can(s, "DescribeTasks"));
  if (open) return <RoleDetail projectId={projectId} open={open} res={res} />;
  return <RoleList projectId={projectId} offset={offsetOf(route.query)} adding={route.query.get("add") === "1" && can(s, "CreateRole")} res={res} />;
}

/** RoleDetail shows one role (?role=, a RoleId or a built-in's name), in a form to a person who may change it. */
function RoleDetail(props: { projectId: string; open: string; res: Resources }) {
  const s = useSession();
  const { projectId, open, res } = props;
  const { value: roles, error, reload } = usePolled(() => loadRoles(projectId), 30000, [projectId]);
  const list = roles ?? [];
  const role = list.find((r) => (r.RoleId || r.Name) === open);
  return (
    <section aria-labelledby="page-title">
      <p>
        <Link to={withQuery({ role: undefined })}>← All roles</Link>
      </p>
      <ErrorLine error={error} />
      {!roles && !error && <p className="loading">Loading…</p>}
      {roles && !role && <ErrorLine error={`No role ${open} in project ${projectId}.`} />}
      {role && (role.BuiltIn || !can(s, "ModifyRole")
        ? <RoleView role={role} res={res} />
        : <RoleForm key={role.RoleId} projectId={projectId} role={role} actions={grantable(list)} res={res} onDone={(changed) => {
          navigate(withQuery({ role: undefined }));
          if (changed) reload();
        }} />)}
    </section>
  );
}

/** RoleList is one page (?offset=) of the project's roles, built-in ones first. */
function RoleList(props: { projectId: string; offset: number; adding: boolean; res: Resources }) {
  const s = useSession();
  const { projectId, offset, adding, res } = props;
  const { value: page, error, reload } = usePolled(() => loadRolePage(projectId, offset), 30000, [projectId, offset]);
  const list = page?.RoleSet ?? [];
  return (
    <section aria-labelledby="page-title">
      <PageHead title="Roles" add={can(s, "CreateRole") && !adding && "Create role"} />
      {adding && <RoleForm projectId={projectId} actions={page?.actions ?? []} res={res} onDone={closeForm(reload)} />}
      <ErrorLine error={error} />
      <ListTable caption={`Roles of project ${projectId}`} columns={[{ label: "Role" }, { label: "Grants" }, { label: "Narrowed to", wide: true }]}
        empty="No roles." isEmpty={page?.RoleSet.length === 0}>
        {list.map((r) => (
          <tr key={r.RoleId || r.Name} data-role={r.Name}>
            <th scope="row">
              <Link to={withQuery({ role: r.RoleId || r.Name, add: undefined })}>{r.Name}</Link>
              <div className="muted small">{r.BuiltIn ? "built-in" : r.Description || "custom"}</div>
            </th>
            <td>{r.BuiltIn ? `${r.Actions.length} actions` : r.Actions.join(", ")}</td>
            <td className="wide-only">{r.BuiltIn ? "—" : scopeText(r, res)}</td>
            <td>
              <div className="row-actions">
                {!r.BuiltIn && can(s, "ModifyRole") && (
                  <button type="button" className="secondary" aria-label={`Edit ${r.Name}`}
                    onClick={() => navigate(withQuery({ role: r.RoleId, add: undefined }))}>
                    Edit
                  </button>
                )}
                {!r.BuiltIn && can(s, "DeleteRole") && (
                  <ConfirmDelete name={r.Name} action="DeleteRole" body={{ RoleId: r.RoleId }} onDeleted={reload} />
                )}
              </div>
            </td>
          </tr>
        ))}
      </ListTable>
      {page && <Pager label="Pages of roles" offset={offset} total={page.TotalCount} />}
    </section>
  );
}

/** RoleView shows a role read-only: a built-in one, or a custom one to a person who may not change it. */
function RoleView(props: { role: RoleInfo; res: Resources }) {
  const r = props.role;
  return (
    <>
      <h1 id="page-title">Role {r.Name}</h1>
      <dl className="facts card">
        <dt>Kind</dt>
        <dd>{r.BuiltIn ? "built-in: the same in every project, cannot be changed" : "custom"}</dd>
        <dt>Description</dt>
        <dd>{r.Description || "—"}</dd>
        {!r.BuiltIn && (
          <>
            <dt>Narrowed to</dt>
            <dd>{scopeText(r, props.res)}</dd>
          </>
        )}
      </dl>
      <h2 className="section-title">{r.BuiltIn ? `Actions it grants (${r.Actions.length})` : "Action patterns"}</h2>
      <ul className="action-list" data-testid="role-actions">
        {r.Actions.map((a) => (
          <li key={a}>
            <code>{a}</code>
          </li>
        ))}
        {r.Actions.length === 0 && <li>None.</li>}
      </ul>
    </>
  );
}

interface Form {
  Name: string;
  Description: string;
  Actions: string[];
  DeviceIds: string[];
  DeviceGroups: string[];
  TaskIds: string[];
}

function formOf(r: RoleInfo | undefined): Form {
  if (!r) return { Name: "", Description: "", Actions: ["Describe*"], DeviceIds: [], DeviceGroups: [], TaskIds: [] };
  return { Name: r.Name, Description: r.Description, Actions: r.Actions.length ? [...r.Actions] : [""], DeviceIds: [...r.DeviceIds],
    DeviceGroups: [...r.DeviceGroups], TaskIds: [...r.TaskIds] };
}

/**
 * RoleForm creates a custom role, or edits one (role given): action
 * patterns, each with the actions it matches, and the devices, device
 * groups and tasks it is narrowed to, picked by name.
 */
export function RoleForm(props: { projectId: string; role?: RoleInfo; actions: readonly string[]; res: Resources; onDone(changed: boolean): void }) {
  const editing = props.role !== undefined;
  const [form, setForm] = useState<Form>(() => formOf(props.role));
  const [errors, setErrors] = useState<FormErrors>(noErrors);
  const [busy, setBusy] = useState(false);
  const set = <K extends keyof Form>(k: K) => (v: Form[K]) => setForm((f) => ({ ...f, [k]: v }));
  const setPattern = (i: number, v: string) => setForm((f) => ({ ...f, Actions: f.Actions.map((a, j) => (j === i ? v : a)) }));
  const groups = [...new Set(props.res.devices.map((d) => d.Group).filter(Boolean))].sort();

  async function save(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setErrors(noErrors);
    // Empty pattern rows are not sent; an error naming Actions[k] goes to the row k came from.
    const rows = form.Actions.map((a, i) => [a.trim(), i] as const).filter(([a]) => a !== "");
    const body = { Description: form.Description, Actions: rows.map(([a]) => a), DeviceIds: form.DeviceIds, DeviceGroups: form.DeviceGroups,
      TaskIds: form.TaskIds };
    try {
      if (props.role) await call("ModifyRole", { RoleId: props.role.RoleId, ...body });
      else await call("CreateRole", { ProjectId: props.projectId, Name: form.Name, ...body });
      props.onDone(true);
    } catch (err) {
      const sent = rows.map((_, k) => `Actions[${k}]`);
      const fe = formErrors(err, ["Name", "Description", "Actions", "DeviceIds", "DeviceGroups", "TaskIds", ...sent]);
      const fields: Record<string, string> = {};
      for (const [f, m] of Object.entries(fe.fields)) {
        const k = sent.indexOf(f);
        fields[k >= 0 ? `Actions[${rows[k]?.[1]}]` : f] = m;
      }
      setErrors({ ...fe, fields });
    } finally {
      setBusy(false);
    }
  }

  const title = editing ? `Edit role ${props.role?.Name}` : "Create a role";
  // Editing, the form is the page (?role=): its title is the page's.
  const Heading = editing ? "h1" : "h2";
  const titleId = editing ? "page-title" : "role-form-title";
  return (
    <form className="card" onSubmit={save} aria-labelledby={titleId} noValidate>
      <Heading id={titleId}>{title}</Heading>
      <ErrorLine error={errors.form} />
      <div className="form-grid">
        {!editing && <Field label="Name" name="Name" value={form.Name} onChange={set("Name")} error={errors.fields.Name} required
          hint="Letters, digits, '-' and '_'; not a built-in role's name." />}
        <Field label="Description" name="Description" value={form.Description} onChange={set("Description")} error={errors.fields.Description} />
      </div>
      <fieldset className={errors.fields.Actions ? "patterns field-invalid" : "patterns"}>
        <legend>Actions it grants</legend>
        <p className="muted small">Action names or patterns where * matches anything: Describe*, *Device*, StartTask.</p>
        {form.Actions.map((a, i) => {
          const n = matched(a, props.actions);
          return (
            <div key={i} className="pattern">
              <Field label={`Pattern ${i + 1}`} name={`Actions[${i}]`} value={a} onChange={(v) => setPattern(i, v)} suggestions={props.actions}
                error={errors.fields[`Actions[${i}]`]}
                hint={a.trim() === "" ? "empty: not sent" : n.length === 0 ? "matches no action" : `matches ${n.length}: ${n.slice(0, 6).join(", ")}${n.length > 6 ? ", …" : ""}`} />
              {form.Actions.length > 1 && (
                <button type="button" className="secondary" aria-label={`Remove pattern ${i + 1}`}
                  onClick={() => setForm((f) => ({ ...f, Actions: f.Actions.filter((_, j) => j !== i) }))}>
                  Remove
                </button>
              )}
            </div>
          );
        })}
        {errors.fields.Actions && (
          <div className="field-error" role="alert" data-field-error="Actions">
            {errors.fields.Actions}
          </div>
        )}
        <button type="button" className="secondary" onClick={() => setForm((f) => ({ ...f, Actions: [...f.Actions, ""] }))}>
          Add pattern
        </button>
      </fieldset>
      <p className="muted small">Narrow it to some resources: a kind left empty is not narrowed.</p>
      <div className="scopes">
        <Checks legend="Devices" name="DeviceIds" value={form.DeviceIds} onChange={set("DeviceIds")} error={errors.fields.DeviceIds}
          choices={props.res.devices.map((d) => ({ value: d.DeviceId, label: d.Name, hint: d.Group }))} empty="The project has no devices." />
        <Checks legend="Device groups" name="DeviceGroups" value={form.DeviceGroups} onChange={set("DeviceGroups")} error={errors.fields.DeviceGroups}
          choices={groups.map((g) => ({ value: g, label: g }))} empty="No device is in a group." />
        <Checks legend="Tasks" name="TaskIds" value={form.TaskIds} onChange={set("TaskIds")} error={errors.fields.TaskIds}
          choices={props.res.tasks.map((t) => ({ value: t.TaskId, label: t.Name }))} empty="The project has no tasks." />
      </div>
      <FormButtons save="Save role" busy={busy} onCancel={() => props.onDone(false)} />
      {busy && <p className="muted small">Saving…</p>}
    </form>
  );
}
