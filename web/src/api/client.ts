// The REST API, read from the Next.js server. The API is the only source of truth: these
// functions fetch and type what it answers, and hold no rules of their own.
import "server-only";

import type { components } from "./schema";

export type Agent = components["schemas"]["AgentView"];
export type AgentList = components["schemas"]["AgentList"];
export type Version = components["schemas"]["VersionView"];
export type Pricing = components["schemas"]["Pricing"];
export type Account = components["schemas"]["AccountView"];
export type Execution = components["schemas"]["ExecutionView"];
export type LogPage = components["schemas"]["LogPage"];
export type LogLine = components["schemas"]["LogLineView"];
type ErrorBody = components["schemas"]["ErrorBody"];

/** An answer of the API that is not a success, with the message people read. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The gateway's base URL (`FRAMEOS_API_URL`), `frameos dev`'s by default. */
export function apiUrl(): string {
  return (process.env.FRAMEOS_API_URL ?? "http://127.0.0.1:8080").replace(/\/+$/, "");
}

/** How long a public list may be served from the cache: an agent published while the site
 * runs shows within a minute. */
export const LIST_SECONDS = 60;

/** The cache tag of the public list: an approval through this site expires it at once. */
export const AGENTS_TAG = "agents";

interface Options extends RequestInit {
  next?: { revalidate: number; tags?: string[] };
  /** The caller's API key, sent as `Authorization: Bearer`. */
  key?: string;
  json?: unknown;
  /** The body's type when it is not `json`. */
  contentType?: string;
}

async function call<T>(path: string, { key, json, contentType, ...init }: Options): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (key) headers.authorization = `Bearer ${key}`;
  if (json !== undefined) headers["content-type"] = "application/json";
  else if (contentType) headers["content-type"] = contentType;
  let response: Response;
  try {
    response = await fetch(`${apiUrl()}${path}`, {
      ...init,
      headers,
      body: json === undefined ? init.body : JSON.stringify(json),
    });
  } catch {
    throw new ApiError(503, "unavailable", "The marketplace cannot reach the FrameOS API right now. Try again in a moment.");
  }
  if (!response.ok) {
    const body = (await response.json().catch(() => null)) as ErrorBody | null;
    throw new ApiError(
      response.status,
      body?.error.code ?? "unavailable",
      body?.error.message ?? `The API answered ${response.status}.`,
    );
  }
  // 204 No Content (a deletion): nothing to read.
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

export interface AgentQuery {
  q?: string;
  runtime?: string;
  pricingModel?: string;
  maxPriceMinor?: number;
  pageToken?: string;
  pageSize?: number;
}

/** Published agents, as `GET /v1/agents` lists them. */
export function listAgents(query: AgentQuery = {}): Promise<AgentList> {
  const params = new URLSearchParams();
  if (query.q) params.set("q", query.q);
  if (query.runtime) params.set("runtime", query.runtime);
  if (query.pricingModel) params.set("pricing_model", query.pricingModel);
  if (query.maxPriceMinor) params.set("max_price_minor", String(query.maxPriceMinor));
  if (query.pageToken) params.set("page_token", query.pageToken);
  if (query.pageSize) params.set("page_size", String(query.pageSize));
  const search = params.size > 0 ? `?${params.toString()}` : "";
  return call<AgentList>(`/v1/agents${search}`, { next: { revalidate: LIST_SECONDS, tags: [AGENTS_TAG] } });
}

