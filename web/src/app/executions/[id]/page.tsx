import type { Metadata } from "next";
import Link from "next/link";
import { notFound, redirect } from "next/navigation";

import {
  type Execution,
  type LogPage,
  type Mandate,
  type MandateKeys,
  getExecution,
  getMandate,
  listLogs,
  mandateKeys,
} from "@/api/client";
import { sessionKey } from "@/api/session";
import { isFinal, money, statusText } from "@/lib/present";

import { JsonView } from "../../json-view";
import { Problem } from "../../problem";
import { Live } from "./live";
import { VerifyMandate } from "./verify";

export const metadata: Metadata = { title: "Execution", robots: { index: false } };

interface Props {
  params: Promise<{ id: string }>;
}

// Server-rendered for its owner on every request; the live part follows the event stream.
export default async function ExecutionPage({ params }: Props) {
  const { id } = await params;
  const key = await sessionKey();
  if (!key) redirect(`/signin?next=${encodeURIComponent(`/executions/${id}`)}`);
  let execution: Execution | null;
  let logs: LogPage;
  let mandate: { signed: Mandate; keys: MandateKeys } | null = null;
  try {
    execution = await getExecution(key, id);
    logs = execution ? await listLogs(key, id) : { items: [] };
    if (execution?.charge) {
      const [signed, keys] = await Promise.all([getMandate(key, id), mandateKeys()]);
      mandate = { signed, keys };
    }
  } catch (error) {
    return (
      <>
        <h1>Execution</h1>
        <Problem error={error} />
      </>
    );
  }
  if (!execution) notFound();
  const ended = isFinal(execution.status);
  const charge = execution.charge;
  return (
    <article>
      <h1>
        {execution.agent} {execution.version}
      </h1>
      <dl className="facts">
        <dt>Status</dt>
        <dd data-testid="status">{statusText(execution.status)}</dd>
        <dt>Started</dt>
        <dd>{execution.created_at}</dd>
        {execution.duration_ms !== undefined ? (
          <>
            <dt>Took</dt>
            <dd>{execution.duration_ms} ms</dd>
          </>
        ) : null}
        {execution.timings ? (
          <>
            <dt>Timings</dt>
            <dd>
              queue {execution.timings.queue_wait_ms ?? "—"} ms · start {execution.timings.start_ms ?? "—"} ms · run{" "}
              {execution.timings.run_ms ?? "—"} ms
            </dd>
          </>
        ) : null}
        {execution.parent_id ? (
          <>
            <dt>Called by</dt>
            <dd>
              <Link href={`/executions/${execution.parent_id}`} data-testid="parent">
                {execution.parent_id}
              </Link>
              {execution.root_id && execution.root_id !== execution.parent_id ? (
                <>
                  {" "}
                  (tree started by <Link href={`/executions/${execution.root_id}`}>{execution.root_id}</Link>)
                </>
              ) : null}
            </dd>
          </>
        ) : null}
        {charge ? (
          <>
            <dt>Charge</dt>
            <dd data-testid="charge">
              {money(charge.amount_minor, charge.currency)} {charge.status}
              {charge.status === "captured"
                ? ` — developer ${money(charge.splits.developer, charge.currency)}, platform ${money(charge.splits.platform, charge.currency)}, orchestrator ${money(charge.splits.orchestrator, charge.currency)}, payment fee ${money(charge.splits.rail_fee, charge.currency)}`
                : null}
            </dd>
          </>
        ) : null}
      </dl>
      {execution.children && execution.children.length > 0 ? (
        <section aria-labelledby="calls">
          <h2 id="calls">Calls</h2>
          <table data-testid="children">
            <thead>
              <tr>
                <th scope="col">Agent</th>
                <th scope="col">Status</th>
                <th scope="col">Charge</th>
              </tr>
            </thead>
            <tbody>
              {execution.children.map((child) => (
                <tr key={child.id}>
                  <td>
                    <Link href={`/executions/${child.id}`}>
                      {child.agent} {child.version}
                    </Link>
                  </td>
                  <td>{statusText(child.status)}</td>
                  <td>{child.charge ? `${money(child.charge.amount_minor, child.charge.currency)} ${child.charge.status}` : "free"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ) : null}
      {execution.error ? (
        <p role="alert" className="error">
          {execution.error}
        </p>
      ) : null}
      {execution.output !== undefined ? (
        <section aria-labelledby="output">
          <h2 id="output">Output</h2>
          <JsonView value={execution.output} testId="output" />
        </section>
      ) : null}
      {mandate && charge ? (
        <VerifyMandate
          mandate={mandate.signed}
          keys={mandate.keys.keys}
          expected={{ executionId: execution.id, amountMinor: charge.amount_minor, currency: charge.currency }}
        />
      ) : null}
      <Live key={execution.status} id={execution.id} lines={logs.items} running={!ended} />
    </article>
  );
}
