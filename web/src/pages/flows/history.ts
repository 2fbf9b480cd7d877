// Undo and redo of the editor's document edits: a bounded list of the
// documents before (past) and after (future) the one shown. Node positions
// are not part of the document, so dragging a node is not a step.

/** LIMIT is how many steps back the editor keeps. */
export const LIMIT = 100;

export interface History<T> {
  past: T[];
  present: T;
  future: T[];
}

export function start<T>(present: T): History<T> {
  return { past: [], present, future: [] };
}

/** record makes next the present; the old present becomes the last step back, the steps forward are gone. */
export function record<T>(h: History<T>, next: T, limit = LIMIT): History<T> {
  if (Object.is(next, h.present)) return h;
  return { past: [...h.past, h.present].slice(-limit), present: next, future: [] };
}

export function undo<T>(h: History<T>): History<T> {
  const prev = h.past[h.past.length - 1];
  if (h.past.length === 0) return h;
  return { past: h.past.slice(0, -1), present: prev as T, future: [h.present, ...h.future] };
}

export function redo<T>(h: History<T>): History<T> {
  if (h.future.length === 0) return h;
  return { past: [...h.past, h.present], present: h.future[0] as T, future: h.future.slice(1) };
}

export type HistoryAction<T> =
  | { type: "apply"; edit: (present: T) => T }
  | { type: "reset"; present: T }
  | { type: "undo" }
  | { type: "redo" };

/** historyReducer is the editor's document state for useReducer: edits are recorded, a reset (a version loaded) forgets the steps. */
export function historyReducer<T>(h: History<T>, a: HistoryAction<T>): History<T> {
  switch (a.type) {
    case "apply":
      return record(h, a.edit(h.present));
    case "reset":
      return start(a.present);
    case "undo":
      return undo(h);
    case "redo":
      return redo(h);
  }
}
