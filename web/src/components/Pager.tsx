import { Link } from "../Layout";
import { withQuery } from "../router";

/** PAGE is the rows a server-paged list asks for at a time. */
export const PAGE = 20;

/** Pager shows where a server-paged list is and links to the pages beside it (?offset=, or ?<param>= where a page has two lists). */
export function Pager(props: { label: string; offset: number; total: number; page?: number; param?: string }) {
  const page = props.page ?? PAGE;
  const { offset, total } = props;
  const key = props.param ?? "offset";
  return (
    <nav className="pager" aria-label={props.label}>
      <span>
        {total === 0 ? "0" : `${offset + 1}–${Math.min(offset + page, total)}`} of {total}
      </span>
      {offset > 0 && <Link to={withQuery({ [key]: Math.max(0, offset - page) || undefined })}>Previous</Link>}
      {offset + page < total && <Link to={withQuery({ [key]: offset + page })}>Next</Link>}
    </nav>
  );
}

/** offsetOf reads ?offset= (or ?<param>=) of a paged list. */
export function offsetOf(query: URLSearchParams, param = "offset"): number {
  return Math.max(0, Number(query.get(param)) || 0);
}
