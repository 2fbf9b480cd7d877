// The one way the console talks to Tianshu: the action API at POST / with
// the X-TC-Action header, the session cookie (set by Login, HttpOnly) and
// the CSRF token Login answered, sent on every call.

/** ApiError is an action's error answer, with the field its message names. */
export class ApiError extends Error {
  readonly code: string;
  readonly field: string | undefined;
  readonly requestId: string;

  constructor(code: string, message: string, requestId = "") {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.field = fieldOf(message);
    this.requestId = requestId;
  }

  /** detail is the message without its leading "Field: ". */
  get detail(): string {
    return this.field ? this.message.slice(this.field.length + 2) : this.message;
  }

  /** sessionEnded tells that the person must sign in again. */
  get sessionEnded(): boolean {
    return SESSION_CODES.has(this.code);
  }
}

const SESSION_CODES = new Set([
  "AuthFailure.InvalidSession",
  "AuthFailure.SessionExpired",
  "AuthFailure.InvalidCSRFToken",
]);

// A field is what the API puts before the first ": " of a message:
// "Name: required", "Options.loop: not a boolean", "Sources[0].Id: …".
const FIELD = /^([A-Z][A-Za-z0-9_-]*(?:\[\d+\])?(?:\.[A-Za-z0-9_-]+(?:\[\d+\])?)*): /;

/** fieldOf returns the field an error message names, if any. */
export function fieldOf(message: string): string | undefined {
  return FIELD.exec(message)?.[1];
}

/** retryAfterSeconds reads "retry after N s" from a LoginLocked or rate limit message. */
export function retryAfterSeconds(message: string): number | undefined {
  const m = /retry after (\d+) s/.exec(message);
  return m?.[1] ? Number(m[1]) : undefined;
}

const CSRF_KEY = "tianshu.csrf";

/** Storage keeps the CSRF token across reloads and tabs of one origin. */
export interface TokenStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

type Fetch = (input: string, init: RequestInit) => Promise<Response>;

/** Client calls actions; one is made for the page (api below). */
export class Client {
  private readonly fetcher: Fetch;
  private readonly store: TokenStore;
  private readonly ended = new Set<() => void>();

  constructor(fetcher: Fetch, store: TokenStore) {
    this.fetcher = fetcher;
    this.store = store;
  }

  get signedIn(): boolean {
    return this.store.getItem(CSRF_KEY) !== null;
  }

  /** onSessionEnded registers f to run when a call finds the session gone. */
  onSessionEnded(f: () => void): () => void {
    this.ended.add(f);
    return () => this.ended.delete(f);
  }

  /** endSession forgets the token and tells every listener, for a session ended by a call that answered (LogoutEverywhere). */
  endSession(): void {
    this.store.removeItem(CSRF_KEY);
    for (const f of this.ended) f();
  }

  /** call runs action with body and answers its Response, or throws ApiError. */
  async call<T>(action: string, body: object = {}): Promise<T> {
    const headers: Record<string, string> = {
      "Content-Type": "application/json",
      "X-TC-Action": action,
    };
    const csrf = this.store.getItem(CSRF_KEY);
    if (csrf) headers["X-Tianshu-CSRF"] = csrf;
    let res: Response;
    try {
      res = await this.fetcher("/", { method: "POST", headers, body: JSON.stringify(body), credentials: "same-origin" });
    } catch (e) {
      throw new ApiError("NetworkError", `the server cannot be reached: ${String(e)}`);
    }
    let data: unknown;
    try {
      data = await res.json();
    } catch {
      throw new ApiError("NetworkError", `the server answered HTTP ${res.status} without a JSON body`);
    }
    const resp = (data as { Response?: Record<string, unknown> } | null)?.Response;
    if (!resp || typeof resp !== "object") {
      throw new ApiError("NetworkError", `the server answered HTTP ${res.status} without a Response`);
    }
    const err = resp.Error as { Code?: string; Message?: string } | undefined;
    if (err) {
      const e = new ApiError(err.Code ?? "InternalError", err.Message ?? "", String(resp.RequestId ?? ""));
      if (e.sessionEnded && action !== "Login") this.endSession();
      throw e;
    }
    return resp as T;
  }

  /** login signs in and keeps the CSRF token for later calls. */
  async login(userName: string, password: string): Promise<LoginResponse> {
    const r = await this.call<LoginResponse>("Login", { UserName: userName, Password: password });
    this.store.setItem(CSRF_KEY, r.CsrfToken);
    return r;
  }

  /** logout ends the session; the token is forgotten whatever the answer. */
  async logout(): Promise<void> {
    try {
      await this.call("Logout");
    } finally {
      this.store.removeItem(CSRF_KEY);
    }
  }
}

export interface LoginResponse {
  UserId: string;
  UserName: string;
  Role: string;
  CsrfToken: string;
  ExpireTime: string;
}

/** api is the page's client. */
export const api = new Client((input, init) => fetch(input, init), window.localStorage);

/** call runs an action through the page's client. */
export function call<T>(action: string, body: object = {}): Promise<T> {
  return api.call<T>(action, body);
}
