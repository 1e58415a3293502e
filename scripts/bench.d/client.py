"""What every phase of scripts/bench shares: the REST API (API.md §2) over http.client, its
Server-Sent Events, the bench agents, percentiles, RSS and the result files.

Only public contracts are used: the REST API, the package format and /proc.
"""

import http.client
import io
import json
import functools
import math
import os
import subprocess
import tarfile
import time
import urllib.parse

# Executions end with one of these; `end` follows the last status event.
TERMINAL = {"succeeded", "failed", "timed_out", "canceled"}

# The trivial agent: default resources (1 core, 256 MB, 60 s), so it is what a pool of
# the default class would serve. The docker-run reference uses the same limits.
NOOP = {
    "agent.json": {
        "name": "bench-noop",
        "version": "1.0.0",
        "runtime": "node",
        "entrypoint": "index.js",
        "inputs": {"type": "object"},
    },
    "index.js": "module.exports = async () => ({ ok: true });\n",
}
NOOP_MEMORY_MB = 256
NOOP_CPUS = 1

NODE_IMAGE = "frameos/runtime-node:1"


@functools.cache
def runner_command():
    """How the execution node starts the runner of a NOOP_MEMORY_MB container (the sandbox's
    `Snapshots::command`): restored from the image's snapshot of the runner when the image has
    one for the heap limit (ADR 0034), else from runner.js. The references run the same. Asked
    of the engine once, so no measured phase pays for it."""
    heap = NOOP_MEMORY_MB * 3 // 4
    label = subprocess.run(
        ["docker", "image", "inspect", "-f",
         '{{ index .Config.Labels "org.frameos.node-snapshot-heaps" }}', NODE_IMAGE],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    if str(heap) in label:
        return ("node", f"--max-old-space-size={heap}", "--snapshot-blob", f"/opt/frameos/runner-heap-{heap}.blob")
    return ("node", f"--max-old-space-size={heap}", "/opt/frameos/runner.js")


# The agent of P4 and P5: prints timestamped lines, floods its output, or sleeps.
TOOLS_JS = r"""
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => (performance.timeOrigin + performance.now()).toFixed(3);
const write = (chunk) => new Promise((r) => process.stdout.write(chunk, r));
module.exports = async (inputs) => {
  if (inputs.mode === 'tick') {
    await sleep(inputs.delay_ms || 1000);
    for (let i = 0; i < inputs.lines; i++) {
      console.log(`tick ${i} ${now()}`);
      await sleep(inputs.interval_ms);
    }
    return { lines: inputs.lines };
  }
  if (inputs.mode === 'flood') {
    const line = 'x'.repeat(1023) + '\n';
    const chunk = line.repeat(1024); // 1 MiB
    for (let i = 0; i < inputs.mib; i++) await write(chunk);
    return { mib: inputs.mib };
  }
  if (inputs.mode === 'sleep') {
    await sleep(inputs.ms);
    return { slept: inputs.ms };
  }
  throw new Error('unknown mode');
};
"""
TOOLS = {
    "agent.json": {
        "name": "bench-tools",
        "version": "1.0.0",
        "runtime": "node",
        "entrypoint": "index.js",
        "inputs": {"type": "object"},
        "resources": {"cpu_cores": 1, "memory_mb": 256, "timeout_ms": 300000},
    },
    "index.js": TOOLS_JS,
}


class ApiError(Exception):
    pass


class Api:
    """One keep-alive HTTP/1.1 connection to a gateway."""

    def __init__(self, base, key, timeout=120):
        url = urllib.parse.urlsplit(base)
        self.host, self.port = url.hostname, url.port or 80
        self.key = key
        self.timeout = timeout
        self.conn = None

    def headers(self, extra=None):
        h = {"authorization": f"Bearer {self.key}"}
        h.update(extra or {})
        return h

    def request(self, method, path, body=None, content_type="application/json", ok=(200, 201, 202)):
        data = body
        if body is not None and content_type == "application/json":
            data = json.dumps(body).encode()
        headers = self.headers({"content-type": content_type} if body is not None else {})
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (ConnectionError, http.client.HTTPException):
                # A keep-alive connection the server closed: once more on a new one.
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        if resp.status not in ok:
            raise ApiError(f"{method} {path}: {resp.status} {raw[:300]!r}")
        return json.loads(raw) if raw else None

    def run(self, slug, inputs):
        """POST an execution; its id."""
        return self.request("POST", f"/v1/agents/{slug}/executions", {"inputs": inputs})["id"]

    def events(self, execution_id):
        """The execution's SSE events as (monotonic receive time, wall-clock receive time,
        event, parsed data), until the stream closes. A connection of its own: the stream
        holds it."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request("GET", f"/v1/executions/{execution_id}/events", headers=self.headers())
            resp = conn.getresponse()
            if resp.status != 200:
                raise ApiError(f"events of {execution_id}: {resp.status} {resp.read()[:300]!r}")
            event, data = "message", []
            while True:
                line = resp.readline()
                if not line:
                    return
                line = line.rstrip(b"\r\n")
                if line:
                    field, _, value = line.decode().partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if field == "event":
                        event = value
                    elif field == "data":
                        data.append(value)
                    continue
                if data:
                    received, wall = time.monotonic(), time.time()
                    text = "\n".join(data)
                    try:
                        parsed = json.loads(text)
                    except ValueError:
                        parsed = text
                    yield received, wall, event, parsed
                event, data = "message", []
        finally:
            conn.close()

    def wait_terminal(self, execution_id):
        """(monotonic time the terminal status arrived, status)."""
        for received, _, event, data in self.events(execution_id):
            if event == "status" and data.get("status") in TERMINAL:
                return received, data["status"]
            if event == "error":
                raise ApiError(f"events of {execution_id}: {data}")
        raise ApiError(f"events of {execution_id} closed before a final status")


def package_bytes(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, content in files.items():
            raw = (json.dumps(content) if isinstance(content, dict) else content).encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(raw), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


def write_agent_dir(files, directory):
    """The package unpacked, readable by the sandbox user, for the docker-run reference."""
    os.makedirs(directory, exist_ok=True)
    os.chmod(directory, 0o755)
    for name, content in files.items():
        path = os.path.join(directory, name)
        with open(path, "w") as f:
            f.write(json.dumps(content) if isinstance(content, dict) else content)
        os.chmod(path, 0o644)


def publish(api, files):
    """Creates the agent (free), uploads and approves version 1.0.0; its slug."""
    slug = files["agent.json"]["name"]
    api.request("POST", "/v1/agents", {"slug": slug, "name": slug, "pricing": {"model": "free"}})
    version = api.request("POST", f"/v1/agents/{slug}/versions", package_bytes(files), "application/gzip")
    if version.get("status") != "pending_review":
        raise ApiError(f"upload of {slug}: {version}")
    api.request("POST", f"/v1/agents/{slug}/versions/1.0.0/approve")
    return slug


def percentile(values, p):
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def rss_mib(pid):
    """VmRSS of a process in MiB, from /proc/<pid>/status."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def env(name, default=None, cast=str):
    value = os.environ.get(name)
    if value is None or value == "":
        if default is None:
            raise SystemExit(f"bench: {name} is not set")
        return default
    return cast(value)


def row(goal, metric, platform, reference, target, unit, higher_is_better, ratio_of=True):
    """One line of the table. With ratio_of, the ratio is platform / reference and the target
    applies to it; without, the target applies to the platform's value itself. A row without
    a target is context (what bounds a goal), not a goal."""
    ratio = platform / reference if ratio_of and reference else None
    value = ratio if ratio_of else platform
    met = None
    if target is not None and value is not None and not math.isnan(value):
        met = value >= target if higher_is_better else value <= target
    return {
        "goal": goal,
        "metric": metric,
        "platform": platform,
        "reference": reference,
        "ratio": ratio,
        "target": target,
        "target_on": "ratio" if ratio_of else "platform",
        "higher_is_better": higher_is_better,
        "unit": unit,
        "met": met,
    }


def save(phase, rows, raw):
    path = os.path.join(env("BENCH_RESULTS"), f"{phase}.json")
    with open(path, "w") as f:
        json.dump({"phase": phase, "rows": rows, "raw": raw}, f, indent=1)


def say(*args):
    print("  ", *args, flush=True)
