#!/usr/bin/env python3
"""A FrameOS gRPC client written with nothing but the stock Python tools.

Stubs come from grpcio-tools, generated from the repository's proto/ into a temporary
directory at start; the services are then listed with grpcio-reflection's own client
(ProtoReflectionDescriptorDatabase, which speaks grpc.reflection.v1alpha).

What it does, as a script would: list the services by reflection, ask who the admin key
belongs to, create a developer, publish the `sentiment` example agent under a fresh slug,
approve it as the admin, find it in the marketplace, run it and print the result.

    python frameos_client.py --grpc 127.0.0.1:50051 --admin-key fos_... [--proto-dir proto]

Needs: grpcio, grpcio-tools, grpcio-reflection (scripts/clients/run.sh installs them).
"""

import argparse
import importlib
import io
import json
import pathlib
import sys
import tarfile
import tempfile
import time
import uuid

import grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

REPO = pathlib.Path(__file__).resolve().parents[3]
SERVICES = ["AccountService", "AgentService", "ExecutionService", "BillingService"]
TERMINAL = {"succeeded", "failed", "timed_out", "canceled"}


def generate_stubs(proto_dir: pathlib.Path, out: pathlib.Path) -> None:
    """protoc (bundled with grpcio-tools) over every file of proto_dir, Python out."""
    from grpc_tools import protoc

    files = sorted(str(p.relative_to(proto_dir)) for p in proto_dir.rglob("*.proto"))
    include = pathlib.Path(protoc.__file__).parent / "_proto"
    argv = ["protoc", f"-I{proto_dir}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}"]
    if protoc.main(argv + files) != 0:
        sys.exit("protoc failed on " + " ".join(files))
    sys.path.insert(0, str(out))


class Api:
    """Calls by rpc name. Request messages are found through the method's descriptor and
    replies are unwrapped when they wrap one message, so renamed request/response messages
    do not break the example."""

    def __init__(self, channel: grpc.Channel, stubs: pathlib.Path):
        self.methods = {}
        for path in sorted(stubs.rglob("*_pb2_grpc.py")):
            module = ".".join(path.relative_to(stubs).with_suffix("").parts)
            pb2_grpc = importlib.import_module(module)
            pb2 = importlib.import_module(module.removesuffix("_grpc"))
            for name, service in pb2.DESCRIPTOR.services_by_name.items():
                if name not in SERVICES:
                    continue
                stub = getattr(pb2_grpc, f"{name}Stub")(channel)
                for method in service.methods:
                    self.methods[method.name] = (stub, method)

    def call(self, rpc, key=None, **fields):
        stub, method = self.methods[rpc]
        request = request_class(method)(**fields)
        metadata = [("authorization", f"Bearer {key}")] if key else []
        return getattr(stub, rpc)(request, metadata=metadata, timeout=30)


def request_class(method):
    module = importlib.import_module(method.input_type.file.name.removesuffix(".proto").replace("/", ".") + "_pb2")
    return getattr(module, method.input_type.name)


def unwrap(reply, field):
    """`reply.field` when the reply wraps it (a *Response message), else the reply itself."""
    if field in reply.DESCRIPTOR.fields_by_name and reply.DESCRIPTOR.full_name.endswith("Response"):
        return getattr(reply, field)
    return reply


def label(message, field):
    """A string field, or an enum field as its JSON string (`EXECUTION_STATUS_SUCCEEDED` →
    `succeeded`), so the example reads the same before and after the vocabulary's enums."""
    value = getattr(message, field)
    descriptor = message.DESCRIPTOR.fields_by_name[field]
    if descriptor.enum_type is None:
        return value
    name = descriptor.enum_type.values_by_number[value].name
    prefix = "".join("_" + c if c.isupper() else c for c in descriptor.enum_type.name).lstrip("_").upper() + "_"
    return name.removeprefix(prefix).lower()


