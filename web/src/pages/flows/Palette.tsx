// The palette: every node kind the server describes, and the project's algorithms, grouped by category.
import type { DragEvent } from "react";
import type { NodeKinds } from "./graph";

export const CATEGORIES = ["algorithm", "logic", "stream", "sink", "utility"];

export function Palette(props: { kinds: NodeKinds; onAdd(kind: string, config: Record<string, unknown> | undefined, base: string): void }) {
  const drag = (e: DragEvent, payload: object) => {
    e.dataTransfer.setData("application/x-tianshu-node", JSON.stringify(payload));
    e.dataTransfer.effectAllowed = "copy";
  };
  const others = props.kinds.KindSet.filter((k) => !CATEGORIES.includes(k.Category));
  return (
    <nav className="flow-palette" aria-label="Node kinds">
      {CATEGORIES.map((cat) => {
        const entries = cat === "algorithm"
          ? props.kinds.AlgorithmSet.map((a) => ({ key: a.AlgorithmId, label: a.Name || a.AlgorithmId, doc: a.Description, kind: a.Kind || "algorithm", config: a.Config, base: baseName(a.AlgorithmId) }))
          : props.kinds.KindSet.filter((k) => k.Category === cat).map((k) => ({ key: k.Name, label: k.Name, doc: k.Doc, kind: k.Name, config: undefined, base: k.Name }));
        if (entries.length === 0) return null;
        return (
          <details key={cat} open={cat === "algorithm"}>
            <summary>{cat}</summary>
            <ul>
              {entries.map((x) => (
                <li key={x.key}>
                  <button type="button" className="secondary palette-entry" draggable title={x.doc} aria-label={`Add ${x.label}`}
                    onDragStart={(e) => drag(e, { kind: x.kind, config: x.config, base: x.base })} onClick={() => props.onAdd(x.kind, x.config, x.base)}>
                    {x.label}
                  </button>
                </li>
              ))}
            </ul>
          </details>
        );
      })}
      {others.length > 0 && <p className="muted small">Also: {others.map((k) => k.Name).join(", ")}</p>}
    </nav>
  );
}

function baseName(algorithmId: string): string {
  return algorithmId.replace(/^alg-/, "").replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

