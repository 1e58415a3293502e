import type { Metadata } from "next";
import Link from "next/link";

import { type AgentList, listAgents } from "@/api/client";

import { AgentCards } from "../agent-cards";
import { Problem } from "../problem";

export const metadata: Metadata = {
  title: "Agents",
  description: "Published FrameOS agents: search by name, see what each may do and what a successful run costs.",
  alternates: { canonical: "/agents" },
};

const PAGE_SIZE = 24;

interface Props {
  searchParams: Promise<{ q?: string | string[]; page_token?: string | string[] }>;
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

// Rendered on the server for every request from the API's list, which is cached for at most a
// minute (`LIST_SECONDS`): the build needs no API, and a new agent shows within a minute.
export default async function Agents({ searchParams }: Props) {
  const params = await searchParams;
  const q = first(params.q)?.trim() ?? "";
  const pageToken = first(params.page_token);
  let list: AgentList;
  try {
    list = await listAgents({ q: q || undefined, pageToken, pageSize: PAGE_SIZE });
  } catch (error) {
    return (
      <>
        <h1>Agents</h1>
        <Problem error={error} />
      </>
    );
  }
  const next = list.next_page_token
    ? `/agents?${new URLSearchParams({ ...(q ? { q } : {}), page_token: list.next_page_token }).toString()}`
    : null;
  return (
    <>
      <h1>Agents</h1>
      <form className="search" role="search" action="/agents">
        <label htmlFor="q" className="skip">
          Search agents
        </label>
        <input id="q" name="q" type="search" defaultValue={q} placeholder="Search agents" />
        <button type="submit">Search</button>
      </form>
      {list.items.length === 0 ? (
        <p>{q ? `No published agent matches “${q}”.` : "No agent is published yet."}</p>
      ) : (
        <AgentCards agents={list.items} level="h2" />
      )}
      {next ? (
        <p>
          <Link href={next} rel="next">
            More agents
          </Link>
        </p>
      ) : null}
    </>
  );
}
