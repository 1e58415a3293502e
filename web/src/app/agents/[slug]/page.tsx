import type { Metadata } from "next";
import { notFound } from "next/navigation";

import { type Agent, getAgent } from "@/api/client";
import { about, capabilities, price } from "@/lib/present";

import { Problem } from "../../problem";
import { RunForm } from "./run-form";

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
  return (
    <article>
      <h1>{agent.name}</h1>
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
          </dl>
        </section>
      ) : null}
      {version ? (
        <section aria-labelledby="run">
          <h2 id="run">Run it</h2>
          <RunForm slug={agent.slug} schema={version.manifest.inputs} />
        </section>
      ) : null}
    </article>
  );
}
