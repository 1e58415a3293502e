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

type Param = string | string[] | undefined;

interface Props {
  searchParams: Promise<{ q?: Param; runtime?: Param; pricing?: Param; max_price?: Param; page_token?: Param }>;
}

const RUNTIMES = [
  ["", "Any runtime"],
  ["node", "Node.js"],
  ["python", "Python"],
] as const;

const PRICINGS = [
  ["", "Free or paid"],
  ["free", "Free"],
  ["per_execution", "Paid per run"],
] as const;

/** The price caps offered, in rupees (the marketplace's currency); the API takes minor units. */
const MAX_PRICES = [
  ["", "Any price"],
  ["10", "Up to ₹10"],
  ["50", "Up to ₹50"],
  ["100", "Up to ₹100"],
] as const;

type Options = readonly (readonly [string, string])[];

/** One filter: a labelled select whose value goes into the address. */
function Choice({ label, name, value, options }: { label: string; name: string; value: string; options: Options }) {
  return (
    <label>
      {label}
      <select name={name} defaultValue={value}>
        {options.map(([v, text]) => (
          <option key={v} value={v}>
            {text}
          </option>
        ))}
      </select>
    </label>
  );
}

function oneOf(options: Options, value: string | undefined): string {
  return options.some(([v]) => v === value) ? (value ?? "") : "";
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

// Rendered on the server for every request from the API's list, which is cached for at most a
// minute (`LIST_SECONDS`): the build needs no API, and a new agent shows within a minute.
export default async function Agents({ searchParams }: Props) {
  const params = await searchParams;
  const q = first(params.q)?.trim() ?? "";
  const runtime = oneOf(RUNTIMES, first(params.runtime));
  const pricing = oneOf(PRICINGS, first(params.pricing));
  const maxPrice = oneOf(MAX_PRICES, first(params.max_price));
  const pageToken = first(params.page_token);
  const filters: Record<string, string> = {};
  if (q) filters.q = q;
  if (runtime) filters.runtime = runtime;
  if (pricing) filters.pricing = pricing;
  if (maxPrice) filters.max_price = maxPrice;
  let list: AgentList;
  try {
    list = await listAgents({
      q: q || undefined,
      runtime: runtime || undefined,
      pricingModel: pricing || undefined,
      maxPriceMinor: maxPrice ? Number(maxPrice) * 100 : undefined,
      pageToken,
      pageSize: PAGE_SIZE,
    });
  } catch (error) {
    return (
      <>
        <h1>Agents</h1>
        <Problem error={error} />
      </>
    );
  }
  const next = list.next_page_token
    ? `/agents?${new URLSearchParams({ ...filters, page_token: list.next_page_token }).toString()}`
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
      <form className="filters" action="/agents" aria-label="Filter agents">
        {q ? <input type="hidden" name="q" value={q} /> : null}
        <Choice label="Runtime" name="runtime" value={runtime} options={RUNTIMES} />
        <Choice label="Pricing" name="pricing" value={pricing} options={PRICINGS} />
        <Choice label="Price" name="max_price" value={maxPrice} options={MAX_PRICES} />
        <button type="submit">Filter</button>
      </form>
      {list.items.length === 0 ? (
        <p>{Object.keys(filters).length > 0 ? "No published agent matches these filters." : "No agent is published yet."}</p>
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
