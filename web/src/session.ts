import { createContext, useContext } from "react";
import type { MyPermissions, MyProject } from "./types";

/** Session is the signed-in person, what they may do, and the project in view. */
export interface Session {
  me: MyPermissions;
  project: MyProject | undefined;
  setProject(id: string): void;
  signOut(): void;
}

export const SessionContext = createContext<Session | null>(null);

/** useSession answers the session of the signed-in layout. */
export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error("useSession outside the signed-in layout");
  return s;
}

/** can tells whether the person may run action in the project in view. */
export function can(s: Session, action: string): boolean {
  return s.project?.Actions.includes(action) ?? false;
}
