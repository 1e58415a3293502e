import type { Metadata } from "next";
import Link from "next/link";
import { notFound } from "next/navigation";

import { type Agent, type Version, getAgent, listReleases } from "@/api/client";
import { sessionKey } from "@/api/session";
import { about, capabilities, changelog, day, dependencies, examples, money, price } from "@/lib/present";

import { JsonView } from "../../json-view";
import { Problem } from "../../problem";
import { RunForm } from "./run-form";
import { type PaidTerms, ScheduleForm } from "./schedule-form";

interface Props {
  params: Promise<{ slug: string }>;
}

/** The agent, or the API's error to show on the page; a 404 for a slug nobody published. */
async function load(slug: string): Promise<{ agent: Agent } | { error: unknown }> {
  let agent: Agent | null;
  try {
    agent = await getAgent(slug);
  } catch (error) {
    return { error };
  }
  if (!agent) notFound();
  return { agent };
}

export async function generateMetadata({ params }: Props): Promise<Metadata> {
  const { slug } = await params;
  const loaded = await load(slug);
  if (!("agent" in loaded)) return { title: slug };
  const { agent } = loaded;
  return {
    title: agent.name,
    description: about(agent),
    alternates: { canonical: `/agents/${agent.slug}` },
    openGraph: { title: agent.name, description: about(agent), url: `/agents/${agent.slug}` },
  };
}

// Server-rendered on every request: the page shows the agent as the API has it now.
export default async function AgentPage({ params }: Props) {
  const { slug } = await params;
  const loaded = await load(slug);
  if (!("agent" in loaded)) {
    return (
      <>
        <h1>{slug}</h1>
        <Problem error={loaded.error} />
      </>
    );
  }
  const { agent } = loaded;
  const version = agent.latest_version;
  const can = version ? capabilities(version.manifest) : null;
  // The release history is secondary: without it the page still sells and runs the agent.
  const releases: Version[] = await listReleases(agent.slug).then(
    (list) => list.items,
    () => [],
  );
  const samples = version ? examples(version.manifest) : [];
  const calls = version ? dependencies(version.manifest) : [];
  const signedIn = (await sessionKey()) !== null;
  const paid: PaidTerms | null =
    agent.pricing.model === "per_execution"
      ? {
          priceMinor: agent.pricing.price_minor,
          currency: agent.pricing.currency,
          priceText: money(agent.pricing.price_minor, agent.pricing.currency),
        }
      : null;
  return (
    <article>
      <h1>{agent.name}</h1>
      <p className="muted" data-testid="developer">
        by {agent.owner_name}
      </p>
      <p>{about(agent)}</p>
      <dl className="facts">
        <dt>Price</dt>
        <dd>{price(agent.pricing)}</dd>
        {agent.pricing.model === "per_execution" ? (
          <>
            <dt>Split</dt>
            <dd>70% to the developer; nothing is charged when a run fails</dd>
          </>
        ) : null}
        <dt>Version</dt>
        <dd>{version ? version.version : "none published yet"}</dd>
      </dl>
      {can ? (
        <section aria-labelledby="may-do">
          <h2 id="may-do">What this agent may do</h2>
          <dl className="facts">
            <dt>Runtime</dt>
            <dd>{can.runtime ?? "unknown"}</dd>
            <dt>Network</dt>
            <dd>{can.network ? `only ${can.network.join(", ")}` : "no network"}</dd>
            <dt>CPU</dt>
            <dd>{can.cpuCores !== null ? `${can.cpuCores} core${can.cpuCores === 1 ? "" : "s"}` : "the platform default"}</dd>
            <dt>Memory</dt>
            <dd>{can.memoryMb !== null ? `${can.memoryMb} MB` : "the platform default"}</dd>
            <dt>Time limit</dt>
            <dd>{can.timeoutMs !== null ? `${can.timeoutMs / 1000} s` : "the platform default"}</dd>
            <dt>Calls</dt>
            <dd data-testid="calls">
              {calls.length === 0 ? (
                "no other agent"
              ) : (
                <ul className="inline">
                  {calls.map(([slug, range]) => (
                    <li key={slug}>
                      <Link href={`/agents/${slug}`}>{slug}</Link> <span className="muted">{range}</span>
                    </li>
                  ))}
                </ul>
              )}
            </dd>
          </dl>
        </section>
      ) : null}
      {version ? (
        <div className="forms">
          <section aria-labelledby="run">
            <h2 id="run">Run it</h2>
            <RunForm slug={agent.slug} schema={version.manifest.inputs} />
          </section>
          <section aria-labelledby="schedule">
            <h2 id="schedule">Schedule it</h2>
            {signedIn ? (
              <ScheduleForm slug={agent.slug} paid={paid} />
            ) : (
              <p>
                <Link href={`/signin?next=${encodeURIComponent(`/agents/${agent.slug}`)}`}>Sign in</Link> to run it on a
                schedule.
              </p>
            )}
          </section>
        </div>
      ) : null}
      {samples.length > 0 ? (
        <section aria-labelledby="samples">
          <h2 id="samples">Sample output</h2>
          {samples.map((sample, index) => (
            <figure key={index} className="sample">
              <figcaption>{sample.title ?? `Example ${index + 1}`}</figcaption>
              <h3>Inputs</h3>
              <JsonView value={sample.inputs} />
              {sample.hasOutput ? (
                <>
                  <h3>Output</h3>
                  <JsonView value={sample.output} testId={index === 0 ? "sample-output" : undefined} />
                </>
              ) : null}
            </figure>
          ))}
        </section>
      ) : null}
      {releases.length > 0 ? (
        <section aria-labelledby="releases">
          <h2 id="releases">Versions</h2>
          <ol className="releases" data-testid="releases">
            {releases.map((release) => (
              <li key={release.version}>
                <strong>{release.version}</strong> <span className="muted">{day(release.published_at ?? release.created_at)}</span>
                {changelog(release.manifest) ? <p>{changelog(release.manifest)}</p> : null}
              </li>
            ))}
          </ol>
        </section>
      ) : null}
    </article>
  );
}
