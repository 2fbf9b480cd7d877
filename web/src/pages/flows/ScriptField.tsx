// A script field of a node panel: the code editor, loaded on demand (its
// own chunk, so CodeMirror costs nothing until a script is shown), with a
// plain text area while it loads.
import { lazy, Suspense } from "react";
import type { ScriptEditorProps } from "./ScriptEditor";
import { placeMarks } from "./scriptMarks";
import type { ScriptMark } from "./scriptMarks";

const ScriptEditor = lazy(() => import("./ScriptEditor"));

// The editor's chunk imports nothing of the flow editor's own (only types): were it to, the flow
// editor's chunk would need a module namespace object, and its helper would land in the shell.
export function ScriptField(p: Omit<ScriptEditorProps, "marks"> & { marks: ScriptMark[] }) {
  return (
    <Suspense fallback={<textarea id={p.id} rows={8} value={p.value} readOnly aria-label={p.label} aria-busy="true" />}>
      <ScriptEditor {...p} marks={placeMarks(p.value, p.marks)} />
    </Suspense>
  );
}
