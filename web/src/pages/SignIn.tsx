import { useEffect, useState } from "react";
import type { FormEvent } from "react";
import { api, ApiError, retryAfterSeconds } from "../api";
import { Field } from "../components/Field";
import { formErrors, noErrors } from "../errors";
import type { FormErrors } from "../errors";

const FIELDS = ["UserName", "Password"] as const;

/** SignIn asks for a user name and password and calls Login. */
export function SignIn(props: { onSignedIn(): void }) {
  const [userName, setUserName] = useState("");
  const [password, setPassword] = useState("");
  const [errors, setErrors] = useState<FormErrors>(noErrors);
  const [lockedUntil, setLockedUntil] = useState(0);
  const [now, setNow] = useState(() => Date.now());
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (lockedUntil <= now) return;
    const t = window.setTimeout(() => setNow(Date.now()), 1000);
    return () => window.clearTimeout(t);
  }, [lockedUntil, now]);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setErrors(noErrors);
    try {
      await api.login(userName, password);
      props.onSignedIn();
    } catch (err) {
      if (err instanceof ApiError && err.code === "AuthFailure.LoginLocked") {
        const s = retryAfterSeconds(err.message) ?? 60;
        setLockedUntil(Date.now() + s * 1000);
        setNow(Date.now());
      } else if (err instanceof ApiError && err.code === "AuthFailure.LoginFailed") {
        setErrors({ fields: {}, form: "The user name or password is wrong." });
      } else {
        setErrors(formErrors(err, FIELDS));
      }
    } finally {
      setBusy(false);
    }
  }

  const wait = Math.ceil((lockedUntil - now) / 1000);
  return (
    <main className="signin">
      <form onSubmit={submit} aria-labelledby="signin-title" noValidate>
        <h1 id="signin-title">Sign in to Tianshu</h1>
        {wait > 0 && (
          <p className="form-error" role="alert" data-testid="locked">
            Too many failed sign-ins. Try again in {wait} s.
          </p>
        )}
        {errors.form && (
          <p className="form-error" role="alert">
            {errors.form}
          </p>
        )}
        <Field label="User name" name="UserName" value={userName} onChange={setUserName} error={errors.fields.UserName}
          autoComplete="username" required />
        <Field label="Password" name="Password" type="password" value={password} onChange={setPassword}
          error={errors.fields.Password} autoComplete="current-password" required />
        <button type="submit" disabled={busy || wait > 0}>
          Sign in
        </button>
      </form>
    </main>
  );
}
