// The signed-in person's API key lives in an httpOnly cookie set by this server: the browser
// sends it back but no script can read it, and it never leaves for anywhere but the API.
import "server-only";

import { cookies } from "next/headers";

const KEY_COOKIE = "frameos_key";
/** A session lasts a week; the key itself may expire or be revoked sooner (the API says so). */
const MAX_AGE_SECONDS = 7 * 24 * 3600;

export async function sessionKey(): Promise<string | null> {
  return (await cookies()).get(KEY_COOKIE)?.value ?? null;
}

export async function startSession(key: string): Promise<void> {
  (await cookies()).set(KEY_COOKIE, key, {
    httpOnly: true,
    sameSite: "lax",
    secure: (process.env.FRAMEOS_SITE_URL ?? "").startsWith("https:"),
    path: "/",
    maxAge: MAX_AGE_SECONDS,
  });
}

export async function endSession(): Promise<void> {
  (await cookies()).delete(KEY_COOKIE);
}

/** A path on this site to go back to after signing in; anything else goes to `/agents`. */
export function localPath(next: string | null | undefined): string {
  return next && next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") ? next : "/agents";
}
