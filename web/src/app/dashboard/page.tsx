import type { Metadata } from "next";
import Link from "next/link";
import { redirect } from "next/navigation";

import {
  type Account,
  type Balance,
  type ExecutionList,
  type Schedule,
  getBalance,
  listExecutions,
  listSchedules,
  me,
} from "@/api/client";
import { sessionKey } from "@/api/session";
import { EXECUTION_STATUSES, money, statusText } from "@/lib/present";

import { signOut } from "../actions";
import { Problem } from "../problem";
import { Schedules } from "./schedules";

export const metadata: Metadata = { title: "Dashboard", robots: { index: false } };

interface Props {
  searchParams: Promise<Record<string, string | string[] | undefined>>;
}

function one(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return v?.trim() || undefined;
}

// My executions, my schedules and my money, rendered on the server with the session's key.
export default async function Dashboard({ searchParams }: Props) {
  const key = await sessionKey();
  if (!key) redirect("/signin?next=/dashboard");
  const params = await searchParams;
  const query = { status: one(params.status), agent: one(params.agent), pageToken: one(params.page_token) };
  // Secondary: when the list fails, its section says so and the rest of the page still shows.
  const schedules = listSchedules(key).then(
    (list): { items: Schedule[] } => ({ items: list.items }),
    (error: unknown) => ({ error }),
  );
  let account: Account;
  let executions: ExecutionList;
  let balance: Balance;
  try {
    account = await me(key);
    [executions, balance] = await Promise.all([listExecutions(key, query), getBalance(key, account.id)]);
  } catch (error) {
    return (
      <>
        <h1>Dashboard</h1>
        <Problem error={error} />
      </>
    );
  }
  const next = executions.next_page_token
    ? `/dashboard?${new URLSearchParams({
        ...(query.status ? { status: query.status } : {}),
        ...(query.agent ? { agent: query.agent } : {}),
        page_token: executions.next_page_token,
      }).toString()}`
    : null;
  return (
    <>
      <h1>Dashboard</h1>
      <p>
        Signed in as <strong>{account.name}</strong> ({account.role}).{" "}
      </p>
      <form action={signOut}>
        <button type="submit">Sign out</button>
      </form>
      <section aria-labelledby="executions">
        <h2 id="executions">My executions</h2>
        <form className="search" action="/dashboard">
          <label htmlFor="status">Status</label>
          <select id="status" name="status" defaultValue={query.status ?? ""}>
            <option value="">any</option>
            {EXECUTION_STATUSES.map((s) => (
              <option key={s} value={s}>
                {statusText(s)}
              </option>
            ))}
          </select>
          <label htmlFor="agent">Agent</label>
          <input id="agent" name="agent" defaultValue={query.agent ?? ""} />
          <button type="submit">Filter</button>
        </form>
        {executions.items.length === 0 ? (
          <p>No execution matches.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">Agent</th>
                <th scope="col">Status</th>
                <th scope="col">Started</th>
                <th scope="col">Charge</th>
              </tr>
            </thead>
            <tbody>
              {executions.items.map((e) => (
                <tr key={e.id}>
                  <td>
                    <Link href={`/executions/${e.id}`}>
                      {e.agent} {e.version}
                    </Link>
                  </td>
                  <td>{statusText(e.status)}</td>
                  <td>{e.created_at}</td>
                  <td>{e.charge ? `${money(e.charge.amount_minor, e.charge.currency)} ${e.charge.status}` : "free"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {next ? (
          <p>
            <Link href={next} rel="next">
              Older executions
            </Link>
          </p>
        ) : null}
      </section>
      <Schedules loaded={await schedules} />
      <section aria-labelledby="balance">
        <h2 id="balance">Balance</h2>
        <p data-testid="balance">{money(balance.balance_minor, balance.currency)}</p>
        {balance.entries.length > 0 ? (
          <table>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Ledger account</th>
                <th scope="col">Debit / credit</th>
                <th scope="col">Amount</th>
                <th scope="col">Execution</th>
              </tr>
            </thead>
            <tbody>
              {balance.entries.map((entry) => (
                <tr key={`${entry.transaction_id}:${entry.account}:${entry.direction}`}>
                  <td>{entry.created_at}</td>
                  <td>{entry.account}</td>
                  <td>{entry.direction}</td>
                  <td>{money(entry.amount_minor, entry.currency)}</td>
                  <td>
                    <Link href={`/executions/${entry.execution_id}`}>{entry.execution_id.slice(0, 8)}</Link>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
      </section>
    </>
  );
}
