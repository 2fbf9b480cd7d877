// Undo and redo of the editor's document edits: a bounded list of the
// documents before (past) and after (future) the one shown. Node positions
// are not part of the document, so dragging a node is not a step.

/** LIMIT is how many steps back the editor keeps. */
export const LIMIT = 100;

export interface History<T> {
  past: T[];
  present: T;
  future: T[];
  /** group is the batch of the last edit: edits of one batch are one step. */
  group?: number;
}

export function start<T>(present: T): History<T> {
  return { past: [], present, future: [] };
}

/**
 * record makes next the present; the old present becomes the last step
 * back, the steps forward are gone. An edit of the same group as the last
 * one joins its step (deleting a node removes its wires in the same step).
 */
export function record<T>(h: History<T>, next: T, group?: number, limit = LIMIT): History<T> {
  if (Object.is(next, h.present)) return h;
  if (group !== undefined && group === h.group) return { ...h, present: next, future: [] };
  return { past: [...h.past, h.present].slice(-limit), present: next, future: [], group };
}

export function undo<T>(h: History<T>): History<T> {
  const prev = h.past[h.past.length - 1];
  if (h.past.length === 0) return h;
  return { past: h.past.slice(0, -1), present: prev as T, future: [h.present, ...h.future].slice(0, LIMIT) };
}

export function redo<T>(h: History<T>): History<T> {
  if (h.future.length === 0) return h;
  return { past: [...h.past, h.present], present: h.future[0] as T, future: h.future.slice(1) };
}

export type HistoryAction<T> =
  | { type: "apply"; edit: (present: T) => T; group?: number }
  | { type: "reset"; present: T }
  | { type: "undo" }
  | { type: "redo" };

/** historyReducer is the editor's document state for useReducer: edits are recorded, a reset (a version loaded) forgets the steps. */
export function historyReducer<T>(h: History<T>, a: HistoryAction<T>): History<T> {
  switch (a.type) {
    case "apply":
      return record(h, a.edit(h.present), a.group);
    case "reset":
      return start(a.present);
    case "undo":
      return undo(h);
    case "redo":
      return redo(h);
  }
}

let batchId = 0;
let batchOpen = false;

/** batch answers the same number for every call of one task of the event loop (one key press, one click): the group of its edits. */
export function batch(): number {
  if (!batchOpen) {
    batchOpen = true;
    batchId++;
    setTimeout(() => (batchOpen = false), 0);
  }
  return batchId;
}
