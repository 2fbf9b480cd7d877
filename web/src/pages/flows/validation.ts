// ValidateFlow's errors, and where the editor shows each one.
import type { GraphEdge } from "./graph";

/** ValidationError is one of ValidateFlow's ErrorSet. */
export interface ValidationError {
  NodeId: string;
  Edge?: { From: string; To: string } | null;
  Field: string;
  Message: string;
  /** Line and Column (1-based) place a script's error in the field's text; 0 or absent otherwise. */
  Line?: number;
  Column?: number;
}

/** errorsByPlace pins each error on the wire it names, else on its node (the top one for a body's "outer/inner"), else on the document. */
export function errorsByPlace(errors: readonly ValidationError[], edges: readonly GraphEdge[]) {
  const onNode: Record<string, string[]> = {};
  const onEdge: Record<string, string[]> = {};
  const onDoc: string[] = [];
  for (const e of errors) {
    const text = e.Field ? `${e.Field}: ${e.Message}` : e.Message;
    if (e.Edge?.From && e.Edge.To) {
      const input = e.Field.startsWith("inputs.") ? e.Field.slice(7) : "";
      const between = edges.filter((g) => g.source === e.Edge?.From && g.target === e.Edge.To);
      const wire = between.find((g) => g.data.input === input) ?? between[0];
      if (wire) {
        (onEdge[wire.id] ??= []).push(text);
        continue;
      }
    }
    const top = e.NodeId.split("/")[0] ?? "";
    if (top) (onNode[top] ??= []).push(e.NodeId.includes("/") ? `${e.NodeId}: ${text}` : text);
    else onDoc.push(text);
  }
  return { onNode, onEdge, onDoc };
}

