import { nav } from "../nav";
import { useRoute } from "../router";

/** Planned stands for a page a later change of the console builds. */
export function Planned() {
  const route = useRoute();
  const page = nav.find((p) => p.path === route.path);
  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title">{page?.label ?? "Page"}</h1>
      <p>This page is not built yet. The actions behind it work through the API (docs/api.md).</p>
    </section>
  );
}
