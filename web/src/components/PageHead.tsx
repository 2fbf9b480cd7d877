import { navigate, withQuery } from "../router";

/** PageHead is a page's title, with a button that opens its form (?add=1) when the person may use it and it is closed. */
export function PageHead(props: { title: string; add?: string | false }) {
  return (
    <div className="page-head">
      <h1 id="page-title">{props.title}</h1>
      {props.add && (
        <button type="button" onClick={() => navigate(withQuery({ add: 1 }))}>
          {props.add}
        </button>
      )}
    </div>
  );
}

/** closeForm answers a form's onDone: it closes the form (drops ?add=) and reloads the list when something changed. */
export function closeForm(reload: () => void): (changed: boolean) => void {
  return (changed) => {
    navigate(withQuery({ add: undefined }));
    if (changed) reload();
  };
}
