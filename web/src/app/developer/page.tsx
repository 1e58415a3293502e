import type { Metadata } from "next";
import { redirect } from "next/navigation";

import { type VersionList, listVersions } from "@/api/client";
import { sessionKey } from "@/api/session";
import { statusText } from "@/lib/present";

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
  return (
    <>
      <h1>Developer</h1>
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
            <table>
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
