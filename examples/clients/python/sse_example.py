#!/usr/bin/env python3
"""An execution's live events (`GET /v1/executions/{id}/events`, Server-Sent Events) read by a
stock Python SSE client, httpx-sse, the way a browser's EventSource reads them: with no
Authorization header, a stream token in `?access_token=` instead (API.md §4.3).

The setup goes through the client that openapi-python-client generated (see rest_example.py,
which this reuses): a developer publishes the word-count example agent, runs it, and asks for a
stream token (`POST /v1/executions/{id}/stream-token` → `{token, expires_at}`). Then:

1. live: the stream is opened right after the execution is queued; it must bring `status`
   events up to a final one (`succeeded`), the `log` and `progress` events in between, and close
   with `event: end`;
2. replay: the same token opens the ended execution's stream again, which replays and closes
   with `event: end` (an EventSource would otherwise reconnect forever);
3. a token refused: a wrong token is 401 with the documented error body, before any event.

    FRAMEOS_API_URL=http://127.0.0.1:8080 FRAMEOS_API_KEY=fos_... \\
        python sse_example.py --client-dir gen

scripts/clients/run.sh (stage sse_python) generates the package and runs this.
Needs: httpx-sse, httpx, and the generated package.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import httpx
from httpx_sse import connect_sse

import rest_example
from rest_example import FINAL, TEXT, env, expect

# Connecting and the whole stream: the word-count agent ends in well under a second once it runs.
TIMEOUT = httpx.Timeout(10.0, read=60.0)


def read_events(base_url: str, execution_id: str, token: str) -> list[tuple[str, dict]]:
    """Every event of one connection as (event, data) until `end`, checking the stream's shape."""
    url = f"{base_url}/v1/executions/{execution_id}/events"
    events: list[tuple[str, dict]] = []
    started = time.monotonic()
    with httpx.Client(timeout=TIMEOUT) as http:
        with connect_sse(http, "GET", url, params={"access_token": token}) as source:
            source.response.raise_for_status()  # httpx-sse checks the text/event-stream type
            for sse in source.iter_sse():
                data = json.loads(sse.data) if sse.data else {}
                events.append((sse.event, data))
                if sse.event == "status":
                    print(f"  status: {data.get('status')}")
                elif sse.event == "log":
                    print(f"  log #{sse.id} [{data.get('stream')}] {data.get('line')}")
                elif sse.event == "progress":
                    print(f"  progress: {data.get('fraction')} {data.get('message', '')}")
                elif sse.event == "end":
                    print(f"  end: {data}")
                    break
                elif sse.event == "error":
                    sys.exit(f"the stream sent an error event: {data}")
            else:
                sys.exit(f"the stream closed without `event: end` after {[e for e, _ in events]}")
    print(f"  ({len(events)} events in {time.monotonic() - started:.2f} s)")
    return events


def check(events: list[tuple[str, dict]], execution_id: str) -> None:
    statuses = [data.get("status") for event, data in events if event == "status"]
    if not statuses or statuses[-1] != "succeeded":
        sys.exit(f"the status events were {statuses}, not ending with succeeded")
    if any(s in FINAL for s in statuses[:-1]):
        sys.exit(f"a final status before the last status event: {statuses}")
    last_status = max(i for i, (event, _) in enumerate(events) if event == "status")
    if events[-1][0] != "end" or last_status != len(events) - 2:
        sys.exit(f"`end` must come right after the last status: {[e for e, _ in events]}")
    if events[-1][1].get("status") != "succeeded":
        sys.exit(f"`end` carries {events[-1][1]}")
    if any(data.get("id") != execution_id for event, data in events if event == "status"):
        sys.exit("a status event of another execution")
    if not any(event == "log" for event, _ in events):
        sys.exit("no log event (the agent prints a line)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--client-dir", type=pathlib.Path, required=True, help="where frameos_api was generated"
    )
    args = parser.parse_args()
    rest_example.load_client(args.client_dir)

    from frameos_api.api.executions import create_execution, create_stream_token
    from frameos_api.models import CreateExecution, StreamTokenView

    base_url = env("FRAMEOS_API_URL")
    admin = rest_example.admin_client(base_url, env("FRAMEOS_API_KEY"))
    developer, slug = rest_example.publish(base_url, admin, "pysse")

    queued = expect(
        create_execution.sync_detailed(
            slug=slug, client=developer, body=CreateExecution(inputs={"text": TEXT})
        ),
        202,
        "POST /v1/agents/{slug}/executions",
    )
    token = expect(
        create_stream_token.sync_detailed(id=queued.id, client=developer),
        200,
        "POST /v1/executions/{id}/stream-token",
    )
    assert isinstance(token, StreamTokenView)
    print(f"execution {queued.id} {queued.status.value}; stream token until {token.expires_at.isoformat()}")

    print("live (httpx-sse, ?access_token=):")
    live = read_events(base_url, queued.id, token.token)
    check(live, queued.id)

    print("replay of the ended execution:")
    replay = read_events(base_url, queued.id, token.token)
    check(replay, queued.id)

    with httpx.Client(timeout=TIMEOUT) as http:
        refused = http.get(
            f"{base_url}/v1/executions/{queued.id}/events", params={"access_token": token.token + "x"}
        )
    code = (
        refused.json().get("error", {}).get("code")
        if refused.headers.get("content-type", "").startswith("application/json")
        else None
    )
    print(f"an altered token: {refused.status_code} {code}")
    if refused.status_code != 401 or code is None:
        sys.exit(f"an altered token was answered {refused.status_code} {refused.text[:200]!r}")
    print("httpx-sse: ok")


if __name__ == "__main__":
    main()
