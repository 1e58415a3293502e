"""P4 (a printed line reaching an SSE client) and P5 (resident memory: idle, under a log flood,
with many open event streams)."""

import asyncio
import threading
import time
import urllib.parse

from client import Api, ApiError, env, percentile, row, rss_mib, save, say

# Targets of issue 10 (MiB), idle and under load alike ("flat").
RSS_TARGETS = {"node": 30, "control plane": 60, "gateway": 30}


def tick_latencies(events_api, post_api, lines, interval_ms):
    """Posts a ticking execution on post_api, listens on events_api; the milliseconds from
    each line's print (the agent's clock) to its arrival here (this host's clock)."""
    execution_id = post_api.run("bench-tools", {"mode": "tick", "lines": lines, "interval_ms": interval_ms, "delay_ms": 1500})
    latencies, status = [], None
    for _, wall, event, data in events_api.events(execution_id):
        if event == "log" and data.get("line", "").startswith("tick "):
            printed = float(data["line"].split()[2])
            latencies.append(wall * 1000 - printed)
        elif event == "status" and data.get("status") in ("succeeded", "failed", "timed_out", "canceled"):
            status = data["status"]
    if status != "succeeded":
        raise ApiError(f"tick execution {execution_id} ended {status}")
    return latencies


def p4():
    lines = env("BENCH_P4_LINES", 200, int)
    interval = env("BENCH_P4_INTERVAL_MS", 5, int)
    key = env("BENCH_KEY")
    first = Api(env("BENCH_API"), key)
    setups = [("one replica", first)]
    if env("BENCH_API2", "-") != "-":
        setups.append(("two replicas", Api(env("BENCH_API2"), key)))
    rows, raw = [], {"lines": lines, "interval_ms": interval}
    for name, listener in setups:
        latencies = tick_latencies(listener, first, lines, interval)
        say(f"P4 {name}: {len(latencies)}/{lines} lines, p50 {percentile(latencies, 50):.1f} ms, p99 {percentile(latencies, 99):.1f} ms")
        if len(latencies) < lines:
            say(f"P4 {name}: {lines - len(latencies)} lines did not arrive live")
        raw[name] = {"received": len(latencies), "latency_ms": latencies}
        rows.append(row("P4", f"log line -> SSE p50, {name}", percentile(latencies, 50), None, 20, "ms", False, ratio_of=False))
        rows.append(row("P4", f"log line -> SSE p99, {name}", percentile(latencies, 99), None, 100, "ms", False, ratio_of=False))
    save("p4", rows, raw)


def processes():
    return {"node": env("BENCH_PID_NODE"), "control plane": env("BENCH_PID_CP"), "gateway": env("BENCH_PID_GW")}


def p5_idle():
    rss = {name: rss_mib(pid) for name, pid in processes().items()}
    say("P5 idle RSS: " + ", ".join(f"{n} {v:.1f} MiB" for n, v in rss.items()))
    rows = [row("P5", f"idle RSS {n}", v, None, RSS_TARGETS[n], "MiB", False, ratio_of=False) for n, v in rss.items()]
    save("p5-idle", rows, {"rss_mib": rss})


class Sampler:
    """The peak VmRSS of each process, sampled every 100 ms while it runs."""

    def __init__(self):
        self.pids = processes()
        self.peak = {n: rss_mib(p) for n, p in self.pids.items()}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.wait(0.1):
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], rss_mib(pid))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_):
        self.stop.set()
        self.thread.join()


