import type { ReactNode } from "react";

/** Column is a list's column; a wide one is hidden on a phone. */
export interface Column {
  label: string;
  wide?: boolean;
}

/** ErrorLine shows an error above a list or form, if there is one. */
export function ErrorLine(props: { error: string | undefined }) {
  if (!props.error) return null;
  return (
    <p className="form-error" role="alert">
      {props.error}
    </p>
  );
}

/** ListTable is a page's list: its columns, a last one for the rows' buttons, and a line when it is empty. */
export function ListTable(props: { caption: string; columns: readonly Column[]; empty: string; isEmpty: boolean; children: ReactNode }) {
  return (
    <div className="table-wrap">
      <table>
        <caption className="visually-hidden">{props.caption}</caption>
        <thead>
          <tr>
            {props.columns.map((c) => (
              <th key={c.label} scope="col" className={c.wide ? "wide-only" : undefined}>
                {c.label}
              </th>
            ))}
            <th scope="col">
              <span className="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {props.children}
          {props.isEmpty && (
            <tr>
              <td colSpan={props.columns.length + 1}>{props.empty}</td>
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}
