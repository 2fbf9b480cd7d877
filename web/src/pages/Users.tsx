import { useState } from "react";
import { call } from "../api";
import { ConfirmDelete } from "../components/ConfirmDelete";
import { Field } from "../components/Field";
import { FormShell, useForm } from "../components/FormShell";
import { ErrorLine, ListTable } from "../components/ListTable";
import { closeForm, PageHead } from "../components/PageHead";
import { offsetOf, PAGE, Pager } from "../components/Pager";
import { navigate, useRoute, withQuery } from "../router";
import { can, useSession } from "../session";
import { shortTime } from "../time";
import { useAction } from "../useAction";
import { usePolled } from "../usePoll";

/** UserInfo is a user as DescribeUsers answers it. */
export interface UserInfo {
  UserId: string;
  UserName: string;
  DisplayName: string;
  Role: string;
  Status: string;
  CreatedTime: string;
  PasswordChangedTime: string;
}

interface ProjectInfo {
  ProjectId: string;
  Name: string;
  Description: string;
  CreatedTime: string;
}

/** POLICY is the password policy as docs/iam.md states it; the server decides. */
export const POLICY = "10 to 256 characters, not the user name, not a common password.";

const COLUMNS = [{ label: "User" }, { label: "Status" }, { label: "Platform role", wide: true }, { label: "Created", wide: true }];

/** Users is the platform admin's: users page by page (create, disable, enable, reset password, delete), then the projects. */
export function Users() {
  const s = useSession();
  const route = useRoute();
  if (!can(s, "DescribeUsers")) return <p role="alert">Only platform administrators manage users.</p>;
  const offset = offsetOf(route.query);
  return (
    <>
      <UserList offset={offset} adding={route.query.get("add") === "1" && can(s, "CreateUser")} reset={route.query.get("reset") ?? ""} />
      {can(s, "DescribeProjects") && <Projects offset={offsetOf(route.query, PROJECT_OFFSET)} adding={route.query.get("addproject") === "1" && can(s, "CreateProject")} />}
    </>
  );
}

function UserList(props: { offset: number; adding: boolean; reset: string }) {
  const s = useSession();
  const { value: list, error, reload } = usePolled(
    () => call<{ TotalCount: number; UserSet: UserInfo[] }>("DescribeUsers", { Offset: props.offset, Limit: PAGE }),
    10000,
    [props.offset],
  );
  const resetting = can(s, "ResetUserPassword") ? list?.UserSet.find((u) => u.UserId === props.reset) : undefined;
  return (
    <section aria-labelledby="page-title">
      <PageHead title="Users" add={can(s, "CreateUser") && !props.adding && "Create user"} />
      <p className="muted small">People who may sign in. What they may do is given per project on the Members page; a platform admin may do everything everywhere.</p>
      {props.adding && <CreateUser onDone={closeForm(reload)} />}
      {resetting && <ResetPassword user={resetting} onDone={() => navigate(withQuery({ reset: undefined }))} />}
      <ErrorLine error={error} />
      <ListTable caption="Users" columns={COLUMNS} empty="No users." isEmpty={list?.UserSet.length === 0}>
        {list?.UserSet.map((u) => <UserRow key={u.UserId} user={u} self={u.UserId === s.me.UserId} onChanged={reload} />)}
      </ListTable>
      <Pager label="Pages of users" offset={props.offset} total={list?.TotalCount ?? 0} />
    </section>
  );
}

function UserRow(props: { user: UserInfo; self: boolean; onChanged(): void }) {
  const s = useSession();
  const u = props.user;
  const toggle = useAction();
  const disabled = u.Status === "disabled";
  const verb = disabled ? "Enable" : "Disable";
  const setStatus = () => toggle.run(async () => {
    await call("ModifyUser", { UserId: u.UserId, Status: disabled ? "active" : "disabled" });
    props.onChanged();
  });
  return (
    <tr data-user={u.UserName}>
      <th scope="row">
        {u.UserName}
        {(u.DisplayName || props.self) && <div className="muted small">{[u.DisplayName, props.self ? "you" : ""].filter(Boolean).join(" · ")}</div>}
      </th>
      <td>
        <span className={`status status-${u.Status}`} data-testid="user-status">{u.Status}</span>
      </td>
      <td className="wide-only">{u.Role === "admin" ? "platform admin" : "—"}</td>
      <td className="wide-only">{shortTime(u.CreatedTime)}</td>
      <td>
        {/* Nobody disables or deletes themself: the server refuses, so the buttons are not offered. */}
        <div className="row-actions">
          {can(s, "ModifyUser") && !props.self && (
            <button type="button" className="secondary" disabled={toggle.busy} onClick={() => void setStatus()} aria-label={`${verb} ${u.UserName}`}>
              {verb}
            </button>
          )}
          {can(s, "ResetUserPassword") && (
            <button type="button" className="secondary" aria-label={`Reset password of ${u.UserName}`}
              onClick={() => navigate(withQuery({ reset: u.UserId, add: undefined }))}>
              Reset password
            </button>
          )}
          {can(s, "DeleteUser") && !props.self && (
            <ConfirmDelete name={u.UserName} action="DeleteUser" body={{ UserId: u.UserId }} onDeleted={props.onChanged} />
          )}
        </div>
        {toggle.error && (
          <div className="form-error" role="alert">
            {toggle.error}
          </div>
        )}
      </td>
    </tr>
  );
}

