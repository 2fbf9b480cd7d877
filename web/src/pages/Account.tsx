import { useState } from "react";
import { api, call } from "../api";
import { ConfirmDelete } from "../components/ConfirmDelete";
import { Field } from "../components/Field";
import { FormShell, useForm } from "../components/FormShell";
import { ErrorLine, ListTable } from "../components/ListTable";
import { offsetOf, PAGE, Pager } from "../components/Pager";
import { useRoute } from "../router";
import { useSession } from "../session";
import { shortTime } from "../time";
import { useAction } from "../useAction";
import { usePolled } from "../usePoll";
import { POLICY } from "./Users";

/** MySession is one of the person's sessions as DescribeMySessions answers it. */
export interface MySession {
  SessionId: string;
  SourceIp: string;
  CreatedTime: string;
  LastSeenTime: string;
  ExpireTime: string;
  Current: boolean;
}

const COLUMNS = [{ label: "Session" }, { label: "From" }, { label: "Last seen", wide: true }, { label: "Ends by", wide: true }];

/** Account is every person's own: change the password, see and end their sessions, sign out everywhere. */
export function Account() {
  const s = useSession();
  const offset = offsetOf(useRoute().query);
  const { value: list, error, reload } = usePolled(
    () => call<{ TotalCount: number; SessionSet: MySession[] }>("DescribeMySessions", { Offset: offset, Limit: PAGE }),
    30000,
    [offset],
  );
  return (
    <section aria-labelledby="page-title">
      <div className="page-head">
        <h1 id="page-title">My account</h1>
      </div>
      <p className="muted small">
        Signed in as <strong>{s.me.UserName}</strong>
        {s.me.PlatformAdmin ? ", a platform administrator" : ""}
        {s.project ? `; in project ${s.project.Name || s.project.ProjectId} you hold ${s.project.Roles.join(", ") || "no role of your own"}.` : "."}
      </p>
      <ChangePassword onChanged={reload} />
      <h2 className="section-title">Sessions</h2>
      <ErrorLine error={error} />
      <ListTable caption="Your sessions" columns={COLUMNS} empty="No sessions." isEmpty={list?.SessionSet.length === 0}>
        {list?.SessionSet.map((x) => (
          <tr key={x.SessionId} data-session={x.Current ? "current" : x.SessionId}>
            <th scope="row">
              {shortTime(x.CreatedTime)}
              <div className="muted small">{x.Current ? <strong>This session</strong> : <code>{x.SessionId}</code>}</div>
            </th>
            <td>{x.SourceIp}</td>
            <td className="wide-only">{shortTime(x.LastSeenTime)}</td>
            <td className="wide-only">{shortTime(x.ExpireTime)}</td>
            <td>
              <div className="row-actions">
                {x.Current ? (
                  <button type="button" className="secondary" onClick={s.signOut}>
                    Sign out
                  </button>
                ) : (
                  <ConfirmDelete verb="Revoke" name={`session ${x.SessionId}`} action="DeleteMySession" body={{ SessionId: x.SessionId }}
                    onDeleted={reload} />
                )}
              </div>
            </td>
          </tr>
        ))}
      </ListTable>
      <Pager label="Pages of sessions" offset={offset} total={list?.TotalCount ?? 0} />
      <SignOutEverywhere />
    </section>
  );
}

/** ChangePassword changes the person's own password, given the current one; their other sessions end. */
export function ChangePassword(props: { onChanged(): void }) {
  const [f, setF] = useState({ CurrentPassword: "", NewPassword: "" });
  const [done, setDone] = useState(false);
  const form = useForm(["CurrentPassword", "NewPassword"]);
  return (
    <>
      <FormShell id="password-title" title="Change password" save="Change password" busy={form.busy} error={form.errors.form}
        onSubmit={(e) => {
          setDone(false);
          void form.submit(e, async () => {
            await call("ModifyMyPassword", f);
            setF({ CurrentPassword: "", NewPassword: "" });
            setDone(true);
            props.onChanged();
          });
        }}>
        <Field label="Current password" name="CurrentPassword" type="password" value={f.CurrentPassword} required autoComplete="current-password"
          onChange={(v) => setF((x) => ({ ...x, CurrentPassword: v }))} error={form.errors.fields.CurrentPassword} />
        <Field label="New password" name="NewPassword" type="password" value={f.NewPassword} required autoComplete="new-password" hint={POLICY}
          onChange={(v) => setF((x) => ({ ...x, NewPassword: v }))} error={form.errors.fields.NewPassword} />
      </FormShell>
      {done && (
        <p role="status" className="muted">
          Password changed; your other sessions have ended.
        </p>
      )}
    </>
  );
}

/** SignOutEverywhere ends every session of the person, this one included, after asking once more. */
function SignOutEverywhere() {
  const [confirming, setConfirming] = useState(false);
  const { busy, error, run } = useAction();
  const go = () => run(async () => {
    await call("LogoutEverywhere");
    api.endSession();
  });
  return (
    <div className="buttons after-list">
      {!confirming ? (
        <button type="button" className="secondary" onClick={() => setConfirming(true)}>
          Sign out everywhere
        </button>
      ) : (
        <>
          <button type="button" className="danger" disabled={busy} onClick={() => void go()}>
            Confirm: end every session
          </button>
          <button type="button" className="secondary" onClick={() => setConfirming(false)}>
            Cancel
          </button>
        </>
      )}
      <ErrorLine error={error} />
    </div>
  );
}
