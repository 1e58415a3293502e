import Link from "next/link";

import type { Agent } from "@/api/client";
import { about, badges, price } from "@/lib/present";

/** Agents as cards: name (a heading of `level`), what it does, price, version and badges. */
export function AgentCards({ agents, level }: { agents: Agent[]; level: "h2" | "h3" }) {
  const Heading = level;
  return (
    <ul className="cards">
      {agents.map((agent) => (
        <li key={agent.id} className="card">
          <Heading>
            <Link href={`/agents/${agent.slug}`}>{agent.name}</Link>
          </Heading>
          <p className="muted" data-testid="developer">
            by {agent.owner_name}
          </p>
          <p>{about(agent)}</p>
          <p>{price(agent.pricing)}</p>
          {agent.latest_version ? (
            <>
              <p className="muted">Version {agent.latest_version.version}</p>
              <ul className="badges" aria-label="What it may do">
                {badges(agent.latest_version.manifest).map((badge) => (
                  <li key={badge} className="badge">
                    {badge}
                  </li>
                ))}
              </ul>
            </>
          ) : null}
        </li>
      ))}
    </ul>
  );
}