/** CreateUser creates a user with a password that meets the policy. */
export function CreateUser(props: { onDone(changed: boolean): void }) {
  const [f, setF] = useState({ UserName: "", DisplayName: "", Password: "", Role: "viewer" });
  const form = useForm(["UserName", "DisplayName", "Password", "Role"]);
  const set = (k: keyof typeof f) => (v: string) => setF((x) => ({ ...x, [k]: v }));
  return (
    <FormShell id="create-user-title" title="Create a user" save="Save user" busy={form.busy} error={form.errors.form} onCancel={() => props.onDone(false)}
      onSubmit={(e) => void form.submit(e, async () => {
        await call("CreateUser", f);
        props.onDone(true);
      })}>
      <Field label="User name" name="UserName" value={f.UserName} onChange={set("UserName")} error={form.errors.fields.UserName} required autoComplete="off" />
      <Field label="Display name" name="DisplayName" value={f.DisplayName} onChange={set("DisplayName")} error={form.errors.fields.DisplayName} />
      <Field label="Password" name="Password" type="password" value={f.Password} onChange={set("Password")} error={form.errors.fields.Password} required
        autoComplete="new-password" hint={POLICY} />
      <Field label="Platform role" name="Role" value={f.Role} onChange={set("Role")} options={["viewer", "admin"]} error={form.errors.fields.Role}
        hint="admin: a platform administrator. viewer: only the roles given per project." />
    </FormShell>
  );
}

/** ResetPassword sets a user's password, as ResetUserPassword does: the administrator chooses it and tells them; their sessions end. */
function ResetPassword(props: { user: UserInfo; onDone(): void }) {
  const [password, setPassword] = useState("");
  const [done, setDone] = useState(false);
  const form = useForm(["Password"]);
  if (done)
    return (
      <div className="card" role="status">
        <p>
          The password of {props.user.UserName} is set and their sessions have ended. Give them the new password yourself: it is not shown again.
        </p>
        <button type="button" onClick={props.onDone}>
          Close
        </button>
      </div>
    );
  return (
    <FormShell id="reset-title" title={`Reset the password of ${props.user.UserName}`} save="Set password" busy={form.busy} error={form.errors.form}
      onCancel={props.onDone}
      onSubmit={(e) => void form.submit(e, async () => {
        await call("ResetUserPassword", { UserId: props.user.UserId, Password: password });
        setDone(true);
      })}>
      <Field label="New password" name="Password" type="password" value={password} onChange={setPassword} error={form.errors.fields.Password} required
        autoComplete="new-password" hint={POLICY} />
    </FormShell>
  );
}

/** PROJECT_OFFSET is the query key of the projects' page: ?offset= pages the users above them. */
const PROJECT_OFFSET = "projectoffset";

/** Projects lists one page (?projectoffset=) of the projects and creates one (platform admins). */
function Projects(props: { offset: number; adding: boolean }) {
  const s = useSession();
  const { value: list, error, reload } = usePolled(
    () => call<{ TotalCount: number; ProjectSet: ProjectInfo[] }>("DescribeProjects", { Offset: props.offset, Limit: PAGE }),
    30000,
    [props.offset],
  );
  const [f, setF] = useState({ Name: "", Description: "" });
  const form = useForm(["Name", "Description"]);
  const close = (changed: boolean) => {
    navigate(withQuery({ addproject: undefined }));
    if (changed) reload();
  };
  return (
    <section aria-labelledby="projects-title">
      <div className="page-head">
        <h2 id="projects-title" className="section-title">Projects</h2>
        {can(s, "CreateProject") && !props.adding && (
          <button type="button" onClick={() => navigate(withQuery({ addproject: 1 }))}>
            Create project
          </button>
        )}
      </div>
      {props.adding && (
        <FormShell id="create-project-title" title="Create a project" save="Save project" busy={form.busy} error={form.errors.form} onCancel={() => close(false)}
          onSubmit={(e) => void form.submit(e, async () => {
            await call("CreateProject", f);
            close(true);
          })}>
          <Field label="Name" name="Name" value={f.Name} onChange={(v) => setF((x) => ({ ...x, Name: v }))} error={form.errors.fields.Name} required
            hint="It appears in the project switcher after the console is reloaded." />
          <Field label="Description" name="Description" value={f.Description} onChange={(v) => setF((x) => ({ ...x, Description: v }))}
            error={form.errors.fields.Description} />
        </FormShell>
      )}
      <ErrorLine error={error} />
      <ListTable caption="Projects" columns={[{ label: "Project" }, { label: "Id", wide: true }, { label: "Description", wide: true }]} empty="No projects."
        isEmpty={list?.ProjectSet.length === 0}>
        {list?.ProjectSet.map((p) => (
          <tr key={p.ProjectId}>
            <th scope="row">{p.Name}</th>
            <td className="wide-only">
              <code>{p.ProjectId}</code>
            </td>
            <td className="wide-only">{p.Description}</td>
            <td />
          </tr>
        ))}
      </ListTable>
      <Pager label="Pages of projects" offset={props.offset} total={list?.TotalCount ?? 0} param={PROJECT_OFFSET} />
    </section>
  );
}
