import { lazy, Suspense, useState } from "react";
import { call } from "../api";
import { ErrorLine, ListTable } from "../components/ListTable";
import { offsetOf, PAGE, Pager } from "../components/Pager";
import { describe } from "../errors";
import { Link } from "../Layout";
import { navigate, useRoute, withQuery } from "../router";
import { can, useSession } from "../session";
import { useLoad } from "../useLoad";
import { TemplateGallery } from "./flows/TemplateGallery";

// The editor (and @xyflow/react with it) is its own chunk, loaded when a flow
// is opened: the shell every page downloads does not grow by it.
const FlowEditor = lazy(() => import("./flows/FlowEditor"));

interface FlowRow {
  FlowId: string;
  Name: string;
  Description: string;
  LatestVersion: number;
  CreatedTime: string;
}

const COLUMNS = [{ label: "Name" }, { label: "Latest version" }, { label: "Description", wide: true }];

/** Flows lists the project's flows page by page; ?flow=<id>&version=<n> opens one in the editor, ?flow=new a new one. */
export function Flows() {
  const s = useSession();
  const route = useRoute();
  const flowId = route.query.get("flow") ?? "";
  const projectId = s.project?.ProjectId ?? "";
  if (flowId)
    return (
      <Suspense fallback={<p className="loading">Loading the editor…</p>}>
        <FlowEditor key={flowId} projectId={projectId} flowId={flowId === "new" ? "" : flowId} version={Number(route.query.get("version") ?? 0) || 0} />
      </Suspense>
    );
  if (route.query.has("templates")) return <TemplateGallery projectId={projectId} />;
  return <FlowList projectId={projectId} offset={offsetOf(route.query)} />;
}

function FlowList(props: { projectId: string; offset: number }) {
  const s = useSession();
  const [list, setList] = useState<{ total: number; rows: FlowRow[] }>();
  const [error, setError] = useState<string>();
  useLoad(
    () => call<{ TotalCount: number; FlowSet: FlowRow[] }>("DescribeFlows", { ProjectId: props.projectId, Offset: props.offset, Limit: PAGE }),
    (r) => {
      setList({ total: r.TotalCount, rows: r.FlowSet });
      setError(undefined);
    },
    (e) => setError(describe(e)),
    [props.projectId, props.offset],
  );
  return (
    <section aria-labelledby="page-title">
      <div className="page-head">
        <h1 id="page-title">Flows</h1>
        {can(s, "CreateFlow") && (
          <div className="row-actions">
            <button type="button" onClick={() => navigate(withQuery({ flow: "new", offset: undefined }))}>
              New flow
            </button>
            <button type="button" className="secondary" onClick={() => navigate(withQuery({ templates: 1, offset: undefined }))}>
              New from template
            </button>
          </div>
        )}
      </div>
      <ErrorLine error={error} />
      <ListTable caption={`Flows of project ${props.projectId}`} columns={COLUMNS} empty="No flows yet." isEmpty={list?.rows.length === 0}>
        {list?.rows.map((f) => (
          <tr key={f.FlowId} data-flow={f.Name}>
            <th scope="row">
              <Link to={withQuery({ flow: f.FlowId, version: f.LatestVersion, offset: undefined })}>{f.Name}</Link>
            </th>
            <td>v{f.LatestVersion}</td>
            <td className="wide-only">{f.Description}</td>
            <td />
          </tr>
        ))}
      </ListTable>
      <Pager label="Pages of flows" offset={props.offset} total={list?.total ?? 0} />
    </section>
  );
}
