// A small router of our own over the History API: every page has a path
// (/devices), its state is in the query (?project=demo&offset=20), so a
// URL can be shared; the server answers index.html for every such path.
import { useEffect, useState } from "react";

export interface Route {
  path: string;
  query: URLSearchParams;
}

function current(): Route {
  return { path: window.location.pathname, query: new URLSearchParams(window.location.search) };
}

const listeners = new Set<() => void>();

/** navigate goes to url (path and query) and tells every useRoute. */
export function navigate(url: string, replace = false): void {
  if (replace) window.history.replaceState(null, "", url);
  else window.history.pushState(null, "", url);
  for (const f of listeners) f();
}

/** withQuery returns the current path with query keys set (undefined or "" removes one). */
export function withQuery(set: Record<string, string | number | undefined>, path = window.location.pathname): string {
  const q = new URLSearchParams(window.location.search);
  for (const [k, v] of Object.entries(set)) {
    if (v === undefined || v === "") q.delete(k);
    else q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/** useRoute answers the current route and follows navigation. */
export function useRoute(): Route {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const update = () => setRoute(current());
    listeners.add(update);
    window.addEventListener("popstate", update);
    return () => {
      listeners.delete(update);
      window.removeEventListener("popstate", update);
    };
  }, []);
  return route;
}
