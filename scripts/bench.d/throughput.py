"""P3 (`GET /v1/executions/{id}`, wrk) next to `pgbench -S`, and P6 (`POST …/executions`, wrk)
next to `pgbench -N`: the API through the gateway and the control plane against the database
it stands on, on the same machine in the same run."""

import os
import re
import subprocess

from client import env, row, save, say

HERE = os.path.dirname(os.path.abspath(__file__))


def wrk(url, connections, extra=()):
    """Successful (2xx) requests a second, and the parsed wrk output."""
    seconds = env("BENCH_WRK_SECONDS", 10, int)
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency",
               "-H", f"authorization: Bearer {env('BENCH_KEY')}", *extra, url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", out)
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60}[m.group(3)]
    total, duration = int(m.group(1)), float(m.group(2)) * scale
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = int(bad.group(1)) if bad else 0
    latency = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", out, re.M))
    ok_per_sec = (total - non2xx) / duration
    return ok_per_sec, {"requests": total, "seconds": duration, "non_2xx": non2xx,
                        "socket_errors": errors.group(1) if errors else None,
                        "latency": latency, "ok_per_sec": ok_per_sec}


def pgbench(mode, clients=16):
    seconds = env("BENCH_PGBENCH_SECONDS", 10, int)
    command = [env("BENCH_PGBENCH", "pgbench"), "-h", "127.0.0.1", "-U", "postgres", mode, "-n",
               f"-c{clients}", "-j2", f"-T{seconds}", env("BENCH_PGBENCH_DB")]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    return tps, {"mode": mode, "clients": clients, "seconds": seconds, "tps": tps}


def p3():
    base, execution_id = env("BENCH_API"), env("BENCH_EXECUTION_ID")
    api_rate, api_raw = wrk(f"{base}/v1/executions/{execution_id}", 32)
    say(f"P3 GET /v1/executions/{{id}}: {api_rate:.0f} req/s (wrk, 32 connections, {api_raw['non_2xx']} non-2xx)")
    # The decomposition of the GET: the gateway alone, then with its gRPC hop to the control
    # plane (a health check: no key, no query), then the GET (key, one query).
    health_rate, health_raw = wrk(f"{base}/healthz", 32)
    say(f"P3 gateway /healthz: {health_rate:.0f} req/s (wrk, 32 connections; the gateway alone)")
    ready_rate, ready_raw = wrk(f"{base}/readyz", 32)
    say(f"P3 gateway /readyz: {ready_rate:.0f} req/s (wrk, 32 connections; gateway + gRPC hop, no query)")
    tps, pg_raw = pgbench("-S")
    say(f"P3 pgbench -S: {tps:.0f} tps (16 clients)")
    rows = [
        row("P3", "GET /v1/executions/{id} req/s vs pgbench -S tps", api_rate, tps, 0.25, "/s", True),
        row("P3", "bound: /readyz (gateway + gRPC hop, no query)", ready_rate, tps, None, "/s", True),
    ]
    save("p3", rows, {"wrk_get_execution": api_raw, "wrk_healthz": health_raw, "wrk_readyz": ready_raw,
                      "pgbench_select": pg_raw})


def p6():
    base = env("BENCH_API")
    api_rate, api_raw = wrk(f"{base}/v1/agents/bench-noop/executions", 16, ["-s", os.path.join(HERE, "post.lua")])
    say(f"P6 POST /v1/agents/{{slug}}/executions: {api_rate:.0f} req/s (wrk, 16 connections, {api_raw['non_2xx']} non-2xx)")
    tps, pg_raw = pgbench("-N")
    say(f"P6 pgbench -N: {tps:.0f} tps (16 clients)")
    rows = [row("P6", "POST .../executions req/s vs pgbench -N tps", api_rate, tps, 0.4, "/s", True)]
    save("p6", rows, {"wrk_post_execution": api_raw, "pgbench_simple_update": pg_raw})
