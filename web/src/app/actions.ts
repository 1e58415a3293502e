"use server";
// Server actions: the browser posts forms here and this server calls the API with the key in
// the session cookie. Each returns the API's message when the API says no.
import { revalidatePath, updateTag } from "next/cache";
import { redirect } from "next/navigation";

import {
  AGENTS_TAG,
  ApiError,
  type Version,
  approveVersion,
  createAgent,
  createExecution,
  createSchedule,
  deleteSchedule,
  me,
  publishVersion,
  rejectVersion,
} from "@/api/client";
import { endSession, localPath, sessionKey, startSession } from "@/api/session";
import { when } from "@/lib/present";

export interface Outcome {
  error: string | null;
  /** What went well, in words. */
  done?: string;
}

function message(error: unknown): string {
  return error instanceof ApiError ? error.message : "Something went wrong on our side. Try again in a moment.";
}

export async function signIn(_previous: Outcome, form: FormData): Promise<Outcome> {
  const key = String(form.get("key") ?? "").trim();
  if (!key) return { error: "Enter your API key." };
  try {
    await me(key);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return { error: "That API key is not valid." };
    return { error: message(error) };
  }
  await startSession(key);
  redirect(localPath(String(form.get("next") ?? "")));
}

export async function signOut(): Promise<void> {
  await endSession();
  redirect("/");
}

/** Runs `slug` with the JSON in the form's `inputs` field, then shows the execution. */
export async function runAgent(slug: string, _previous: Outcome, form: FormData): Promise<Outcome> {
  const key = await sessionKey();
  if (!key) redirect(`/signin?next=${encodeURIComponent(`/agents/${slug}`)}`);
  let inputs: unknown;
  try {
    inputs = JSON.parse(String(form.get("inputs") ?? ""));
  } catch {
    return { error: "The inputs are not valid JSON." };
  }
  let id: string;
  try {
    ({ id } = await createExecution(key, slug, inputs));
  } catch (error) {
    return { error: message(error) };
  }
  redirect(`/executions/${id}`);
}

async function signedIn(next: string): Promise<string> {
  const key = await sessionKey();
  if (!key) redirect(`/signin?next=${encodeURIComponent(next)}`);
  return key;
}

/** An admin publishes a version under review. */
export async function approve(slug: string, version: string): Promise<Outcome> {
  const key = await signedIn("/admin/reviews");
  try {
    await approveVersion(key, slug, version);
  } catch (error) {
    return { error: message(error) };
  }
  // The public list shows it at once (elsewhere published agents show within LIST_SECONDS).
  updateTag(AGENTS_TAG);
  redirect(`/admin/reviews?${new URLSearchParams({ published: `${slug} ${version}` }).toString()}`);
}

/** An admin rejects a version under review, telling the developer why. */
export async function reject(slug: string, version: string, _previous: Outcome, form: FormData): Promise<Outcome> {
  const key = await signedIn("/admin/reviews");
  const reason = String(form.get("reason") ?? "").trim();
  if (!reason) return { error: "Say why, for the developer." };
  try {
    await rejectVersion(key, slug, version, reason);
  } catch (error) {
    return { error: message(error) };
  }
  redirect(`/admin/reviews?${new URLSearchParams({ rejected: `${slug} ${version}` }).toString()}`);
}

/** A developer creates an agent: free, or a price per successful run in minor units. */
export async function newAgent(_previous: Outcome, form: FormData): Promise<Outcome> {
  const key = await signedIn("/developer");
  const field = (name: string) => String(form.get(name) ?? "").trim();
  const price = field("price_minor");
  const pricing =
    price === ""
      ? ({ model: "free" } as const)
      : { model: "per_execution" as const, price_minor: Number(price), currency: field("currency") as "INR" };
  if (pricing.model === "per_execution" && !Number.isInteger(pricing.price_minor)) {
    return { error: "The price is a whole number of minor units (paise, cents), or empty for free." };
  }
  try {
    await createAgent(key, { slug: field("slug"), name: field("name"), description: field("description"), pricing });
  } catch (error) {
    return { error: message(error) };
  }
  return { error: null, done: `Agent ${field("slug")} is created; publish its first version below.` };
}

export interface Published extends Outcome {
  version?: Version;
}

/** A developer uploads a package as a new version; the answer shows the scanner's findings. */
export async function publish(_previous: Published, form: FormData): Promise<Published> {
  const key = await signedIn("/developer");
  const slug = String(form.get("slug") ?? "").trim();
  const file = form.get("package");
  if (!slug) return { error: "Name the agent (its slug)." };
  if (!(file instanceof File) || file.size === 0) return { error: "Choose a package: a .tar.gz with agent.json at its root." };
  try {
    const version = await publishVersion(key, slug, await file.arrayBuffer());
    return { error: null, version };
  } catch (error) {
    return { error: message(error) };
  }
}

/** Runs `slug` on the form's cron expression and time zone with its JSON inputs; a paid agent's
 * form also carries the most one run may cost (minor units) and when that consent ends. */
export async function scheduleAgent(slug: string, _previous: Outcome, form: FormData): Promise<Outcome> {
  const key = await signedIn(`/agents/${slug}`);
  const field = (name: string) => String(form.get(name) ?? "").trim();
  let inputs: unknown;
  try {
    inputs = JSON.parse(field("inputs") || "{}");
  } catch {
    return { error: "The inputs are not valid JSON." };
  }
  if (typeof inputs !== "object" || inputs === null || Array.isArray(inputs)) {
    return { error: "The inputs are a JSON object, such as {}." };
  }
  let mandate: { max_amount_minor: number; expires_at?: string } | undefined;
  if (form.has("max_amount_minor") && field("max_amount_minor") !== "") {
    const max = Number(field("max_amount_minor"));
    if (!Number.isSafeInteger(max)) return { error: "The most per run is a whole number of minor units (paise, cents)." };
    // A day from the date picker: the mandate lasts to the end of it, in UTC.
    const expires = field("expires_on");
    mandate = { max_amount_minor: max, ...(expires ? { expires_at: `${expires}T23:59:59Z` } : {}) };
  }
  const timezone = field("timezone");
  try {
    const schedule = await createSchedule(key, slug, {
      cron: field("cron"),
      inputs: inputs as Record<string, unknown>,
      ...(timezone ? { timezone } : {}),
      ...(mandate ? { mandate } : {}),
    });
    const next = schedule.next_run_at ? `the next run is ${when(schedule.next_run_at, schedule.timezone)}` : "it has no next run";
    return { error: null, done: `Scheduled: ${next}.` };
  } catch (error) {
    return { error: message(error) };
  }
}

/** Deletes one of the caller's schedules; the dashboard then lists what is left. */
export async function removeSchedule(id: string): Promise<Outcome> {
  const key = await signedIn("/dashboard");
  try {
    await deleteSchedule(key, id);
  } catch (error) {
    return { error: message(error) };
  }
  revalidatePath("/dashboard");
  return { error: null };
}
