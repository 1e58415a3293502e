// The execution's live events for the signed-in person's browser: this server opens the API's
// event stream with the key from the session cookie and passes the bytes through unchanged,
// so the key never reaches the page and the browser needs no cross-origin access to the API.
import { apiUrl } from "@/api/client";
import { sessionKey } from "@/api/session";

export const dynamic = "force-dynamic";

export async function GET(request: Request, { params }: { params: Promise<{ id: string }> }) {
  const key = await sessionKey();
  if (!key) return Response.json({ error: { code: "unauthenticated", message: "Sign in first." } }, { status: 401 });
  const { id } = await params;
  const headers: Record<string, string> = { authorization: `Bearer ${key}`, accept: "text/event-stream" };
  const lastEventId = request.headers.get("last-event-id");
  if (lastEventId) headers["last-event-id"] = lastEventId;
  let upstream: Response;
  try {
    upstream = await fetch(`${apiUrl()}/v1/executions/${encodeURIComponent(id)}/events`, {
      headers,
      cache: "no-store",
      signal: request.signal,
    });
  } catch {
    return Response.json(
      { error: { code: "unavailable", message: "The FrameOS API cannot be reached right now." } },
      { status: 503 },
    );
  }
  return new Response(upstream.body, {
    status: upstream.status,
    headers: {
      "content-type": upstream.headers.get("content-type") ?? "text/event-stream",
      "cache-control": "no-cache, no-transform",
      "x-accel-buffering": "no",
    },
  });
}
