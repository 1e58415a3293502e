import Link from "next/link";

// Static: nothing here depends on the API, so the build needs none.
export default function Home() {
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
      <p>
        <Link href="/agents">Browse the agents</Link>
      </p>
    </>
  );
}
