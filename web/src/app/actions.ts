"use server";
// Server actions: the browser posts forms here and this server calls the API with the key in
// the session cookie. Each returns the API's message when the API says no.
import { redirect } from "next/navigation";

import { ApiError, createExecution, me } from "@/api/client";
import { endSession, localPath, sessionKey, startSession } from "@/api/session";

export interface Outcome {
  error: string | null;
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
