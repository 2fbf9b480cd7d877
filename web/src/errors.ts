import { ApiError } from "./api";

/** FormErrors are a form's errors: per field, and one for the whole form. */
export interface FormErrors {
  fields: Record<string, string>;
  form?: string;
}

export const noErrors: FormErrors = { fields: {} };

/**
 * formErrors places an action's error: next to the field it names when the
 * form has that field (prefix, e.g. "Device.", is dropped first), or the
 * field it is part of ("Sources[0].Id" goes to "Sources" unless the form
 * has "Sources[0].Id" itself, as "Parameters.minFaceSize"), otherwise above
 * the form.
 */
export function formErrors(e: unknown, fields: readonly string[], prefix = ""): FormErrors {
  if (!(e instanceof ApiError)) return { fields: {}, form: String(e) };
  let f = e.field;
  if (f && prefix && f.startsWith(prefix)) f = f.slice(prefix.length);
  if (f && fields.includes(f)) return { fields: { [f]: e.detail } };
  const top = f?.split(/[.[]/)[0];
  if (top && fields.includes(top)) return { fields: { [top]: e.detail } };
  return { fields: {}, form: describe(e) };
}

/** describe is an error as a person reads it. */
export function describe(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.code === "AuthFailure.UnauthorizedOperation") return `Not allowed: ${e.message}`;
    return `${e.message} (${e.code})`;
  }
  return String(e);
}
