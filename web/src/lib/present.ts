// How API values read for people. Formatting only: prices, limits and rules come from the API.
import type { Execution, Pricing } from "@/api/client";

/** `amount` minor units of `currency` (paise, cents) as people write them. */
export function money(amount: number, currency: string, locale = "en"): string {
  const format = new Intl.NumberFormat(locale, { style: "currency", currency });
  const exponent = format.resolvedOptions().maximumFractionDigits ?? 2;
  return format.format(amount / 10 ** exponent);
}

/** An agent's price per successful run. */
export function price(pricing: Pricing): string {
  return pricing.model === "free" ? "Free" : `${money(pricing.price_minor, pricing.currency)} per successful run`;
}

/** What a manifest lets an agent do, read defensively: the API validated it, this only shows it. */
export interface Capabilities {
  runtime: string | null;
  network: string[] | null;
  cpuCores: number | null;
  memoryMb: number | null;
  timeoutMs: number | null;
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function number(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

export function capabilities(manifest: Record<string, unknown>): Capabilities {
  const resources = record(manifest.resources);
  const domains = (Array.isArray(manifest.capabilities) ? manifest.capabilities : [])
    .map(record)
    .filter((capability) => capability.type === "http_request")
    .flatMap((capability) => (Array.isArray(capability.allow_domains) ? capability.allow_domains : []))
    .filter((domain): domain is string => typeof domain === "string");
  return {
    runtime: typeof manifest.runtime === "string" ? manifest.runtime : null,
    network: domains.length > 0 ? domains : null,
    cpuCores: number(resources.cpu_cores),
    memoryMb: number(resources.memory_mb),
    timeoutMs: number(resources.timeout_ms),
  };
}

/** What an agent does: its own description, else its published manifest's. */
export function about(agent: { description: string; latest_version?: { manifest: Record<string, unknown> } | null }): string {
  if (agent.description.trim()) return agent.description;
  const described = agent.latest_version?.manifest.description;
  return typeof described === "string" ? described : "";
}

/** Short labels of what a version may do, for a card: runtime, network, memory. */
export function badges(manifest: Record<string, unknown>): string[] {
  const can = capabilities(manifest);
  const out: string[] = [];
  if (can.runtime) out.push(can.runtime === "node" ? "Node.js" : can.runtime === "python" ? "Python" : can.runtime);
  out.push(can.network ? `network: ${can.network.length} domain${can.network.length === 1 ? "" : "s"}` : "no network");
  if (can.memoryMb !== null) out.push(`${can.memoryMb} MB`);
  return out;
}

export type ExecutionStatus = Execution["status"];

/** Whether each execution status is final; typed against the API's own list, so a status the
 * API adds fails the type check here until it is placed. */
const FINAL: Record<ExecutionStatus, boolean> = {
  queued: false,
  running: false,
  succeeded: true,
  failed: true,
  timed_out: true,
  canceled: true,
};

export const EXECUTION_STATUSES = Object.keys(FINAL) as ExecutionStatus[];

export function isFinal(status: ExecutionStatus): boolean {
  return FINAL[status];
}

/** A status (execution or version) as people read it: `timed_out` → "timed out". */
export function statusText(status: string): string {
  return status.replaceAll("_", " ");
}

/** A sample run a developer declares in agent.json (`examples`), read defensively. */
export interface Example {
  title: string | null;
  inputs: unknown;
  output: unknown;
  hasOutput: boolean;
}

export function examples(manifest: Record<string, unknown>): Example[] {
  return (Array.isArray(manifest.examples) ? manifest.examples : []).map(record).map((example) => ({
    title: typeof example.title === "string" ? example.title : null,
    inputs: example.inputs,
    output: example.output,
    hasOutput: "output" in example,
  }));
}

/** What changed in a version (agent.json `changelog`), or null. */
export function changelog(manifest: Record<string, unknown>): string | null {
  return typeof manifest.changelog === "string" && manifest.changelog.trim() ? manifest.changelog : null;
}

/** A date-time of the API as a calendar day people read ("28 Nov 2026"). */
export function day(timestamp: string | undefined, locale = "en-GB"): string {
  if (!timestamp) return "";
  const date = new Date(timestamp);
  return Number.isNaN(date.getTime())
    ? timestamp
    : new Intl.DateTimeFormat(locale, { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" }).format(date);
}

/** A date-time of the API as people read it in `timeZone` (an IANA name), which it names:
 * "Mon 7 Dec 2026, 09:00 UTC"; in UTC when this runtime does not know the zone. */
export function when(timestamp: string | undefined, timeZone = "UTC", locale = "en-GB"): string {
  if (!timestamp) return "";
  const date = new Date(timestamp);
  if (Number.isNaN(date.getTime())) return timestamp;
  const options: Intl.DateTimeFormatOptions = {
    weekday: "short",
    day: "numeric",
    month: "short",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  };
  let zone = timeZone;
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat(locale, { ...options, timeZone: zone });
  } catch {
    zone = "UTC";
    format = new Intl.DateTimeFormat(locale, { ...options, timeZone: zone });
  }
  return `${format.format(date)} ${zone}`;
}

/** The agents a version may call (agent.json `dependencies`): `[slug, range]`, by slug. */
export function dependencies(manifest: Record<string, unknown>): [string, string][] {
  return Object.entries(record(manifest.dependencies))
    .filter((entry): entry is [string, string] => typeof entry[1] === "string")
    .sort(([a], [b]) => a.localeCompare(b));
}
