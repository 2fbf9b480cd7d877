// What a person typed, turned into the JSON an action takes. Anything that
// does not parse goes as typed, so that the server refuses it naming the
// field, and the form shows that next to it.

/** numberOr answers a number typed as one, otherwise the text. */
export function numberOr(text: string): number | string {
  const n = Number(text);
  return text.trim() !== "" && !Number.isNaN(n) ? n : text;
}

/** listOf reads a list typed with commas or spaces. */
export function listOf(text: string): string[] {
  return text.split(/[\s,]+/).filter(Boolean);
}
