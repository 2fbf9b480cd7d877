import { useCallback, useEffect, useMemo, useState } from "react";
import type { ComponentType } from "react";
import { api, call } from "./api";
import { describe } from "./errors";
import { Layout } from "./Layout";
import { navigate, useRoute, withQuery } from "./router";
import { SessionContext } from "./session";
import type { Session } from "./session";
import type { MyPermissions } from "./types";
import { Algorithms } from "./pages/Algorithms";
import { Apps } from "./pages/Apps";
import { Account } from "./pages/Account";
import { Audit } from "./pages/Audit";
import { Devices } from "./pages/Devices";
import { EdgeNodes } from "./pages/EdgeNodes";
import { Flows } from "./pages/Flows";
import { Members } from "./pages/Members";
import { Live } from "./pages/Live";
import { Overview } from "./pages/Overview";
import { Planned } from "./pages/Planned";
import { Records } from "./pages/Records";
import { Search } from "./pages/Search";
import { Watchlists } from "./pages/Watchlists";
import { Subscriptions } from "./pages/Subscriptions";
import { Roles } from "./pages/Roles";
import { SignIn } from "./pages/SignIn";
import { Tasks } from "./pages/Tasks";
import { Users } from "./pages/Users";
import { Logs } from "./pages/Logs";

const components: Record<string, ComponentType> = {
  "/overview": Overview,
  "/devices": Devices,
  "/sites": EdgeNodes,
  "/algorithms": Algorithms,
  "/flows": Flows,
  "/live": Live,
  "/tasks": Tasks,
  "/records": Records,
  "/search": Search,
  "/watchlists": Watchlists,
  "/apps": Apps,
  "/subscriptions": Subscriptions,
  "/audit": Audit,
  "/members": Members,
  "/roles": Roles,
  "/users": Users,
  "/logs": Logs,
  "/account": Account,
};

type State = { kind: "signedOut" } | { kind: "loading" } | { kind: "failed"; error: string } | { kind: "ready"; me: MyPermissions };

/** App is the console: the sign-in page, or the signed-in layout around the page of the URL. */
export function App() {
  const route = useRoute();
  const [state, setState] = useState<State>(() => (api.signedIn ? { kind: "loading" } : { kind: "signedOut" }));

  const load = useCallback(async () => {
    try {
      const me = await call<MyPermissions>("DescribeMyPermissions");
      setState({ kind: "ready", me });
    } catch (e) {
      setState(api.signedIn ? { kind: "failed", error: describe(e) } : { kind: "signedOut" });
    }
  }, []);

  useEffect(() => api.onSessionEnded(() => setState({ kind: "signedOut" })), []);
  useEffect(() => {
    if (state.kind === "loading") void load();
  }, [state.kind, load]);

  const me = state.kind === "ready" ? state.me : undefined;
  const projectId = route.query.get("project") ?? "";
  const session = useMemo<Session | null>(() => {
    if (!me) return null;
    const project = me.ProjectSet.find((p) => p.ProjectId === projectId) ?? me.ProjectSet[0];
    return {
      me,
      project,
      // Every other query key names something of the old project: switching drops them.
      setProject: (id) => navigate(`${window.location.pathname}?${new URLSearchParams({ project: id }).toString()}`),
      signOut: () => {
        void api.logout().finally(() => {
          setState({ kind: "signedOut" });
          navigate("/", true);
        });
      },
    };
  }, [me, projectId]);

  // / opens the overview of the first project.
  const atRoot = route.path === "/" || route.path === "/index.html";
  const firstProject = session?.project?.ProjectId;
  useEffect(() => {
    if (session && atRoot) navigate(withQuery({ project: firstProject }, "/overview"), true);
  }, [session, atRoot, firstProject]);

  if (state.kind === "signedOut") return <SignIn onSignedIn={() => setState({ kind: "loading" })} />;
  if (state.kind === "failed")
    return (
      <main className="signin">
        <p role="alert" className="form-error">
          {state.error}
        </p>
        <button type="button" onClick={() => setState({ kind: "loading" })}>
          Try again
        </button>
      </main>
    );
  if (!session || atRoot) return <p className="loading">Loading…</p>;
  const Page = components[route.path] ?? Planned;
  return (
    <SessionContext.Provider value={session}>
      <Layout>
        <Page key={`${route.path}|${session.project?.ProjectId ?? ""}`} />
      </Layout>
    </SessionContext.Provider>
  );
}
