"use client";

import Link from "next/link";
import { type FormEvent, startTransition, useActionState, useState } from "react";

import { money } from "@/lib/present";

import { type Outcome, scheduleAgent } from "../../actions";
import { Alert } from "../../alert";

/** What a paid agent's form needs: its price, in minor units and as the page shows it. */
export interface PaidTerms {
  priceMinor: number;
  currency: string;
  /** The price formatted on the server, so the first render matches it. */
  priceText: string;
}

/** Runs the agent on a cron expression; for a paid agent, with the most one run may cost. */
export function ScheduleForm({ slug, paid }: { slug: string; paid: PaidTerms | null }) {
  const [outcome, action, pending] = useActionState<Outcome, FormData>(scheduleAgent.bind(null, slug), { error: null });
  const [max, setMax] = useState(paid ? String(paid.priceMinor) : "");

  // Posted by hand so that a refusal leaves what was typed in place (a form action resets it).
  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const data = new FormData(event.currentTarget);
    startTransition(() => action(data));
  }

  let maxText = "";
  if (paid) {
    const amount = Number(max);
    maxText =
      max === String(paid.priceMinor)
        ? paid.priceText
        : max.trim() !== "" && Number.isSafeInteger(amount)
          ? money(amount, paid.currency)
          : "a whole number of minor units";
  }

  return (
    <form action={action} onSubmit={submit} className="stack" noValidate aria-label="Schedule this agent">
      <label htmlFor="schedule-cron">Cron expression</label>
      <input
        id="schedule-cron"
        name="cron"
        required
        autoComplete="off"
        spellCheck={false}
        aria-describedby="schedule-cron-help"
      />
      <p id="schedule-cron-help" className="muted">
        Minute, hour, day of the month, month, day of the week: <code>*/5 * * * *</code> = every 5 minutes,{" "}
        <code>0 9 * * 1</code> = Mondays at 09:00.
      </p>
      <label htmlFor="schedule-timezone">Time zone</label>
      <input
        id="schedule-timezone"
        name="timezone"
        defaultValue="UTC"
        autoComplete="off"
        spellCheck={false}
        aria-describedby="schedule-timezone-help"
      />
      <p id="schedule-timezone-help" className="muted">
        An IANA name, such as <code>Europe/Paris</code>.
      </p>
      <label htmlFor="schedule-inputs">Inputs (JSON)</label>
      <textarea
        id="schedule-inputs"
        name="inputs"
        rows={4}
        defaultValue="{}"
        spellCheck={false}
        aria-describedby="schedule-inputs-help"
      />
      <p id="schedule-inputs-help" className="muted">
        The inputs of every run, as the run form sends them.
      </p>
      {paid ? (
        <>
          <label htmlFor="schedule-max">Most per run, in minor units of {paid.currency}</label>
          <input
            id="schedule-max"
            name="max_amount_minor"
            type="number"
            inputMode="numeric"
            step={1}
            defaultValue={paid.priceMinor}
            onChange={(event) => setMax(event.currentTarget.value)}
            aria-describedby="schedule-max-help"
          />
          <p id="schedule-max-help" className="muted" data-testid="schedule-max-text">
            {maxText} at most per run, with the agents it calls; the price is {paid.priceText} per successful run.
          </p>
          <label htmlFor="schedule-expires">Consent ends on (optional)</label>
          <input id="schedule-expires" name="expires_on" type="date" aria-describedby="schedule-expires-help" />
          <p id="schedule-expires-help" className="muted">
            At the end of that day, UTC; empty: 90 days from now.
          </p>
        </>
      ) : null}
      <Alert message={outcome.error} />
      {outcome.done ? (
        <p role="status" data-testid="scheduled">
          {outcome.done} <Link href="/dashboard#schedules">See your schedules</Link>
        </p>
      ) : null}
      <button type="submit" disabled={pending}>
        {pending ? "Scheduling…" : "Schedule"}
      </button>
    </form>
  );
}
