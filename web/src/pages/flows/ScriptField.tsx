// A script field of a node panel: the code editor, loaded on demand (its
// own chunk, so CodeMirror costs nothing until a script is shown), with a
// plain text area while it loads.
import { lazy, Suspense } from "react";
import type { ScriptEditorProps } from "./ScriptEditor";

const ScriptEditor = lazy(() => import("./ScriptEditor"));

export function ScriptField(p: ScriptEditorProps) {
  return (
    <Suspense fallback={<textarea id={p.id} rows={8} value={p.value} readOnly aria-labelledby={p.labelledBy} aria-busy="true" />}>
      <ScriptEditor {...p} />
    </Suspense>
  );
}
