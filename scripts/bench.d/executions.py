"""P1 (one trivial execution, POST -> `succeeded`) and P2 (throughput of one node), each next
to `docker run --rm -i` of the same runtime image with the sandbox's lockdown flags."""

import os
import statistics
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import cpu
import engine
from client import NODE_IMAGE, NOOP, NOOP_CPUS, NOOP_MEMORY_MB, Api, ApiError, env, percentile, row, runner_command, save, say

IMAGE = NODE_IMAGE


def docker_command(agent_dir):
    """What the Docker sandbox creates for the trivial agent (libs/sandbox container_body),
    as one `docker run`: no network, read-only root, a small noexec /tmp, the agent's CPU
    and memory (no swap), 64 pids, no capabilities, no-new-privileges, an unprivileged
    user, an init, no log driver, the package bind-mounted read-only."""
    return [
        "docker", "run", "--rm", "-i",
        "--label", f"frameos.bench={env('BENCH_ID')}",
        "--network=none", "--read-only",
        "--tmpfs", "/tmp:rw,noexec,nosuid,size=64m,mode=1777",
        f"--cpus={NOOP_CPUS}", f"--memory={NOOP_MEMORY_MB}m", f"--memory-swap={NOOP_MEMORY_MB}m",
        "--pids-limit=64", "--cap-drop=ALL", "--security-opt=no-new-privileges",
        "--user", "10001:10001", "--init", "--log-driver=none",
        "--mount", f"type=bind,source={agent_dir},target=/agent,readonly",
        "-w", "/agent", "-e", "FRAMEOS_ENTRYPOINT=index.js", "-e", "FRAMEOS_EXECUTION_ID=bench",
        IMAGE, *runner_command(),
    ]


def docker_once(command):
    """Seconds from the start of `docker run` to its exit with the agent's result."""
    start = time.monotonic()
    done = subprocess.run(command, input=b"{}", capture_output=True, timeout=120)
    elapsed = time.monotonic() - start
    if done.returncode != 0 or b'"type":"result"' not in done.stdout:
        raise RuntimeError(f"docker run failed ({done.returncode}): {done.stdout[-300:]!r} {done.stderr[-300:]!r}")
    return elapsed


def platform_once(api, slug):
    """Seconds from the POST to the `succeeded` status event on the execution's stream."""
    start = time.monotonic()
    execution_id = api.run(slug, {})
    received, status = api.wait_terminal(execution_id)
    if status != "succeeded":
        raise ApiError(f"execution {execution_id} ended {status}")
    return received - start


def agent_dir():
    path = os.path.join(env("BENCH_WORK"), "agents", "bench-noop")
    if not os.path.isdir(path):
        from client import write_agent_dir

        write_agent_dir(NOOP, path)
    return path


def p1():
    runs = env("BENCH_P1_RUNS", 50, int)
    api = Api(env("BENCH_API"), env("BENCH_KEY"))
    command = docker_command(agent_dir())
    # Warm both paths (package cache, page cache, connections); not counted.
    for _ in range(2):
        platform_once(api, "bench-noop")
        docker_once(command)
    platform, docker = [], []
    # Interleaved, so that a noisy neighbour slows both sides alike.
    for i in range(runs):
        platform.append(platform_once(api, "bench-noop") * 1000)
        docker.append(docker_once(command) * 1000)
        if (i + 1) % 10 == 0:
            say(f"P1 {i + 1}/{runs}: platform p50 {percentile(platform, 50):.0f} ms, docker run p50 {percentile(docker, 50):.0f} ms")
    rows = [
        row("P1", "POST -> succeeded p50", percentile(platform, 50), percentile(docker, 50), 0.25, "ms", False),
        row("P1", "POST -> succeeded p99", percentile(platform, 99), percentile(docker, 99), 0.5, "ms", False),
    ]
    save("p1", rows, {"runs": runs, "platform_ms": platform, "docker_run_ms": docker})


def p2():
    total = env("BENCH_P2_EXECUTIONS", 40, int)
    parallel = env("BENCH_P2_PARALLEL", 8, int)
    base, key = env("BENCH_API"), env("BENCH_KEY")
    local = threading.local()

    def one(_):
        if not hasattr(local, "api"):
            local.api = Api(base, key)
        return platform_once(local.api, "bench-noop")

    command = docker_command(agent_dir())
    ours = cpu.platform_pids(with_node=True)
    # The three alternate BENCH_ROUNDS times (default 3): the machine's speed drifts between
    # runs by more than the goal's margin, and a ratio means something only against a reference
    # taken at the same time.
    samples = []
    for n in range(1, max(1, env("BENCH_ROUNDS", 3, int)) + 1):
        # All submitted at once; the node (FRAMEOS_NODE_CONCURRENCY=parallel) runs `parallel` at
        # a time.
        meter = cpu.Meter(ours)
        start = time.monotonic()
        with ThreadPoolExecutor(total) as pool:
            latencies = list(pool.map(one, range(total)))
        platform_s = time.monotonic() - start
        platform_cpu = meter.stop()
        meter = cpu.Meter(ours)
        start = time.monotonic()
        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(lambda _: docker_once(command), range(total)))
        docker_s = time.monotonic() - start
        docker_cpu = meter.stop()
        meter = cpu.Meter(ours)
        engine_rate = engine.floor(IMAGE, agent_dir(), total, parallel)
        engine_cpu = meter.stop()
        sample = {
            "platform_per_sec": total / platform_s, "docker_run_per_sec": total / docker_s,
            "engine_alone_per_sec": engine_rate, "platform_latency_ms": [x * 1000 for x in latencies],
            # The engine-alone phase runs one more container first (its warm-up).
            "cpu_seconds": {"platform": platform_cpu, "docker_run": docker_cpu, "engine_alone": engine_cpu},
            "runs": {"platform": total, "docker_run": total, "engine_alone": total + 1},
        }
        samples.append(sample)
        say(f"P2 round {n}: platform {sample['platform_per_sec']:.2f} /s, docker run "
            f"{sample['docker_run_per_sec']:.2f} /s ({parallel} at a time), engine alone "
            f"{engine_rate:.2f} /s: {sample['platform_per_sec'] / sample['docker_run_per_sec']:.2f}× "
            f"(engine alone {engine_rate / sample['docker_run_per_sec']:.2f}×)")
    # Where each execution's CPU went: with both cores busy, this is what bounds the rate.
    for name, key in (("platform", "platform"), ("docker run", "docker_run"), ("engine alone", "engine_alone")):
        say(f"P2 CPU ms per execution, {name}: {cpu.per_unit_median_text(samples, key)}")
    median = lambda field: statistics.median(s[field] for s in samples)  # noqa: E731
    rows = [
        row("P2", f"{total} executions, {parallel} parallel", median("platform_per_sec"),
            median("docker_run_per_sec"), 1.5, "exec/s", True),
        row("P2", "bound: the engine alone, same containers", median("engine_alone_per_sec"),
            median("docker_run_per_sec"), None, "exec/s", True),
    ]
    save("p2", rows, {"executions": total, "parallel": parallel, "rounds": samples})
