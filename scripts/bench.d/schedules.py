"""P7: schedule ticks. BENCH_SCHEDULES (500) schedules of the trivial agent are made due at once
with one UPDATE (as the clock reaching their minute would); the time until every one has made
its run gives ticks per second, first with one control plane, then with two replicas sharing
the database (each tick taken by one of them under FOR UPDATE SKIP LOCKED). The node is
stopped: the runs wait in the queue, so this measures making the runs, not running them."""

import json
import os
import subprocess
import time

from client import Api, env, row, save, say

# A minute that never comes during the bench: ticks are made due by the UPDATE alone.
YEARLY = "0 0 1 1 *"


def psql(sql):
    out = subprocess.run(["psql", env("BENCH_DB_URL"), "-tAc", sql],
                         capture_output=True, text=True, check=True).stdout
    return out.strip()


def wait_runs(expected, count, timeout=600):
    """Seconds until `count` schedules have made `expected` runs each."""
    start = time.monotonic()
    while True:
        done = int(psql(f"SELECT count(*) FROM schedules WHERE runs >= {expected}"))
        if done >= count:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise SystemExit(f"bench: only {done} of {count} schedules ticked within {timeout} s")
        time.sleep(0.05)


def round_of(expected, count):
    psql("UPDATE schedules SET next_run_at = now()")
    seconds = wait_runs(expected, count)
    return count / seconds, seconds


def p7_one():
    """Makes the schedules, then one round with one control plane."""
    api = Api(env("BENCH_API"), env("BENCH_KEY"))
    count = env("BENCH_SCHEDULES", 500, int)
    start = time.monotonic()
    for i in range(count):
        api.request("POST", "/v1/agents/bench-noop/schedules",
                    {"cron": YEARLY, "inputs": {"n": i}}, ok=(201,))
    created = count / (time.monotonic() - start)
    say(f"P7 POST /v1/agents/{{slug}}/schedules, one client in sequence: {created:.0f}/s")
    one, one_s = round_of(1, count)
    say(f"P7 {count} due ticks, one control plane: {one_s:.2f} s = {one:.0f} ticks/s")
    raw = {"schedules": count, "create_per_sec": created,
           "one_replica": {"seconds": one_s, "ticks_per_sec": one}}
    rows = [row("P7", f"ticks/s, {count} due at once, one control plane", one, None, None, "/s", True, False)]
    save("p7", rows, raw)


def p7_two():
    """A second round, with a second replica ticking too; checks one run per tick."""
    path = os.path.join(env("BENCH_RESULTS"), "p7.json")
    with open(path) as f:
        saved = json.load(f)
    count = saved["raw"]["schedules"]
    two, two_s = round_of(2, count)
    say(f"P7 {count} due ticks, two replicas: {two_s:.2f} s = {two:.0f} ticks/s")
    duplicated = int(psql(
        "SELECT count(*) FROM (SELECT idempotency_key FROM executions "
        "WHERE idempotency_key LIKE 'schedule:%' GROUP BY idempotency_key "
        "HAVING count(*) > 1) d"))
    runs = int(psql("SELECT count(*) FROM executions WHERE idempotency_key LIKE 'schedule:%'"))
    say(f"P7 runs made: {runs} for {2 * count} ticks, {duplicated} ticks with two runs")
    if runs != 2 * count or duplicated:
        raise SystemExit("bench: a tick made no run or two")
    saved["raw"]["two_replicas"] = {"seconds": two_s, "ticks_per_sec": two, "runs": runs}
    saved["rows"].append(row("P7", f"ticks/s, {count} due at once, two replicas", two, None, None,
                             "/s", True, False))
    save("p7", saved["rows"], saved["raw"])
