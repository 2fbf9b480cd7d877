import { useState } from "react";
import { call } from "../api";
import { describe } from "../errors";
import { can, useSession } from "../session";
import type { Session } from "../session";
import type { DescribeAlgorithmsResponse, Instance } from "../types";
import { usePoll } from "../usePoll";

const REFRESH_MS = 5000;

interface Counts {
  tasksRunning?: number;
  tasksFailed?: number;
  devicesOnline?: number;
  devicesOffline?: number;
  instancesReady?: number;
  instancesAll?: number;
}

async function count(action: string, projectId: string, status: string): Promise<number> {
  const r = await call<{ TotalCount: number }>(action, { ProjectId: projectId, Filters: [{ Name: "Status", Values: [status] }], Limit: 1 });
  return r.TotalCount;
}

async function instances(projectId: string): Promise<[number, number]> {
  const algos = await call<DescribeAlgorithmsResponse>("DescribeAlgorithms", { ProjectId: projectId, Limit: 100 });
  const sets = await Promise.all(
    algos.AlgorithmSet.map((a) => call<{ InstanceSet: Instance[] }>("DescribeAlgorithmInstances", { AlgorithmId: a.AlgorithmId })),
  );
  const all = sets.flatMap((s) => s.InstanceSet);
  return [all.filter((i) => i.Status === "ready").length, all.length];
}

async function load(s: Session, projectId: string): Promise<Counts> {
  const c: Counts = {};
  const jobs: Promise<void>[] = [];
  if (can(s, "DescribeTasks")) {
    jobs.push(count("DescribeTasks", projectId, "Running").then((n) => void (c.tasksRunning = n)));
    jobs.push(count("DescribeTasks", projectId, "Failed").then((n) => void (c.tasksFailed = n)));
  }
  if (can(s, "DescribeDevices")) {
    jobs.push(count("DescribeDevices", projectId, "online").then((n) => void (c.devicesOnline = n)));
    jobs.push(count("DescribeDevices", projectId, "offline").then((n) => void (c.devicesOffline = n)));
  }
  if (can(s, "DescribeAlgorithms") && can(s, "DescribeAlgorithmInstances")) {
    jobs.push(instances(projectId).then(([ready, all]) => void ((c.instancesReady = ready), (c.instancesAll = all))));
  }
  await Promise.all(jobs);
  return c;
}

function Stat(props: { label: string; value: number | undefined; tone?: "bad" | "good" }) {
  return (
    <div className={`stat ${props.value ? (props.tone ?? "") : ""}`}>
      <div className="stat-value">{props.value ?? "—"}</div>
      <div className="stat-label">{props.label}</div>
    </div>
  );
}

/** Overview shows the project's tasks, devices and algorithm instances, refreshed every few seconds. */
export function Overview() {
  const s = useSession();
  const projectId = s.project?.ProjectId ?? "";
  const [counts, setCounts] = useState<Counts>({});
  const [error, setError] = useState("");
  const [updated, setUpdated] = useState<Date | null>(null);

  usePoll(
    async (signal) => {
      try {
        const c = await load(s, projectId);
        if (signal.stopped) return;
        setCounts(c);
        setError("");
        setUpdated(new Date());
      } catch (e) {
        if (!signal.stopped) setError(describe(e));
      }
    },
    REFRESH_MS,
    [projectId],
  );

  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title">Overview</h1>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      <div className="stats" data-testid="overview-stats">
        <Stat label="Tasks running" value={counts.tasksRunning} tone="good" />
        <Stat label="Tasks failed" value={counts.tasksFailed} tone="bad" />
        <Stat label="Devices online" value={counts.devicesOnline} tone="good" />
        <Stat label="Devices offline" value={counts.devicesOffline} tone="bad" />
        <Stat label="Algorithm instances ready" value={counts.instancesReady} tone="good" />
        <Stat label="Algorithm instances" value={counts.instancesAll} />
      </div>
      <p className="muted" aria-live="polite">
        {updated ? `Updated ${updated.toLocaleTimeString()}; refreshed every ${REFRESH_MS / 1000} s.` : "Loading…"}
      </p>
    </section>
  );
}
