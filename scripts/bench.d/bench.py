"""Entry point of the Python half of scripts/bench: `bench.py <step>`."""

import sys
import time

import executions
import live
import report
import schedules
import throughput
from client import NOOP, TOOLS, Api, env, publish


def setup():
    """Publishes the bench agents and runs the trivial one once (the node is up and the
    package cached when it succeeds); prints that execution's id."""
    api = Api(env("BENCH_API"), env("BENCH_KEY"))
    publish(api, NOOP)
    publish(api, TOOLS)
    start = time.monotonic()
    execution_id = api.run("bench-noop", {})
    _, status = api.wait_terminal(execution_id)
    if status != "succeeded":
        raise SystemExit(f"bench: the warm-up execution {execution_id} ended {status}")
    print(f"  warm-up execution {execution_id} succeeded in {(time.monotonic() - start) * 1000:.0f} ms", file=sys.stderr)
    print(execution_id)


STEPS = {
    "setup": setup,
    "p1": executions.p1,
    "p2": executions.p2,
    "p3": throughput.p3,
    "p4": live.p4,
    "p5-idle": live.p5_idle,
    "p5-load": live.p5_load,
    "p6": throughput.p6,
    "p7-one": schedules.p7_one,
    "p7-two": schedules.p7_two,
    "report": report.main,
}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in STEPS:
        raise SystemExit(f"usage: bench.py {'|'.join(STEPS)}")
    STEPS[sys.argv[1]]()
