"use client";

import { useActionState } from "react";

import { type Outcome, type Published, newAgent, publish } from "../actions";
import { Alert } from "../alert";
import { Scan } from "../scan";
import { statusText } from "@/lib/present";

export function NewAgentForm() {
  const [outcome, action, pending] = useActionState<Outcome, FormData>(newAgent, { error: null });
  return (
    <form action={action} className="stack" aria-label="Create an agent">
      <label htmlFor="slug">Slug</label>
      <input id="slug" name="slug" required pattern="[a-z0-9-]{2,64}" aria-describedby="slug-help" />
      <p id="slug-help" className="muted">
        2 to 64 of a–z, 0–9 and -; it must equal the <code>name</code> in the package&apos;s agent.json.
      </p>
      <label htmlFor="name">Name</label>
      <input id="name" name="name" required maxLength={128} />
      <label htmlFor="description">Description</label>
      <textarea id="description" name="description" rows={3} maxLength={2000} />
      <label htmlFor="price_minor">Price per successful run, in minor units (empty: free)</label>
      <input id="price_minor" name="price_minor" inputMode="numeric" />
      <label htmlFor="currency">Currency</label>
      <input id="currency" name="currency" defaultValue="INR" maxLength={3} />
      <Alert message={outcome.error} />
      {outcome.done ? <p role="status">{outcome.done}</p> : null}
      <button type="submit" disabled={pending}>
        Create agent
      </button>
    </form>
  );
}

export function PublishForm() {
  const [outcome, action, pending] = useActionState<Published, FormData>(publish, { error: null });
  const version = outcome.version;
  return (
    <form action={action} className="stack" aria-label="Publish a version">
      <label htmlFor="publish-slug">Agent (slug)</label>
      <input id="publish-slug" name="slug" required />
      <label htmlFor="package">Package (.tar.gz with agent.json at its root)</label>
      <input id="package" name="package" type="file" accept=".tar.gz,.tgz,application/gzip" required />
      <Alert message={outcome.error} />
      {version ? (
        <div role="status" data-testid="published">
          <p>
            Version {version.version}: {statusText(version.status)}
            {version.review?.reason ? ` — ${version.review.reason}` : ""}
          </p>
          <Scan scan={version.scan} />
        </div>
      ) : null}
      <button type="submit" disabled={pending}>
        {pending ? "Uploading…" : "Publish"}
      </button>
    </form>
  );
}
