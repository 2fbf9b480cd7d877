import { useState } from "react";
import { call } from "../api";
import { Checks } from "../components/Checks";
import { ConfirmDelete } from "../components/ConfirmDelete";
import { Field } from "../components/Field";
import { FormShell, useForm } from "../components/FormShell";
import { ErrorLine, ListTable } from "../components/ListTable";
import { closeForm, PageHead } from "../components/PageHead";
import { offsetOf, PAGE, Pager } from "../components/Pager";
import { describe } from "../errors";
import { Link } from "../Layout";
import { navigate, useRoute, withQuery } from "../router";
import { can, useSession } from "../session";
import { useLoad } from "../useLoad";
import { usePolled } from "../usePoll";
import { loadRoles } from "./Roles";
import type { RoleInfo } from "./Roles";

/** MemberInfo is a member of a project as DescribeProjectMembers answers it. */
export interface MemberInfo {
  ProjectId: string;
  PrincipalId: string;
  Name: string;
  Roles: string[];
}

const REFRESH_MS = 10000;
const COLUMNS = [{ label: "Member" }, { label: "Roles" }, { label: "Id", wide: true }];

/** kindOf is what a principal is, from its id's prefix. */
export function kindOf(principalId: string): string {
  return principalId.startsWith("app-") ? "app" : "person";
}

/** memberBody is CreateProjectMember's body: an id (usr-…, app-…) goes as PrincipalId, anything else is a user name. */
export function memberBody(projectId: string, who: string, role: string): Record<string, string> {
  const w = who.trim();
  return /^(usr|app)-/.test(w) ? { ProjectId: projectId, PrincipalId: w, Role: role } : { ProjectId: projectId, UserName: w, Role: role };
}

/** Members lists the project's people and apps with their roles, page by page; ?add=1 adds one, ?member= changes one's roles. */
export function Members() {
  const s = useSession();
  const route = useRoute();
  const projectId = s.project?.ProjectId ?? "";
  const offset = offsetOf(route.query);
  const adding = route.query.get("add") === "1" && can(s, "CreateProjectMember");
  const editing = can(s, "ModifyProjectMember") ? (route.query.get("member") ?? "") : "";
  const { value: list, error, reload } = usePolled(
    () => call<{ TotalCount: number; MemberSet: MemberInfo[] }>("DescribeProjectMembers", { ProjectId: projectId, Offset: offset, Limit: PAGE }),
    REFRESH_MS,
    [projectId, offset],
  );
  const [roles, setRoles] = useState<RoleInfo[]>([]);
  const [rolesError, setRolesError] = useState("");
  useLoad(() => (can(s, "DescribeRoles") ? loadRoles(projectId) : null), setRoles, (e) => setRolesError(describe(e)), [projectId]);
  const roleNames = roles.map((r) => r.Name);
  // ?member= is loaded on its own, so that a shared URL opens it whatever page of the list it is on.
  const [member, setMember] = useState<MemberInfo | undefined>();
  useLoad(
    () => (editing ? call<{ MemberSet: MemberInfo[] }>("DescribeProjectMembers", { ProjectId: projectId, PrincipalIds: [editing], Limit: 1 }) : null),
    (r) => setMember(r.MemberSet[0]),
    (e) => setRolesError(describe(e)),
    [projectId, editing],
  );

  return (
    <section aria-labelledby="page-title">
      <PageHead title="Members" add={can(s, "CreateProjectMember") && !adding && "Add member"} />
      <p className="muted small">
        People and apps of project {s.project?.Name || projectId} and the roles they hold here.{" "}
        {can(s, "DescribeRoles") && <Link to={withQuery({ add: undefined, member: undefined, offset: undefined }, "/roles")}>What each role may do</Link>}
      </p>
      {adding && <AddMember projectId={projectId} roles={roleNames} onDone={closeForm(reload)} />}
      {editing && member?.PrincipalId === editing && (
        <MemberRoles key={member.PrincipalId} member={member} roles={roleNames} onDone={(changed) => {
          navigate(withQuery({ member: undefined }));
          if (changed) reload();
        }} />
      )}
      <ErrorLine error={error || rolesError} />
      <ListTable caption={`Members of project ${projectId}`} columns={COLUMNS} empty="No members yet." isEmpty={list?.MemberSet.length === 0}>
        {list?.MemberSet.map((m) => (
          <tr key={m.PrincipalId} data-member={m.Name || m.PrincipalId}>
            <th scope="row">
              {m.Name || m.PrincipalId}
              <div className="muted small">{kindOf(m.PrincipalId)}{m.PrincipalId === s.me.UserId ? " · you" : ""}</div>
            </th>
            <td data-testid="member-roles">{m.Roles.join(", ")}</td>
            <td className="wide-only">
              <code>{m.PrincipalId}</code>
            </td>
            <td>
              <div className="row-actions">
                {can(s, "ModifyProjectMember") && (
                  <button type="button" className="secondary" aria-label={`Change roles of ${m.Name || m.PrincipalId}`}
                    onClick={() => navigate(withQuery({ member: m.PrincipalId, add: undefined }))}>
                    Change roles
                  </button>
                )}
                {can(s, "DeleteProjectMember") && (
                  <ConfirmDelete verb="Remove" name={m.Name || m.PrincipalId} action="DeleteProjectMember"
                    body={{ ProjectId: projectId, PrincipalId: m.PrincipalId }} onDeleted={reload} />
                )}
              </div>
            </td>
          </tr>
        ))}
      </ListTable>
      <Pager label="Pages of members" offset={offset} total={list?.TotalCount ?? 0} />
    </section>
  );
}