/** One agent with its highest published version; `null` when there is none by that slug. */
export async function getAgent(slug: string): Promise<Agent | null> {
  try {
    return await call<Agent>(`/v1/agents/${encodeURIComponent(slug)}`, { cache: "no-store" });
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}

/** The account of `key`: signing in checks the key with it. */
export function me(key: string): Promise<Account> {
  return call<Account>("/v1/me", { key, cache: "no-store" });
}

/** Starts a run of the agent's latest published version; answers the queued execution. */
export function createExecution(key: string, slug: string, inputs: unknown): Promise<{ id: string }> {
  return call<{ id: string }>(`/v1/agents/${encodeURIComponent(slug)}/executions`, {
    key,
    method: "POST",
    json: { inputs },
    cache: "no-store",
  });
}

/** One of the caller's executions; `null` when it is not theirs or does not exist. */
export async function getExecution(key: string, id: string): Promise<Execution | null> {
  try {
    return await call<Execution>(`/v1/executions/${encodeURIComponent(id)}`, { key, cache: "no-store" });
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}

/** The first page of an execution's log lines. */
export function listLogs(key: string, id: string): Promise<LogPage> {
  return call<LogPage>(`/v1/executions/${encodeURIComponent(id)}/logs`, { key, cache: "no-store" });
}

export type Mandate = components["schemas"]["MandateView"];
export type MandateKeys = components["schemas"]["MandateKeyList"];

/** The signed mandate of one of the caller's paid executions. */
export function getMandate(key: string, id: string): Promise<Mandate> {
  return call<Mandate>(`/v1/executions/${encodeURIComponent(id)}/mandate`, { key, cache: "no-store" });
}

/** The platform's public keys that verify mandates (retired ones included). */
export function mandateKeys(): Promise<MandateKeys> {
  return call<MandateKeys>("/v1/billing/mandate-keys", { cache: "no-store" });
}

export type VersionList = components["schemas"]["VersionList"];
export type ExecutionList = components["schemas"]["ExecutionList"];
export type Balance = components["schemas"]["BalanceView"];
export type NewAgent = components["schemas"]["CreateAgent"];

/** Versions waiting for an admin's review (admin only). */
export function listReviews(key: string): Promise<VersionList> {
  return call<VersionList>("/v1/reviews?status=pending_review", { key, cache: "no-store" });
}

/** Versions the auto review mode published and sampled for a spot check (admin only). */
export function listSpotChecks(key: string): Promise<VersionList> {
  return call<VersionList>("/v1/reviews?status=spot_check", { key, cache: "no-store" });
}

function versionPath(slug: string, version: string): string {
  return `/v1/agents/${encodeURIComponent(slug)}/versions/${encodeURIComponent(version)}`;
}

export function approveVersion(key: string, slug: string, version: string): Promise<Version> {
  return call<Version>(`${versionPath(slug, version)}/approve`, { key, method: "POST", cache: "no-store" });
}

export function rejectVersion(key: string, slug: string, version: string, reason: string): Promise<Version> {
  return call<Version>(`${versionPath(slug, version)}/reject`, {
    key,
    method: "POST",
    json: { reason },
    cache: "no-store",
  });
}

export function createAgent(key: string, agent: NewAgent): Promise<Agent> {
  return call<Agent>("/v1/agents", { key, method: "POST", json: agent, cache: "no-store" });
}

/** Uploads a package (gzip-compressed tar) as a new version; the answer carries the scan. */
export function publishVersion(key: string, slug: string, packageBytes: ArrayBuffer): Promise<Version> {
  return call<Version>(`/v1/agents/${encodeURIComponent(slug)}/versions`, {
    key,
    method: "POST",
    body: packageBytes,
    contentType: "application/gzip",
    cache: "no-store",
  });
}

/** The versions of an agent the caller owns (or any agent, for an admin). */
export function listVersions(key: string, slug: string): Promise<VersionList> {
  return call<VersionList>(`/v1/agents/${encodeURIComponent(slug)}/versions`, { key, cache: "no-store" });
}

export interface ExecutionQuery {
  status?: string;
  agent?: string;
  pageToken?: string;
}

/** The caller's executions, newest first. */
export function listExecutions(key: string, query: ExecutionQuery): Promise<ExecutionList> {
  const params = new URLSearchParams();
  if (query.status) params.set("status", query.status);
  if (query.agent) params.set("agent", query.agent);
  if (query.pageToken) params.set("page_token", query.pageToken);
  params.set("page_size", "20");
  return call<ExecutionList>(`/v1/executions?${params.toString()}`, { key, cache: "no-store" });
}

/** An account's balance and the ledger entries behind it. */
export function getBalance(key: string, accountId: string): Promise<Balance> {
  return call<Balance>(`/v1/accounts/${encodeURIComponent(accountId)}/balance`, { key, cache: "no-store" });
}

/** The caller's own agents (a developer), published or not. */
export function listMyAgents(key: string): Promise<AgentList> {
  return call<AgentList>("/v1/agents?mine=true&page_size=100", { key, cache: "no-store" });
}

/** The published versions of an agent, highest first: its release history. */
export function listReleases(slug: string): Promise<VersionList> {
  return call<VersionList>(`/v1/agents/${encodeURIComponent(slug)}/releases`, {
    next: { revalidate: LIST_SECONDS, tags: [AGENTS_TAG] },
  });
}

export type PackageFileList = components["schemas"]["PackageFileList"];
export type PackageFileContent = components["schemas"]["PackageFileContent"];
export type Earnings = components["schemas"]["EarningsList"];

/** The files of a version's package (its developer or an admin). */
export function listPackageFiles(key: string, slug: string, version: string): Promise<PackageFileList> {
  return call<PackageFileList>(`${versionPath(slug, version)}/files`, { key, cache: "no-store" });
}

/** One file of a version's package; `path` may hold `/`. */
export function getPackageFile(key: string, slug: string, version: string, path: string): Promise<PackageFileContent> {
  const encoded = path.split("/").map(encodeURIComponent).join("/");
  return call<PackageFileContent>(`${versionPath(slug, version)}/files/${encoded}`, { key, cache: "no-store" });
}

/** What each of the caller's agents has earned them. */
export function listEarnings(key: string): Promise<Earnings> {
  return call<Earnings>("/v1/me/earnings", { key, cache: "no-store" });
}

export type Schedule = components["schemas"]["ScheduleView"];
export type ScheduleList = components["schemas"]["ScheduleList"];
export type NewSchedule = components["schemas"]["CreateSchedule"];

/** Runs the agent on a cron expression with the caller's key; a paid agent needs `mandate`. */
export function createSchedule(key: string, slug: string, schedule: NewSchedule): Promise<Schedule> {
  return call<Schedule>(`/v1/agents/${encodeURIComponent(slug)}/schedules`, {
    key,
    method: "POST",
    json: schedule,
    cache: "no-store",
  });
}

/** Every schedule of the caller, newest first. */
export function listSchedules(key: string): Promise<ScheduleList> {
  return call<ScheduleList>("/v1/schedules", { key, cache: "no-store" });
}

/** Stops one of the caller's schedules for good. */
export function deleteSchedule(key: string, id: string): Promise<void> {
  return call<void>(`/v1/schedules/${encodeURIComponent(id)}`, { key, method: "DELETE", cache: "no-store" });
}
