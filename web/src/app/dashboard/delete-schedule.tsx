"use client";

import { useActionState } from "react";

import { type Outcome, removeSchedule } from "../actions";
import { Alert } from "../alert";

/** Deletes one schedule; the dashboard then lists the ones left. */
export function DeleteSchedule({ id, label }: { id: string; label: string }) {
  const [outcome, action, pending] = useActionState<Outcome>(removeSchedule.bind(null, id), { error: null });
  return (
    <form action={action}>
      <button type="submit" disabled={pending} aria-label={`Delete the schedule of ${label}`}>
        {pending ? "Deleting…" : "Delete"}
      </button>
      <Alert message={outcome.error} />
    </form>
  );
}