/** AddMember gives a person (by user name) or an app (by id) a role in the project. */
export function AddMember(props: { projectId: string; roles: readonly string[]; onDone(changed: boolean): void }) {
  const s = useSession();
  const [who, setWho] = useState("");
  const [role, setRole] = useState("viewer");
  const [users, setUsers] = useState<string[]>([]);
  const form = useForm(["UserName", "PrincipalId", "Role"]);
  // Only platform admins list users; a project admin types the name they were given.
  useLoad(
    () => (can(s, "DescribeUsers") ? call<{ UserSet: { UserName: string }[] }>("DescribeUsers", { Limit: 100 }) : null),
    (r) => setUsers(r.UserSet.map((u) => u.UserName)),
    () => setUsers([]),
    [],
  );

  return (
    <FormShell id="add-member-title" title="Add a member" save="Add member" busy={form.busy} error={form.errors.form} onCancel={() => props.onDone(false)}
      onSubmit={(e) => void form.submit(e, async () => {
        await call("CreateProjectMember", memberBody(props.projectId, who, role));
        props.onDone(true);
      })}>
      <Field label="User name or app id" name="UserName" value={who} onChange={setWho} suggestions={users} required
        error={form.errors.fields.UserName ?? form.errors.fields.PrincipalId} hint="A person's user name, or an app's id (app-…)." />
      <Field label="Role" name="Role" value={role} onChange={setRole} options={props.roles.length ? props.roles : ["viewer"]} error={form.errors.fields.Role} />
    </FormShell>
  );
}

/** MemberRoles replaces a member's roles in the project. */
function MemberRoles(props: { member: MemberInfo; roles: readonly string[]; onDone(changed: boolean): void }) {
  const m = props.member;
  const [chosen, setChosen] = useState<string[]>(m.Roles);
  // "Role: only an owner…" is about the roles chosen too.
  const form = useForm(["Roles", "Role"]);
  return (
    <FormShell id="member-title" title={`Roles of ${m.Name || m.PrincipalId}`} save="Save roles" busy={form.busy} error={form.errors.form}
      onCancel={() => props.onDone(false)}
      onSubmit={(e) => void form.submit(e, async () => {
        await call("ModifyProjectMember", { ProjectId: m.ProjectId, PrincipalId: m.PrincipalId, Roles: chosen });
        props.onDone(true);
      })}>
      <Checks legend="Roles" name="Roles" value={chosen} onChange={setChosen} error={form.errors.fields.Roles ?? form.errors.fields.Role}
        choices={props.roles.map((r) => ({ value: r, label: r }))} />
    </FormShell>
  );
}
