import { Link } from "../Layout";
import { withQuery } from "../router";

/** PAGE is the rows a server-paged list asks for at a time. */
export const PAGE = 20;

/** Pager shows where a server-paged list is and links to the pages beside it (?offset=). */
export function Pager(props: { label: string; offset: number; total: number; page?: number }) {
  const page = props.page ?? PAGE;
  const { offset, total } = props;
  return (
    <nav className="pager" aria-label={props.label}>
      <span>
        {total === 0 ? "0" : `${offset + 1}–${Math.min(offset + page, total)}`} of {total}
      </span>
      {offset > 0 && <Link to={withQuery({ offset: Math.max(0, offset - page) || undefined })}>Previous</Link>}
      {offset + page < total && <Link to={withQuery({ offset: offset + page })}>Next</Link>}
    </nav>
  );
}

/** offsetOf reads ?offset= of a paged list. */
export function offsetOf(query: URLSearchParams): number {
  return Math.max(0, Number(query.get("offset")) || 0);
}
