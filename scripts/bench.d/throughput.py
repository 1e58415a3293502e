"""P3 (`GET /v1/executions/{id}`, wrk) next to `pgbench -S`, and P6 (`POST …/executions`, wrk)
next to `pgbench -N`: the API through the gateway and the control plane against the database
it stands on, on the same machine in the same run."""

import os
import re
import statistics
import subprocess

import cpu
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


def rounds(platform, reference, floor):
    """`platform()`, `floor()` and `reference()` alternated BENCH_ROUNDS times (default 3): the
    machine's speed drifts between runs (`pgbench -S` alone moved ±15 % within one session),
    and each ratio is only meaningful against a reference taken at the same time. Returns the
    medians (platform, reference, floor) and every round's numbers."""
    samples = []
    for _ in range(max(1, env("BENCH_ROUNDS", 3, int))):
        api_rate, api_raw = platform()
        floor_rate, floor_raw = floor()
        if floor_raw["non_2xx"]:
            # Its numbers would be the speed of failing; its log says why.
            raise SystemExit(f"bench: the floor answered {floor_raw['non_2xx']} non-2xx responses")
        tps, pg_raw = reference()
        samples.append({"platform": api_rate, "reference": tps, "ratio": api_rate / tps,
                        "floor": floor_rate, "floor_ratio": floor_rate / tps,
                        "platform_raw": api_raw, "floor_raw": floor_raw, "reference_raw": pg_raw})
    return (statistics.median(s["platform"] for s in samples),
            statistics.median(s["reference"] for s in samples),
            statistics.median(s["floor"] for s in samples), samples)


def floor_pids():
    return {"front": env("BENCH_PID_FLOOR_FRONT"), "backend": env("BENCH_PID_FLOOR_BACKEND")}


def say_cpu(goal, samples):
    say(f"{goal} CPU µs per request, platform: {cpu.text(samples, 'platform_raw')}")
    say(f"{goal} CPU µs per request, floor: {cpu.text(samples, 'floor_raw')}")


def per_round(samples):
    non_2xx = sum(s["platform_raw"]["non_2xx"] + s["floor_raw"]["non_2xx"] for s in samples)
    rounds_text = ", ".join(
        f"{s['platform']:.0f}/{s['reference']:.0f} = {s['ratio']:.2f}× (floor {s['floor_ratio']:.2f}×)"
        for s in samples)
    return f"{rounds_text} ({non_2xx} non-2xx)"


def p3():
    base, execution_id = env("BENCH_API"), env("BENCH_EXECUTION_ID")
    floor = env("BENCH_FLOOR")
    api_rate, tps, floor_rate, samples = rounds(
        lambda: cpu.measured(cpu.platform_pids(), lambda: wrk(f"{base}/v1/executions/{execution_id}", 32)),
        lambda: pgbench("-S"),
        lambda: cpu.measured(floor_pids(), lambda: wrk(f"{floor}/read", 32)))
    say(f"P3 GET /v1/executions/{{id}} / pgbench -S (wrk 32 connections / 16 clients), by round: {per_round(samples)}")
    say_cpu("P3", samples)
    # The decomposition of the GET: the gateway alone, then with its gRPC hop to the control
    # plane (a health check: no key, no query), then the GET (key, one query).
    health_rate, health_raw = wrk(f"{base}/healthz", 32)
    say(f"P3 gateway /healthz: {health_rate:.0f} req/s (wrk, 32 connections; the gateway alone)")
    ready_rate, ready_raw = wrk(f"{base}/readyz", 32)
    say(f"P3 gateway /readyz: {ready_rate:.0f} req/s (wrk, 32 connections; gateway + gRPC hop, no query)")
    rows = [
        row("P3", "GET /v1/executions/{id} req/s vs pgbench -S tps (medians)", api_rate, tps, 0.25, "/s", True),
        row("P3", "bound: /readyz (gateway + gRPC hop, no query)", ready_rate, tps, None, "/s", True),
        row("P3", "floor: the parts alone, pgbench -S's statement (median)", floor_rate, tps, None, "/s", True),
    ]
    save("p3", rows, {"rounds": samples, "wrk_healthz": health_raw, "wrk_readyz": ready_raw})


def p6():
    base = env("BENCH_API")
    post = os.path.join(HERE, "post.lua")
    floor = env("BENCH_FLOOR")
    api_rate, tps, floor_rate, samples = rounds(
        lambda: cpu.measured(cpu.platform_pids(), lambda: wrk(f"{base}/v1/agents/bench-noop/executions", 16, ["-s", post])),
        lambda: pgbench("-N"),
        lambda: cpu.measured(floor_pids(), lambda: wrk(f"{floor}/write", 16, ["-s", post])))
    say(f"P6 POST /v1/agents/{{slug}}/executions / pgbench -N (wrk 16 connections / 16 clients), by round: {per_round(samples)}")
    say_cpu("P6", samples)
    rows = [
        row("P6", "POST .../executions req/s vs pgbench -N tps (medians)", api_rate, tps, 0.4, "/s", True),
        row("P6", "floor: the parts alone, pgbench -N's transaction (median)", floor_rate, tps, None, "/s", True),
    ]
    save("p6", rows, {"rounds": samples})
