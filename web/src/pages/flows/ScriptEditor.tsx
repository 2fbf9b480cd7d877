// The code editor of a script field (a config property with format
// "script"): CodeMirror 6 with Python highlighting (Starlark is a Python
// dialect), line numbers, and the server's errors for the field underlined
// at their line and column. Loaded on demand, in a chunk of its own, when
// a node panel first shows a script.
//
// The editor lives in a shadow root: CodeMirror styles itself with a
// <style> element in a document, which the console's Content-Security-
// Policy (style-src 'self') refuses, but with a constructed style sheet in
// a shadow root, which it allows. (Without its styles the editor loses
// white-space: pre, and the browser types no-break spaces.) ids do not
// cross a shadow root, so the editor is named by aria-label.
import { useEffect, useLayoutEffect, useRef } from "react";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { bracketMatching, defaultHighlightStyle, indentOnInput, indentUnit, syntaxHighlighting } from "@codemirror/language";
import { Annotation, EditorState } from "@codemirror/state";
import { drawSelection, EditorView, highlightActiveLine, highlightActiveLineGutter, keymap, lineNumbers } from "@codemirror/view";
import { python } from "@codemirror/lang-python";
import { lintGutter, setDiagnostics } from "@codemirror/lint";
import type { PlacedMark } from "./scriptMarks";

export interface ScriptEditorProps {
  id: string;
  value: string;
  readOnly: boolean;
  /** the server's errors for the field, placed in value (markRange) */
  marks: PlacedMark[];
  /** the field's name, for assistive technology */
  label: string;
  onChange(text: string): void;
}

const THEME = EditorView.theme({
  "&": { border: "1px solid var(--line)", borderRadius: "6px", fontSize: "0.82rem", backgroundColor: "var(--card)" },
  "&.cm-focused": { outline: "2px solid var(--accent)" },
  ".cm-scroller": { fontFamily: "ui-monospace, monospace", minHeight: "8rem", maxHeight: "22rem" },
});

// At most this many edits are remembered as waiting for their echo (a person types far fewer between two renders).
const MAX_PENDING = 256;

// Text set from outside (the document changed under the panel) is not the person's edit.
const external = Annotation.define<boolean>();

export default function ScriptEditor(p: ScriptEditorProps) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const onChange = useRef(p.onChange);
  const first = useRef(p.value);
  // What this editor reported through onChange and the parent has not echoed back yet (oldest first).
  const sent = useRef<string[]>([]);
  useEffect(() => {
    onChange.current = p.onChange;
  }, [p.onChange]);

  useEffect(() => {
    if (!host.current) return;
    const root = host.current.shadowRoot ?? host.current.attachShadow({ mode: "open" });
    const parent = document.createElement("div");
    root.replaceChildren(parent);
    const v = new EditorView({
      root,
      parent,
      state: EditorState.create({
        doc: first.current,
        extensions: [
          // What a script needs, not all of CodeMirror's basicSetup (no autocompletion, search or folding): a smaller chunk.
          lineNumbers(), highlightActiveLineGutter(), highlightActiveLine(), drawSelection(), history(), indentOnInput(), bracketMatching(),
          syntaxHighlighting(defaultHighlightStyle, { fallback: true }), keymap.of([...defaultKeymap, ...historyKeymap, indentWithTab]),
          python(), indentUnit.of("    "), lintGutter(), THEME,
          EditorState.readOnly.of(p.readOnly), EditorView.editable.of(!p.readOnly),
          EditorView.contentAttributes.of({ "aria-label": p.label, "aria-multiline": "true" }),
          EditorView.updateListener.of((u) => {
            if (!u.docChanged || u.transactions.some((t) => t.annotation(external))) return;
            const text = u.state.doc.toString();
            sent.current.push(text);
            if (sent.current.length > MAX_PENDING) sent.current.shift();
            onChange.current(text);
          }),
        ],
      }),
    });
    view.current = v;
    return () => {
      v.destroy();
      view.current = null;
    };
  }, [p.readOnly, p.label]);

  // A value the editor itself sent is an echo, not a new text: the parent may render it after
  // the person has typed further (a validation answer re-rendering the panel between two
  // keys), and writing it back would drop those keys and move the cursor. Only a value the
  // editor never sent replaces the text. Applied during commit, before the next key can arrive.
  useLayoutEffect(() => {
    const v = view.current;
    if (!v) return;
    const echo = sent.current.indexOf(p.value);
    if (echo >= 0) {
      sent.current.splice(0, echo + 1);
      return;
    }
    if (v.state.doc.toString() !== p.value) {
      sent.current = [];
      v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: p.value }, annotations: external.of(true) });
    }
  }, [p.value]);

  // The marks are the last validation's; keyed by their text so a re-render does not move them back.
  const key = JSON.stringify(p.marks);
  useEffect(() => {
    const v = view.current;
    if (!v) return;
    const marks = JSON.parse(key) as PlacedMark[];
    const end = v.state.doc.length;
    v.dispatch(setDiagnostics(v.state, marks.map((m) => ({ from: Math.min(m.from, end), to: Math.min(m.to, end), severity: "error" as const, message: m.message,
      source: `line ${m.line}, column ${m.column}` }))));
  }, [key, p.readOnly]);

  return <div ref={host} id={p.id} className="script-editor" data-testid="script-editor" data-readonly={p.readOnly ? "true" : undefined} />;
}
