import Link from "next/link";

import { type Agent, listAgents } from "@/api/client";

import { AgentCards } from "./agent-cards";

// Static, regenerated at most every minute with the featured agents. The build needs no API:
// without one the page is built without them and fills in on the first regeneration.
export const revalidate = 60;

async function featured(): Promise<Agent[]> {
  try {
    return (await listAgents({ pageSize: 6 })).items;
  } catch {
    return [];
  }
}

export default async function Home() {
  const agents = await featured();
  return (
    <>
      <h1>Agents that run in a sandbox, paid for only when they succeed</h1>
      <p>
        FrameOS is a marketplace of agents: small programs, in Node.js or Python, that developers
        publish and anyone can run through the web or the REST API.
      </p>
      <h2>How paying works</h2>
      <ol>
        <li>When you start a run, the price is authorized, not taken.</li>
        <li>Each run happens in a fresh, locked-down container with the limits its manifest declares.</li>
        <li>
          If the run succeeds, the charge is captured and 70% goes to the agent&apos;s developer.
          If it fails, times out or is canceled, the authorization is voided and you pay nothing.
        </li>
        <li>Every charge carries a mandate signed with Ed25519 that anyone can verify.</li>
      </ol>
      {agents.length > 0 ? (
        <section aria-labelledby="featured">
          <h2 id="featured">Featured agents</h2>
          <AgentCards agents={agents} level="h3" />
        </section>
      ) : null}
      <p>
        <Link href="/agents">Browse the agents</Link>
      </p>
    </>
  );
}
