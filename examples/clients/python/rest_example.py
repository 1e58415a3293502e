#!/usr/bin/env python3
"""A FrameOS REST client in Python that nobody here wrote: every call below goes through the
typed functions and models that openapi-python-client generated from the gateway's
/openapi.json (the package `frameos_api`), with no hand-written request.

What it does, as a script would: who am I (admin), create a developer, create an agent as that
developer, upload a version (the `word-count` example agent packed here as a gzip-compressed tar,
API.md §1), approve it as the admin, run it, poll the execution until it ends, check its output,
read its logs and list the developer's executions.

    openapi-python-client generate --path openapi.json --meta none \\
        --config scripts/clients/openapi-python-client.yaml --output-path gen/frameos_api
    FRAMEOS_API_URL=http://127.0.0.1:8080 FRAMEOS_API_KEY=fos_... \\
        python rest_example.py --client-dir gen

scripts/clients/run.sh (stage openapi_python) generates the package and runs this.
Needs: the generated package and its dependencies (httpx, attrs).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pathlib
import sys
import tarfile
import time
import uuid

REPO = pathlib.Path(__file__).resolve().parents[3]
AGENT_DIR = REPO / "examples/agents/word-count"
FINAL = {"succeeded", "failed", "timed_out", "canceled"}
TEXT = "the quick brown fox jumps over the lazy dog the end"


def load_client(client_dir: pathlib.Path) -> None:
    """Puts the generated package on sys.path (it is generated per run, not installed)."""
    if not (client_dir / "frameos_api" / "__init__.py").is_file():
        sys.exit(f"no generated package frameos_api in {client_dir}")
    sys.path.insert(0, str(client_dir))


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        sys.exit(f"{name} is not set")
    return value


def expect(response, status: int, what: str):
    """The parsed body of a `sync_detailed` answer with the expected status, else exit with the
    documented error body (`ErrorBody`)."""
    if int(response.status_code) != status or response.parsed is None:
        sys.exit(f"{what}: expected {status}, got {int(response.status_code)} {response.content[:500]!r}")
    return response.parsed


def package(slug: str) -> bytes:
    """The word-count example agent as a gzip-compressed tar, renamed to `slug` (API.md §1)."""
    manifest = json.loads((AGENT_DIR / "agent.json").read_text())
    manifest["name"] = slug
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(AGENT_DIR.iterdir()):
            data = json.dumps(manifest).encode() if path.name == "agent.json" else path.read_bytes()
            info = tarfile.TarInfo(path.name)
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def admin_client(base_url: str, admin_key: str):
    from frameos_api import AuthenticatedClient

    return AuthenticatedClient(base_url=base_url, token=admin_key, raise_on_unexpected_status=True)


def publish(base_url: str, admin, prefix: str):
    """A developer (created by the admin) with a published word-count agent: (client, slug)."""
    from frameos_api import AuthenticatedClient
    from frameos_api.api.accounts import create_account, me
    from frameos_api.api.agents import create_agent
    from frameos_api.api.reviews import approve_version
    from frameos_api.api.versions import publish_version
    from frameos_api.models import (
        AccountView,
        CreateAccount,
        CreateAccountRole,
        CreateAgent,
        NewAccountView,
        PricingType0,
        PricingType0Model,
        VersionStatus,
        VersionView,
    )
    from frameos_api.types import File

    suffix = uuid.uuid4().hex[:8]
    whoami = expect(me.sync_detailed(client=admin), 200, "GET /v1/me")
    assert isinstance(whoami, AccountView)
    print(f"me: {whoami.name} ({whoami.role.value})")

    body = CreateAccount(name=f"{prefix}-dev-{suffix}", role=CreateAccountRole.DEVELOPER)
    account = expect(create_account.sync_detailed(client=admin, body=body), 201, "POST /v1/accounts")
    assert isinstance(account, NewAccountView)
    print(f"account: {account.name} ({account.role.value})")
    # The hook only records what the generated code sends (the upload's Content-Type).
    sent: dict[str, str] = {}

    def record(request) -> None:
        sent[f"{request.method} {request.url.path}"] = request.headers.get("content-type", "")

    developer = AuthenticatedClient(
        base_url=base_url, token=account.api_key, httpx_args={"event_hooks": {"request": [record]}}
    )

    slug = f"{prefix}-words-{suffix}"
    body = CreateAgent(
        slug=slug, name="Words (openapi-python-client)", pricing=PricingType0(model=PricingType0Model.FREE)
    )
    agent = expect(create_agent.sync_detailed(client=developer, body=body), 201, "POST /v1/agents")
    print(f"agent: {agent.slug}")

    tar_gz = package(slug)
    upload = File(payload=io.BytesIO(tar_gz), file_name=f"{slug}.tar.gz", mime_type="application/gzip")
    version = expect(
        publish_version.sync_detailed(slug=slug, client=developer, body=upload),
        201,
        "POST /v1/agents/{slug}/versions",
    )
    assert isinstance(version, VersionView)
    print(
        f"version: {version.version} {version.status.value}, {version.size_bytes} bytes "
        f"(sent as {sent.get(f'POST /v1/agents/{slug}/versions')}), scan passed: {version.scan.passed}"
    )
    if version.status != VersionStatus.PENDING_REVIEW or version.size_bytes != len(tar_gz):
        sys.exit(f"unexpected upload result: {version.to_dict()}")

    approved = expect(
        approve_version.sync_detailed(slug=slug, version=version.version, client=admin),
        200,
        "POST /v1/agents/{slug}/versions/{version}/approve",
    )
    print(f"review: {approved.status.value}")
    if approved.status != VersionStatus.PUBLISHED:
        sys.exit(f"approve answered {approved.to_dict()}")
    return developer, slug


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--client-dir", type=pathlib.Path, required=True, help="where frameos_api was generated"
    )
    args = parser.parse_args()
    load_client(args.client_dir)

    from frameos_api.api.executions import create_execution, get_execution, list_executions, list_logs
    from frameos_api.models import CreateExecution, ExecutionList, ExecutionStatus

    base_url = env("FRAMEOS_API_URL")
    admin = admin_client(base_url, env("FRAMEOS_API_KEY"))
    developer, slug = publish(base_url, admin, "pyrest")

    # `inputs` is any JSON value in the document (the agent's own schema checks it): a dict.
    body = CreateExecution(inputs={"text": TEXT, "top_n": 2})
    queued = expect(
        create_execution.sync_detailed(slug=slug, client=developer, body=body),
        202,
        "POST /v1/agents/{slug}/executions",
    )
    print(f"execution: {queued.id} {queued.status.value}")

    execution = queued
    deadline = time.monotonic() + 120
    while execution.status.value not in FINAL:
        if time.monotonic() > deadline:
            sys.exit(f"still {execution.status.value} after 120 s")
        time.sleep(0.25)
        execution = expect(
            get_execution.sync_detailed(id=queued.id, client=developer), 200, "GET /v1/executions/{id}"
        )
    if execution.status != ExecutionStatus.SUCCEEDED:
        sys.exit(f"the execution ended {execution.status.value}: {execution.error}")
    output = execution.output
    print(f"result: {json.dumps(output)} in {execution.duration_ms} ms")
    expected = {"words": 11, "lines": 1, "characters": len(TEXT)}
    if {k: output.get(k) for k in expected} != expected or output["top_words"][0] != {
        "word": "the",
        "count": 3,
    }:
        sys.exit(f"unexpected output {output}")

    logs = expect(
        list_logs.sync_detailed(id=queued.id, client=developer, page_size=100),
        200,
        "GET /v1/executions/{id}/logs",
    )
    for line in logs.items:
        print(f"log #{line.seq} [{line.stream.value}] {line.line}")

    listed = expect(
        list_executions.sync_detailed(client=developer, agent=slug, page_size=10), 200, "GET /v1/executions"
    )
    assert isinstance(listed, ExecutionList)
    print(f"executions of {slug}: {', '.join(f'{e.id} {e.status.value}' for e in listed.items)}")
    if [e.id for e in listed.items] != [queued.id]:
        sys.exit(f"GET /v1/executions?agent={slug} listed {[e.id for e in listed.items]}")
    print("openapi-python-client: ok")


if __name__ == "__main__":
    main()
