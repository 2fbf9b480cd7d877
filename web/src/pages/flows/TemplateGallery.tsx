// The template gallery of the Flows page (?templates=1): every flow
// template the server ships, with what it takes, and a name field to create
// a flow from one, which then opens in the editor. No canvas library here:
// the gallery is part of the console's shell.
import { useState } from "react";
import { call } from "../../api";
import { ErrorLine } from "../../components/ListTable";
import { describe } from "../../errors";
import { Link } from "../../Layout";
import { navigate, withQuery } from "../../router";
import { useAction } from "../../useAction";
import { useLoad } from "../../useLoad";

interface Template {
  Name: string;
  Description: string;
  Category: string;
  Parameters: { Name: string; Type: string; Default: unknown; Description: string }[];
  Zones: { Name: string; Kind: string }[];
  // Placeholder algorithm ids the template names for algorithms the user
  // brings (text-reading: alg-ocr); CreateFlow maps each to one of theirs.
  Algorithms?: string[];
  // Placeholders the user may map: the face templates' alg-face-descriptor
  // (an algorithm with an embedding output) stores each best shot's
  // embedding for SearchFaces.
  OptionalAlgorithms?: string[];
}

export function TemplateGallery(props: { projectId: string }) {
  const [list, setList] = useState<Template[]>();
  const [error, setError] = useState<string>();
  useLoad(() => call<{ TemplateSet: Template[] }>("DescribeFlowTemplates", {}), (r) => setList(r.TemplateSet), (e) => setError(describe(e)), []);
  return (
    <section aria-labelledby="page-title">
      <p>
        <Link to={withQuery({ templates: undefined })}>← All flows</Link>
      </p>
      <div className="page-head">
        <h1 id="page-title">New flow from a template</h1>
      </div>
      <ErrorLine error={error} />
      {list?.length === 0 && <p className="muted">No templates.</p>}
      <div className="template-grid">
        {list?.map((t) => <TemplateCard key={t.Name} t={t} projectId={props.projectId} />)}
      </div>
    </section>
  );
}

function TemplateCard(props: { t: Template; projectId: string }) {
  const { t } = props;
  const [name, setName] = useState(t.Name);
  const [algs, setAlgs] = useState<Record<string, string>>({});
  const placeholders = t.Algorithms ?? [];
  const optional = t.OptionalAlgorithms ?? [];
  const create = useAction();
  const submit = () => create.run(async () => {
    const params: Record<string, unknown> = { ProjectId: props.projectId, Name: name, TemplateName: t.Name };
    const mapped = Object.fromEntries(Object.entries(algs).filter(([, v]) => v !== ""));
    if (Object.keys(mapped).length > 0) params.TemplateAlgorithms = mapped;
    const r = await call<{ FlowId: string; Version: number }>("CreateFlow", params);
    navigate(withQuery({ templates: undefined, flow: r.FlowId, version: r.Version }));
  });
  return (
    <article className="card template-card" data-template={t.Name} aria-labelledby={`tpl-${t.Name}`}>
      <h2 id={`tpl-${t.Name}`}>{t.Name}</h2>
      <p className="muted small">{t.Category}</p>
      <p>{t.Description}</p>
      {t.Parameters.length > 0 && (
        <>
          <h3>Parameters</h3>
          <ul className="small">
            {t.Parameters.map((p) => (
              <li key={p.Name}>
                <code>{p.Name}</code> <span className="muted">{p.Type}{p.Default !== undefined && p.Default !== null ? `, default ${JSON.stringify(p.Default)}` : ""}</span>
                {p.Description && <> — {p.Description}</>}
              </li>
            ))}
          </ul>
        </>
      )}
      {t.Zones.length > 0 && (
        <p className="small">
          Draw on the device: {t.Zones.map((z) => `${z.Kind} "${z.Name}"`).join(", ")}
        </p>
      )}
      <form className="row-actions start" onSubmit={(e) => {
        e.preventDefault();
        void submit();
      }}>
        <label className="inline-field">
          <span>Flow name</span>
          <input value={name} maxLength={128} required onChange={(e) => setName(e.target.value)} />
        </label>
        {placeholders.map((a) => (
          <label key={a} className="inline-field">
            <span>Your algorithm for <code>{a}</code></span>
            <input value={algs[a] ?? ""} maxLength={64} required placeholder="alg-…"
              onChange={(e) => setAlgs({ ...algs, [a]: e.target.value.trim() })} />
          </label>
        ))}
        {optional.map((a) => (
          <label key={a} className="inline-field">
            <span>Optional: your algorithm for <code>{a}</code></span>
            <input value={algs[a] ?? ""} maxLength={64} placeholder="alg-… (none)"
              onChange={(e) => setAlgs({ ...algs, [a]: e.target.value.trim() })} />
          </label>
        ))}
        <button type="submit" disabled={create.busy}>{create.busy ? "Creating…" : "Create flow"}</button>
      </form>
      <ErrorLine error={create.error} />
    </article>
  );
}
