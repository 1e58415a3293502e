import Link from "next/link";

import type { Schedule } from "@/api/client";
import { day, money, statusText, when } from "@/lib/present";

import { Problem } from "../problem";
import { DeleteSchedule } from "./delete-schedule";

/** A date-time of the API in the schedule's time zone, machine-readable too. */
function At({ timestamp, zone }: { timestamp: string; zone: string }) {
  return <time dateTime={timestamp}>{when(timestamp, zone)}</time>;
}

function LastRun({ schedule: s }: { schedule: Schedule }) {
  if (!s.last_run_at) return <>not yet</>;
  return (
    <>
      <At timestamp={s.last_run_at} zone={s.timezone} />
      {s.last_execution_id ? (
        <>
          {" "}
          <Link href={`/executions/${s.last_execution_id}`} aria-label={`The last run of ${s.agent}`}>
            {s.last_execution_id.slice(0, 8)}
          </Link>
        </>
      ) : null}
      {s.last_error ? (
        <p className="field-error" data-testid="schedule-error">
          {s.last_error}
        </p>
      ) : null}
    </>
  );
}

/** The caller's schedules as the API lists them, or the API's error. */
export function Schedules({ loaded }: { loaded: { items: Schedule[] } | { error: unknown } }) {
  return (
    <section aria-labelledby="schedules">
      <h2 id="schedules">Schedules</h2>
      {"error" in loaded ? (
        <Problem error={loaded.error} />
      ) : loaded.items.length === 0 ? (
        <p data-testid="no-schedules">
          You have no schedules. An agent&apos;s page can run it on one: see <Link href="/agents">the agents</Link>.
        </p>
      ) : (
        <table data-testid="schedules">
          <thead>
            <tr>
              <th scope="col">Agent</th>
              <th scope="col">When</th>
              <th scope="col">Status</th>
              <th scope="col">Next run</th>
              <th scope="col">Runs</th>
              <th scope="col">Last run</th>
              <th scope="col">Most per run</th>
              <th scope="col">
                <span className="visually-hidden">Delete</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {loaded.items.map((s) => (
              <tr key={s.id} data-schedule={s.id}>
                <td>
                  <Link href={`/agents/${s.agent}`}>{s.agent}</Link>
                  {s.version ? <span className="muted"> {s.version}</span> : null}
                </td>
                <td>
                  <code>{s.cron}</code> <span className="muted">{s.timezone}</span>
                </td>
                <td>{statusText(s.status)}</td>
                <td data-testid="next-run">
                  {s.status === "expired" ? "expired" : s.next_run_at ? <At timestamp={s.next_run_at} zone={s.timezone} /> : "—"}
                </td>
                <td>{s.runs}</td>
                <td>
                  <LastRun schedule={s} />
                </td>
                <td>
                  {s.mandate
                    ? `${money(s.mandate.max_amount_minor, s.mandate.currency)} until ${day(s.mandate.expires_at)}`
                    : "free"}
                </td>
                <td>
                  <DeleteSchedule id={s.id} label={`${s.agent} (${s.cron} ${s.timezone})`} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
