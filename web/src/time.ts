/**
 * utcTime turns a datetime-local value (the browser's time zone) into the
 * RFC 3339 UTC time the API takes; a value it cannot read goes as typed, so
 * that the server names the field.
 */
export function utcTime(v: string): string {
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? v : d.toISOString();
}

/** shortTime shows an RFC 3339 time in the browser's time zone, to the minute ("2026-12-06 14:56"); what it cannot read shows as given. */
export function shortTime(v: string): string {
  const d = new Date(v);
  if (!v || Number.isNaN(d.getTime())) return v;
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}
