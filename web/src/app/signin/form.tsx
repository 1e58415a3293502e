"use client";

import { useActionState } from "react";

import { type Outcome, signIn } from "../actions";
import { Alert } from "../alert";

export function SignInForm({ next }: { next: string }) {
  const [outcome, action, pending] = useActionState<Outcome, FormData>(signIn, { error: null });
  return (
    <form action={action} className="stack">
      <input type="hidden" name="next" value={next} />
      <label htmlFor="key">API key</label>
      <input id="key" name="key" type="password" autoComplete="current-password" required aria-describedby="key-help" />
      <p id="key-help" className="muted">
        Kept by this site&apos;s server in a cookie your browser&apos;s scripts cannot read.
      </p>
      <Alert message={outcome.error} />
      <button type="submit" disabled={pending}>
        {pending ? "Signing in…" : "Sign in"}
      </button>
    </form>
  );
}
