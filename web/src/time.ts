/**
 * utcTime turns a datetime-local value (the browser's time zone) into the
 * RFC 3339 UTC time the API takes; a value it cannot read goes as typed, so
 * that the server names the field.
 */
export function utcTime(v: string): string {
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? v : d.toISOString();
}
