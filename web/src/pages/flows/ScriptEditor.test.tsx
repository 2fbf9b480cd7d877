import { afterEach, describe, expect, it } from "vitest";
import { cleanup, render } from "@testing-library/react";
import { EditorView } from "@codemirror/view";
import ScriptEditor from "./ScriptEditor";

afterEach(cleanup);

function editorOf(container: HTMLElement): EditorView {
  const root = container.querySelector(".script-editor")?.shadowRoot;
  const content = root?.querySelector(".cm-content");
  const view = content ? EditorView.findFromDOM(content as HTMLElement) : null;
  if (!view) throw new Error("no editor");
  return view;
}

// A person types one key at a time; the panel re-renders with what the editor reported, sometimes late.
function typeAtEnd(view: EditorView, text: string) {
  view.dispatch({ changes: { from: view.state.doc.length, insert: text }, selection: { anchor: view.state.doc.length + text.length }, userEvent: "input.type" });
}

describe("ScriptEditor", () => {
  it("keeps keys typed after a value it sent when that value is rendered late", () => {
    const sent: string[] = [];
    const props = { id: "s", readOnly: false, marks: [], label: "script", onChange: (t: string) => sent.push(t) };
    const { container, rerender } = render(<ScriptEditor {...props} value="" />);
    const view = editorOf(container);
    typeAtEnd(view, "a");
    typeAtEnd(view, "b");
    expect(sent).toEqual(["a", "ab"]);
    // The parent renders the first report after the second key (a validation answer arrived in between).
    rerender(<ScriptEditor {...props} value="a" />);
    expect(view.state.doc.toString()).toBe("ab");
    typeAtEnd(view, "c");
    rerender(<ScriptEditor {...props} value="ab" />);
    rerender(<ScriptEditor {...props} value="abc" />);
    expect(view.state.doc.toString()).toBe("abc");
    expect(view.state.selection.main.head).toBe(3);
  });

  it("takes a text it never sent as the new content", () => {
    const props = { id: "s", readOnly: false, marks: [], label: "script", onChange: () => undefined };
    const { container, rerender } = render(<ScriptEditor {...props} value="x = 1" />);
    const view = editorOf(container);
    typeAtEnd(view, "2");
    rerender(<ScriptEditor {...props} value="y = 3" />);
    expect(view.state.doc.toString()).toBe("y = 3");
  });
});
