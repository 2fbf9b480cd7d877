import type { MouseEvent, ReactNode } from "react";
import { nav } from "./nav";
import { navigate, useRoute } from "./router";
import { can, useSession } from "./session";

/** Link navigates within the console; a modified click opens a new tab as usual. */
export function Link(props: { to: string; children: ReactNode; current?: boolean; className?: string }) {
  function click(e: MouseEvent<HTMLAnchorElement>) {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(props.to);
  }
  return (
    <a href={props.to} onClick={click} aria-current={props.current ? "page" : undefined} className={props.className}>
      {props.children}
    </a>
  );
}

/** Layout is the signed-in frame: navigation, project switcher, sign out. */
export function Layout(props: { children: ReactNode }) {
  const s = useSession();
  const route = useRoute();
  const entries = nav.filter((p) => p.needs === "" || can(s, p.needs));
  const project = s.project?.ProjectId;
  return (
    <div className="layout">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <span className="brand">Tianshu</span>
        <label className="project">
          <span>Project</span>
          <select value={project ?? ""} onChange={(e) => s.setProject(e.target.value)} aria-label="Project">
            {s.me.ProjectSet.map((p) => (
              <option key={p.ProjectId} value={p.ProjectId}>
                {p.Name || p.ProjectId}
              </option>
            ))}
          </select>
        </label>
        <Link to={project ? `/account?project=${encodeURIComponent(project)}` : "/account"} className="who" current={route.path === "/account"}>
          <span className="visually-hidden">My account: </span>
          {s.me.UserName}
        </Link>
        <button type="button" className="secondary" onClick={s.signOut}>
          Sign out
        </button>
      </header>
      <nav className="sidenav" aria-label="Pages">
        <ul>
          {entries.map((p) => (
            <li key={p.path}>
              <Link to={project ? `${p.path}?project=${encodeURIComponent(project)}` : p.path} current={route.path === p.path}>
                {p.label}
              </Link>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" className="content" tabIndex={-1}>
        {s.project ? props.children : <p>You hold no role in any project yet: ask an administrator to add you to one.</p>}
      </main>
    </div>
  );
}