def package(agent_dir: pathlib.Path, slug: str) -> bytes:
    """The example agent as a gzip-compressed tar, renamed to `slug` (API.md §1)."""
    manifest = json.loads((agent_dir / "agent.json").read_text())
    manifest["name"] = slug
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(agent_dir.iterdir()):
            data = json.dumps(manifest).encode() if path.name == "agent.json" else path.read_bytes()
            info = tarfile.TarInfo(path.name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def list_services(channel: grpc.Channel) -> list:
    database = ProtoReflectionDescriptorDatabase(channel)
    services = sorted(database.get_services())
    print("reflection (v1alpha) lists:", ", ".join(services))
    missing = [s for s in SERVICES if f"frameos.v1.{s}" not in services]
    if missing:
        sys.exit(f"reflection does not list {missing}")
    # The file descriptors are served too: a method's input type resolves by name.
    from google.protobuf.descriptor_pool import DescriptorPool

    pool = DescriptorPool(database)
    method = pool.FindServiceByName("frameos.v1.ExecutionService").methods_by_name["CreateExecution"]
    print("reflection resolves CreateExecution's request:", method.input_type.full_name)
    return services


def watch(api: Api, key: str, execution_id: str, deadline_s: float):
    """WatchExecution until a final status; prints the log lines as they come."""
    stub, _ = api.methods["WatchExecution"]
    request = request_class(api.methods["WatchExecution"][1])(id=execution_id)
    events = stub.WatchExecution(request, metadata=[("authorization", f"Bearer {key}")], timeout=deadline_s)
    for event in events:
        kind = event.WhichOneof("event")
        if kind == "log":
            print(f"  log [{label(event.log, 'stream')}] {event.log.line}")
        elif kind == "status":
            status = label(event.status, "status")
            print(f"  status {status}")
            if status in TERMINAL:
                return event.status
    sys.exit("the event stream ended without a final status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grpc", required=True, help="host:port of the control plane's gRPC API")
    parser.add_argument("--admin-key", required=True)
    parser.add_argument("--proto-dir", type=pathlib.Path, default=REPO / "proto")
    parser.add_argument("--agent-dir", type=pathlib.Path, default=REPO / "examples/agents/sentiment")
    parser.add_argument("--no-run", action="store_true", help="stop before running the agent")
    args = parser.parse_args()

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="frameos-py-stubs-") as stubs:
        generate_stubs(args.proto_dir.resolve(), pathlib.Path(stubs))
        channel = grpc.insecure_channel(args.grpc)
        grpc.channel_ready_future(channel).result(timeout=30)
        list_services(channel)
        api = Api(channel, pathlib.Path(stubs))

        me = unwrap(api.call("WhoAmI", args.admin_key), "account")
        print(f"WhoAmI: {me.name} ({label(me, 'role')})")
        assert label(me, "role") == "admin", me

        suffix = uuid.uuid4().hex[:8]
        created = api.call("CreateAccount", args.admin_key, name=f"py-dev-{suffix}", role="ROLE_DEVELOPER")
        developer = created.api_key
        print(f"CreateAccount: {created.account.name} ({label(created.account, 'role')})")

        slug = f"py-sentiment-{suffix}"
        agent = unwrap(api.call("CreateAgent", developer, slug=slug, name="Sentiment (Python client)"), "agent")
        print(f"CreateAgent: {agent.slug}")
        version = unwrap(
            api.call("PublishVersion", developer, agent_slug=slug, package=package(args.agent_dir, slug)),
            "version",
        )
        print(f"PublishVersion: {version.version} {label(version, 'status')} (scan passed: {version.scan.passed})")
        approved = unwrap(api.call("ApproveVersion", args.admin_key, agent_slug=slug, version=version.version), "version")
        print(f"ApproveVersion: {label(approved, 'status')}")
        assert label(approved, "status") == "published", approved

        listed = api.call("ListAgents", None, query=slug, page_size=10)
        print("ListAgents (no key):", [a.slug for a in listed.items])
        assert [a.slug for a in listed.items] == [slug], listed

        # A bad request is a gRPC status with the platform's code in the metadata.
        try:
            api.call("CreateExecution", developer, agent_slug=slug, inputs_json='{"txt": 1}')
            sys.exit("invalid inputs were accepted")
        except grpc.RpcError as error:
            code = dict(error.trailing_metadata() or ()).get("frameos-error-code")
            print(f"CreateExecution with bad inputs: {error.code().name} ({code})")
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and code == "invalid_inputs", error

        if not args.no_run:
            text = "What a wonderful, delightful day."
            execution = unwrap(
                api.call("CreateExecution", developer, agent_slug=slug, inputs_json=json.dumps({"text": text})),
                "execution",
            )
            print(f"CreateExecution: {execution.id} {label(execution, 'status')}")
            final = watch(api, developer, execution.id, deadline_s=120)
            if label(final, "status") != "succeeded":
                sys.exit(f"the execution ended {label(final, 'status')}: {final.error}")
            output = json.loads(final.output_json)
            print("result:", json.dumps(output))
            assert output["label"] == "positive", output
        channel.close()
    print(f"python grpc client: ok in {time.monotonic() - started:.1f}s")


if __name__ == "__main__":
    main()
