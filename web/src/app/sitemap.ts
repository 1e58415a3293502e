import type { MetadataRoute } from "next";

import { type Agent, listAgents } from "@/api/client";

// Built on request (from the API's list, cached like /agents), so the build needs no API.
export const dynamic = "force-dynamic";

/** Pages of the sitemap; beyond this a sitemap index would be needed. */
const MAX_AGENTS = 5000;

export default async function sitemap(): Promise<MetadataRoute.Sitemap> {
  const base = (process.env.FRAMEOS_SITE_URL ?? "http://localhost:3000").replace(/\/+$/, "");
  const pages: MetadataRoute.Sitemap = [{ url: `${base}/` }, { url: `${base}/agents`, changeFrequency: "hourly" }];
  const agents: Agent[] = [];
  let pageToken: string | undefined;
  try {
    do {
      const list = await listAgents({ pageToken, pageSize: 100 });
      agents.push(...list.items);
      pageToken = list.next_page_token;
    } while (pageToken && agents.length < MAX_AGENTS);
  } catch {
    // Without the API the sitemap still names the fixed pages.
  }
  return [...pages, ...agents.map((agent) => ({ url: `${base}/agents/${agent.slug}` }))];
}
