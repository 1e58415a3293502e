import type { Metadata } from "next";
import Link from "next/link";
import { redirect } from "next/navigation";

import { type VersionList, listReviews, listSpotChecks } from "@/api/client";
import { sessionKey } from "@/api/session";

import { Problem } from "../../problem";
import { Scan } from "../../scan";
import { Decide } from "./decide";

export const metadata: Metadata = { title: "Reviews", robots: { index: false } };

interface Props {
  searchParams: Promise<{ published?: string; rejected?: string }>;
}

// The admin's review queue, rendered on the server with the session's key (the API says 403 to
// anyone else, and the page shows its words).
export default async function Reviews({ searchParams }: Props) {
  const key = await sessionKey();
  if (!key) redirect("/signin?next=/admin/reviews");
  const decided = await searchParams;
  // What the last decision did, after the action sent the admin back here.
  const notice =
    typeof decided.published === "string"
      ? `${decided.published} is published.`
      : typeof decided.rejected === "string"
        ? `${decided.rejected} is rejected.`
        : null;
  let list: VersionList;
  let spotChecks: VersionList;
  try {
    [list, spotChecks] = await Promise.all([listReviews(key), listSpotChecks(key)]);
  } catch (error) {
    return (
      <>
        <h1>Reviews</h1>
        <Problem error={error} />
      </>
    );
  }
  return (
    <>
      <h1>Reviews</h1>
      {notice ? <p role="status">{notice}</p> : null}
      {list.items.length === 0 ? <p>No version is waiting for review.</p> : null}
      {[...list.items, ...spotChecks.items].map((v) => (
        <article key={`${v.agent}@${v.version}`} className="card" aria-label={`${v.agent} ${v.version}`}>
          <h2>
            {v.agent} {v.version}
            {v.spot_check ? " (spot check: published already)" : ""}
          </h2>
          <p className="muted">
            {v.size_bytes} bytes · sha256 <code>{v.sha256}</code>
          </p>
          <Scan scan={v.scan} />
          <p>
            <Link href={`/admin/reviews/${encodeURIComponent(v.agent)}/${encodeURIComponent(v.version)}`}>
              Read the package files of {v.agent} {v.version}
            </Link>
          </p>
          <details>
            <summary>Manifest</summary>
            <pre className="json">{JSON.stringify(v.manifest, null, 2)}</pre>
          </details>
          <Decide slug={v.agent} version={v.version} />
        </article>
      ))}
    </>
  );
}
