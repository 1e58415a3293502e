"""What bounds P2: the Docker Engine alone. The same container as the `docker run` reference
(image, lockdown, limits, package mount, runner, inputs) driven straight through the Engine
API over its socket, `parallel` at a time: create, start, wait, remove — no CLI, no attach.
Every execution on the platform costs the engine at least this (one container each, never
reused), so platform / docker-run throughput cannot exceed floor / docker-run."""

import http.client
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from client import NOOP_CPUS, NOOP_MEMORY_MB, env, runner_command

SOCKET = "/var/run/docker.sock"


class Engine(http.client.HTTPConnection):
    """One keep-alive HTTP/1.1 connection to the engine's Unix socket."""

    def __init__(self, path=SOCKET):
        super().__init__("localhost", timeout=120)
        self.socket_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock

    def call(self, method, path, body=None, ok=(200, 201, 204)):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"content-type": "application/json"} if data is not None else {}
        self.request(method, path, body=data, headers=headers)
        response = self.getresponse()
        payload = response.read()
        if response.status not in ok:
            raise RuntimeError(f"engine {method} {path}: {response.status} {payload[:300]!r}")
        return json.loads(payload) if payload else None


def body(image, agent_dir):
    """The `docker run` reference's flags as an Engine API create body. The inputs come from
    `printf` instead of an attached stdin (the runner reads them to EOF either way)."""
    memory = NOOP_MEMORY_MB * 1024 * 1024
    runner = " ".join(runner_command())
    return {
        "Image": image,
        "Cmd": ["sh", "-c", f"printf '{{}}' | exec {runner}"],
        "User": "10001:10001",
        "WorkingDir": "/agent",
        "Env": ["FRAMEOS_ENTRYPOINT=index.js", "FRAMEOS_EXECUTION_ID=bench"],
        "Labels": {"frameos.bench": env("BENCH_ID")},
        "NetworkDisabled": True,
        "HostConfig": {
            "NetworkMode": "none",
            "ReadonlyRootfs": True,
            "Tmpfs": {"/tmp": "rw,noexec,nosuid,size=64m,mode=1777"},
            "NanoCpus": int(NOOP_CPUS * 1e9),
            "Memory": memory,
            "MemorySwap": memory,
            "PidsLimit": 64,
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges"],
            "Init": True,
            "LogConfig": {"Type": "none"},
            "Mounts": [{"Type": "bind", "Source": agent_dir, "Target": "/agent", "ReadOnly": True}],
        },
    }


def floor(image, agent_dir, total, parallel):
    """Containers a second through the engine alone, `parallel` at a time."""
    local = threading.local()
    spec = body(image, agent_dir)

    def one(_):
        if not hasattr(local, "engine"):
            local.engine = Engine()
        engine = local.engine
        created = engine.call("POST", "/containers/create", spec)
        cid = created["Id"]
        try:
            engine.call("POST", f"/containers/{cid}/start")
            status = engine.call("POST", f"/containers/{cid}/wait")["StatusCode"]
            if status != 0:
                raise RuntimeError(f"engine floor: container exited {status}")
        finally:
            engine.call("DELETE", f"/containers/{cid}?force=true", ok=(204, 404))

    one(None)  # the image and the mount in the page cache; not counted
    start = time.monotonic()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(one, range(total)))
    return total / (time.monotonic() - start)
