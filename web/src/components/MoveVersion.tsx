import { call } from "../api";
import { can, useSession } from "../session";
import { useAction } from "../useAction";

/** MoveVersion offers to move a task on an older version of its flow to the latest (ModifyTaskFlowVersion), to those who may. */
export function MoveVersion(props: { task: { TaskId: string; Name: string; FlowVersion: number; LatestFlowVersion?: number }; onMoved(): void }) {
  const s = useSession();
  const { busy, error, run } = useAction();
  const t = props.task;
  const latest = t.LatestFlowVersion ?? 0;
  if (!can(s, "ModifyTaskFlowVersion") || latest <= t.FlowVersion) return null;
  const go = () => run(async () => {
    await call("ModifyTaskFlowVersion", { TaskId: t.TaskId, FlowVersion: latest });
    props.onMoved();
  });
  return (
    <>
      <button type="button" className="secondary" disabled={busy} onClick={() => void go()} aria-label={`Move ${t.Name} to v${latest}`}>
        Move to v{latest}
      </button>
      {error && (
        <div className="form-error" role="alert">
          {error}
        </div>
      )}
    </>
  );
}
