// The device form is generated from the driver's schema (DescribeDeviceDrivers):
// these are its pure parts, from a device to the form's text values and back.

/** OptionSpec is one field or option of a driver, as DescribeDeviceDrivers describes it. */
export interface OptionSpec {
  Name: string;
  Type: string;
  Required: boolean;
  Default?: unknown;
  Description: string;
  Enum?: string[];
  Secret: boolean;
  Min?: number;
  Max?: number;
  PlatformAdmin?: boolean;
}

/** DriverSpec is a driver with the common fields it reads and its own options. */
export interface DriverSpec {
  Name: string;
  Description: string;
  Fields: OptionSpec[];
  Options: OptionSpec[];
  OpenOptions: boolean;
  PlatformAdmin: boolean;
}

/** Stored is what the form needs of a saved device (DescribeDevices). */
export interface Stored {
  Address: string;
  Username: string;
  HasPassword: boolean;
  Options: Record<string, unknown> | null;
  Fps: number;
  Width: number;
}

/** Values are the form's texts, keyed by request field: "Address", "Options.loop". */
export type Values = Record<string, string>;

/** keyOf is the form key (and the server's error field) of a common field or an option. */
export function keyOf(o: OptionSpec, option: boolean): string {
  return option ? `Options.${o.Name}` : o.Name;
}

/** toText shows a stored value in a text input. */
export function toText(v: unknown, type: string): string {
  if (v === undefined || v === null) return "";
  if (type === "strings" && Array.isArray(v)) return v.map((x) => (typeof x === "string" ? x : JSON.stringify(x))).join("\n");
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/** fromText reads a text back as the option's type; what does not parse goes as typed, for the server to name. */
export function fromText(text: string, type: string): unknown {
  const t = type === "text" ? text : text.trim();
  switch (type) {
    case "boolean":
      return t === "true" ? true : t === "false" ? false : t;
    case "integer":
    case "number":
      return t !== "" && Number.isFinite(Number(t)) ? Number(t) : t;
    case "duration":
      return t !== "" && Number.isFinite(Number(t)) ? Number(t) : t;
    case "strings":
      return t.split("\n").map((s) => s.trim()).filter((s) => s !== "");
    default:
      return t;
  }
}

/** initialValues fills the form for a new device (empty: defaults apply) or a saved one; secrets are never shown. */
export function initialValues(spec: DriverSpec, d?: Stored, prefill: Values = {}): Values {
  const v: Values = {};
  for (const f of spec.Fields) {
    let s = "";
    if (d && !f.Secret) {
      const x = (d as unknown as Record<string, unknown>)[f.Name];
      s = typeof x === "number" && x === 0 ? "" : toText(x, f.Type);
    }
    v[f.Name] = prefill[f.Name] ?? s;
  }
  for (const o of spec.Options) {
    const k = keyOf(o, true);
    v[k] = prefill[k] ?? (d && !o.Secret ? toText(d.Options?.[o.Name], o.Type) : "");
  }
  return v;
}

/** fieldNames lists the form's fields, for placing the server's errors next to them. */
export function fieldNames(spec: DriverSpec | undefined, extra: readonly string[]): string[] {
  if (!spec) return [...extra];
  return [...extra, ...spec.Fields.map((f) => keyOf(f, false)), ...spec.Options.map((o) => keyOf(o, true))];
}

/**
 * deviceBody is the request's device part (Address, credentials, Fps,
 * Width, Options). For a new device, empty fields are left out (defaults
 * apply). For a change (stored set), a secret left blank is left out, so
 * the server keeps it; an option whose text is unchanged keeps its stored
 * value as it was (masked secret entries included), and options the
 * schema does not list (an adapter's own) are kept.
 */
export function deviceBody(spec: DriverSpec, values: Values, stored?: Stored): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of spec.Fields) {
    const text = values[f.Name] ?? "";
    if (f.Secret) {
      if (text !== "") out[f.Name] = text;
      continue;
    }
    if (text === "") {
      if (stored && f.Name !== "Address") out[f.Name] = f.Type === "string" ? "" : 0;
      continue;
    }
    out[f.Name] = f.Type === "string" ? text : fromText(text, f.Type);
  }
  const opts: Record<string, unknown> = {};
  const listed = new Set(spec.Options.map((o) => o.Name));
  if (stored?.Options) {
    for (const [k, x] of Object.entries(stored.Options)) if (!listed.has(k)) opts[k] = x;
  }
  for (const o of spec.Options) {
    const text = values[keyOf(o, true)] ?? "";
    if (text === "") continue;
    const before = stored?.Options?.[o.Name];
    opts[o.Name] = stored && before !== undefined && toText(before, o.Type) === text ? before : fromText(text, o.Type);
  }
  if (Object.keys(opts).length > 0 || stored) out.Options = opts;
  return out;
}

/** hint is a field's help line: its description, its default and its range. */
export function hint(o: OptionSpec): string {
  const parts = [o.Description];
  if (o.Default !== undefined && o.Default !== null && o.Default !== "") parts.push(`Default: ${toText(o.Default, o.Type)}.`);
  if (o.Min !== undefined && o.Max !== undefined) parts.push(`${o.Min} to ${o.Max}.`);
  if (o.Secret) parts.push("Write-only: leave blank to keep the saved value.");
  return parts.filter(Boolean).join(" ");
}