def flood():
    mib = env("BENCH_FLOOD_MIB", 1024, int)
    api = Api(env("BENCH_API"), env("BENCH_KEY"))
    before = {n: rss_mib(p) for n, p in processes().items()}
    with Sampler() as sampler:
        start = time.monotonic()
        execution_id = api.run("bench-tools", {"mode": "flood", "mib": mib})
        logs, status = 0, None
        # One client follows the flood live, as a user would.
        for _, _, event, data in api.events(execution_id):
            if event == "log":
                logs += 1
            elif event == "status" and data.get("status") in ("succeeded", "failed", "timed_out", "canceled"):
                status = data["status"]
        seconds = time.monotonic() - start
    after = {n: rss_mib(p) for n, p in processes().items()}
    say(f"P5 flood: {mib} MiB printed in {seconds:.1f} s, ended {status}, {logs} log events streamed")
    say("P5 flood peak RSS: " + ", ".join(f"{n} {v:.1f} MiB" for n, v in sampler.peak.items()))
    # The memory is the point: a flood cut short by its timeout (300 s, a slow machine) still
    # counts for what was printed, and says so.
    what = f"{mib} MiB log flood" if status == "succeeded" else f"log flood ({status} after {seconds:.0f} s)"
    rows = [row("P5", f"peak RSS {n}, {what}", v, None, RSS_TARGETS[n], "MiB", False, ratio_of=False)
            for n, v in sampler.peak.items()]
    return rows, {"mib": mib, "status": status, "seconds": seconds, "log_events": logs, "before_mib": before,
                  "peak_mib": sampler.peak, "after_mib": after}


async def hold_stream(host, port, path, key, opened, release, opening):
    """One SSE client: connects, reads the response head and the first event, then holds the
    stream open until `release`. At most `opening` clients connect at once: a stream's head
    takes one of the gateway's request slots (FRAMEOS_MAX_CONCURRENT_REQUESTS) until it is
    answered, and 1,000 clients arriving in the same millisecond would be load-shed (503)."""
    async with opening:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET {path} HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {key}\r\n"
                     "accept: text/event-stream\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            writer.close()
            return head.split(b"\r\n", 1)[0].decode()
        await reader.readuntil(b"\n\n")
        opened.append(1)
    try:
        await release.wait()
        return "ok"
    finally:
        writer.close()


async def hold_streams(base, key, execution_id, count, sampler_seconds):
    url = urllib.parse.urlsplit(base)
    path = f"/v1/executions/{execution_id}/events"
    opened, release, opening = [], asyncio.Event(), asyncio.Semaphore(64)
    tasks = [asyncio.create_task(hold_stream(url.hostname, url.port, path, key, opened, release, opening))
             for _ in range(count)]
    deadline = time.monotonic() + 60
    # Until every stream is open or was refused (a refused one's task is done).
    while len(opened) + sum(t.done() for t in tasks) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    open_count = len(opened)
    await asyncio.sleep(sampler_seconds)  # the streams held, idle, while RSS is sampled
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failures = {}
    for r in results:
        if r != "ok":
            failures[str(r)] = failures.get(str(r), 0) + 1
    return open_count, failures


def streams():
    count = env("BENCH_STREAMS", 1000, int)
    api = Api(env("BENCH_API"), env("BENCH_KEY"))
    execution_id = api.run("bench-tools", {"mode": "sleep", "ms": 240000})
    with Sampler() as sampler:
        open_count, failures = asyncio.run(hold_streams(env("BENCH_API"), env("BENCH_KEY"), execution_id, count, 3))
    api.request("POST", f"/v1/executions/{execution_id}/cancel")
    say(f"P5 streams: {open_count}/{count} event streams open at once" + (f"; refused/failed: {failures}" if failures else ""))
    say("P5 streams peak RSS: " + ", ".join(f"{n} {v:.1f} MiB" for n, v in sampler.peak.items()))
    rows = [row("P5", f"peak RSS {n}, {open_count} open streams", v, None, RSS_TARGETS[n], "MiB", False, ratio_of=False)
            for n, v in sampler.peak.items()]
    return rows, {"requested": count, "open": open_count, "failures": failures, "peak_mib": sampler.peak}


def p5_load():
    flood_rows, flood_raw = flood()
    stream_rows, stream_raw = streams()
    save("p5-load", flood_rows + stream_rows, {"flood": flood_raw, "streams": stream_raw})
