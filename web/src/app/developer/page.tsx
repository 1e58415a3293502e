import type { Metadata } from "next";
import { redirect } from "next/navigation";

import Link from "next/link";

import { type AgentList, type Earnings, type VersionList, listEarnings, listMyAgents, listVersions } from "@/api/client";
import { sessionKey } from "@/api/session";
import { money, price, statusText } from "@/lib/present";

import { Problem } from "../problem";
import { NewAgentForm, PublishForm } from "./forms";

export const metadata: Metadata = { title: "Developer", robots: { index: false } };

interface Props {
  searchParams: Promise<{ agent?: string | string[] }>;
}

export default async function Developer({ searchParams }: Props) {
  const key = await sessionKey();
  if (!key) redirect("/signin?next=/developer");
  const { agent } = await searchParams;
  const slug = (Array.isArray(agent) ? agent[0] : agent)?.trim();
  let versions: VersionList | null = null;
  let problem: unknown = null;
  if (slug) {
    try {
      versions = await listVersions(key, slug);
    } catch (error) {
      problem = error;
    }
  }
  let mine: AgentList | null = null;
  let earnings: Earnings | null = null;
  let listProblem: unknown = null;
  try {
    [mine, earnings] = await Promise.all([listMyAgents(key), listEarnings(key)]);
  } catch (error) {
    listProblem = error;
  }
  return (
    <>
      <h1>Developer</h1>
      <section aria-labelledby="mine">
        <h2 id="mine">My agents</h2>
        {listProblem ? <Problem error={listProblem} /> : null}
        {mine && mine.items.length === 0 ? <p>You have no agent yet: create one below.</p> : null}
        {mine && mine.items.length > 0 ? (
          <table data-testid="my-agents">
            <thead>
              <tr>
                <th scope="col">Agent</th>
                <th scope="col">Price</th>
                <th scope="col">Published</th>
                <th scope="col">Earned</th>
              </tr>
            </thead>
            <tbody>
              {mine.items.map((agent) => {
                const earned = earnings?.items.filter((e) => e.agent === agent.slug) ?? [];
                return (
                  <tr key={agent.id} data-agent={agent.slug}>
                    <td>
                      <Link href={`/developer?agent=${encodeURIComponent(agent.slug)}`}>{agent.name}</Link>
                    </td>
                    <td>{price(agent.pricing)}</td>
                    <td>
                      {agent.ban ? (
                        <span data-testid="ban">banned: {agent.ban.reason}</span>
                      ) : agent.latest_version ? (
                        <Link href={`/agents/${agent.slug}`}>{agent.latest_version.version}</Link>
                      ) : (
                        "not yet"
                      )}
                    </td>
                    <td data-testid="earned">
                      {earned.length === 0
                        ? "—"
                        : earned
                            .map(
                              (e) =>
                                `${money(e.earned_minor, e.currency)} from ${e.paid_executions} paid run${e.paid_executions === 1 ? "" : "s"}` +
                                (e.paid_calls > 0
                                  ? `, ${money(e.orchestrator_minor, e.currency)} from ${e.paid_calls} paid call${e.paid_calls === 1 ? "" : "s"}`
                                  : ""),
                            )
                            .join("; ")}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        ) : null}
      </section>
      <section aria-labelledby="versions">
        <h2 id="versions">Versions and reviews</h2>
        <form className="search" action="/developer">
          <label htmlFor="agent" className="skip">
            Agent slug
          </label>
          <input id="agent" name="agent" defaultValue={slug ?? ""} placeholder="Your agent's slug" />
          <button type="submit">Show</button>
        </form>
        {problem ? <Problem error={problem} /> : null}
        {versions ? (
          versions.items.length === 0 ? (
            <p>No version yet.</p>
          ) : (
            <table aria-label="Versions">
              <thead>
                <tr>
                  <th scope="col">Version</th>
                  <th scope="col">Status</th>
                  <th scope="col">Review</th>
                </tr>
              </thead>
              <tbody>
                {versions.items.map((v) => (
                  <tr key={v.version}>
                    <td>{v.version}</td>
                    <td>{statusText(v.status)}</td>
                    <td>{v.review ? `${v.review.decision}${v.review.reason ? `: ${v.review.reason}` : ""}` : "waiting"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        ) : null}
      </section>
      <section aria-labelledby="publish">
        <h2 id="publish">Publish a version</h2>
        <PublishForm />
      </section>
      <section aria-labelledby="create">
        <h2 id="create">Create an agent</h2>
        <NewAgentForm />
      </section>
    </>
  );
}
