// Where the server's script errors go in the code editor: ValidateFlow
// places a script's error at a 1-based line and column of the field's text
// (a syntax error, an undefined name); the editor underlines from there to
// the end of the word. Kept free of CodeMirror so it is tested alone.
import type { ValidationError } from "./validation";

/** ScriptMark is one error placed in a script's text. */
export interface ScriptMark {
  line: number;
  column: number;
  message: string;
}

/** PlacedMark is a mark with the range of the text it underlines. */
export interface PlacedMark extends ScriptMark {
  from: number;
  to: number;
}

/** placeMarks places each mark in text. */
export function placeMarks(text: string, marks: readonly ScriptMark[]): PlacedMark[] {
  return marks.map((m) => ({ ...m, ...markRange(text, m) }));
}

/** scriptMarks answers the errors of field that carry a position. */
export function scriptMarks(errors: readonly ValidationError[], field: string): ScriptMark[] {
  return errors.filter((e) => e.Field === field && (e.Line ?? 0) > 0).map((e) => ({ line: e.Line ?? 0, column: e.Column ?? 0, message: e.Message }));
}

/**
 * markRange answers the text range [from, to) a mark underlines: from the
 * column (clamped to its line; a line past the end is the last line) to the
 * end of the word there, or one character when no word starts there; at
 * the end of a line (Starlark's "got newline"), its last character, so the
 * mark is seen; nothing only on an empty line.
 */
export function markRange(text: string, m: { line: number; column: number }): { from: number; to: number } {
  const lines = text.split("\n");
  const li = Math.min(Math.max(m.line, 1), lines.length) - 1;
  let start = 0;
  for (let i = 0; i < li; i++) start += (lines[i] ?? "").length + 1;
  const line = lines[li] ?? "";
  const col = Math.min(Math.max(m.column, 1) - 1, Math.max(line.length - 1, 0));
  const word = /^[A-Za-z0-9_]+/.exec(line.slice(col));
  const len = word ? word[0].length : col < line.length ? 1 : 0;
  return { from: start + col, to: start + col + len };
}
