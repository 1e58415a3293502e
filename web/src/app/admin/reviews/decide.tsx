"use client";

import { useActionState } from "react";

import { type Outcome, approve, reject } from "../../actions";
import { Alert } from "../../alert";

/** Approve, or reject with a reason, one version under review. */
export function Decide({ slug, version }: { slug: string; version: string }) {
  const [approved, approveAction, approving] = useActionState<Outcome>(approve.bind(null, slug, version), {
    error: null,
  });
  const [rejected, rejectAction, rejecting] = useActionState<Outcome, FormData>(reject.bind(null, slug, version), {
    error: null,
  });
  const id = `reason-${slug}-${version}`;
  return (
    <div className="decide">
      <form action={approveAction}>
        <button type="submit" disabled={approving || rejecting} aria-label={`Approve ${slug} ${version}`}>
          Approve
        </button>
      </form>
      <form action={rejectAction} className="stack">
        <label htmlFor={id}>Reason to reject</label>
        <textarea id={id} name="reason" rows={2} required maxLength={2000} />
        <button type="submit" disabled={approving || rejecting} aria-label={`Reject ${slug} ${version}`}>
          Reject
        </button>
      </form>
      <Alert message={approved.error ?? rejected.error} />
    </div>
  );
}
