"""CPU time by process, read from /proc around a load run: where a request's or an execution's
cost goes (the platform's processes, PostgreSQL, RabbitMQ, the engine, the load generator)."""

import os
import resource
import statistics

from client import env

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _ticks(pid):
    """utime + stime of a process (all its threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _ticks_of_all(comm):
    """Every live process named `comm` (PostgreSQL's backends, RabbitMQ's VM), by pid."""
    ticks = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == comm:
                    ticks[pid] = _ticks(pid)
        except OSError:
            pass  # ended meanwhile
    return ticks


def _grown(before, after):
    """CPU seconds the processes alive at the end used since `before` (a process that ended
    meanwhile, like a closing pgbench backend, is not counted)."""
    return sum(t - before.get(pid, 0) for pid, t in after.items()) / TICKS_PER_SECOND


def measured(pids, run):
    """`run()` (a wrk run: rate, raw) with the CPU µs each request cost each part ([`Meter`]), in
    the raw numbers as `cpu_us_per_request`. `pids`: the platform's own processes by name."""
    meter = Meter(pids)
    rate, raw = run()
    used = meter.stop()
    requests = max(1, raw["requests"])
    raw["cpu_us_per_request"] = {name: round(s * 1e6 / requests, 1) for name, s in used.items()
                                 if name not in ("machine", "rest")}
    return rate, raw


def text(samples, key):
    """The median µs per request of each process over the rounds, as one line."""
    per_part = {}
    for sample in samples:
        for name, us in sample[key]["cpu_us_per_request"].items():
            per_part.setdefault(name, []).append(us)
    medians = {name: statistics.median(values) for name, values in per_part.items()}
    return _line(medians, "µs", "total", sum(medians.values()), decimals=0)


def per_unit_text(used, units):
    """A [`Meter`]'s CPU seconds as ms per execution, as one line."""
    per_unit = {name: seconds * 1e3 / units for name, seconds in used.items() if name != "machine"}
    return _line(per_unit, "ms", "machine", used["machine"] * 1e3 / units, decimals=1)


def per_unit_median_text(samples, key):
    """The median ms per execution of each process over P2's rounds, as one line: `samples[i]`
    holds `cpu_seconds[key]` (a [`Meter`]'s) and `runs[key]`."""
    per_part = {}
    for sample in samples:
        units = sample["runs"][key]
        for name, seconds in sample["cpu_seconds"][key].items():
            per_part.setdefault(name, []).append(seconds * 1e3 / units)
    medians = {name: statistics.median(values) for name, values in per_part.items()}
    machine = medians.pop("machine")
    return _line(medians, "ms", "machine", machine, decimals=1)


def _line(values, unit, total_name, total, decimals):
    shown = 10 ** -decimals / 2  # what would print as zero is left out
    parts = [f"{name} {value:.{decimals}f}" for name, value in values.items() if value >= shown]
    return f"{', '.join(parts)} ({total_name} {total:.{decimals}f} {unit})"


def platform_pids(with_node=False):
    """The platform's own processes, as scripts/bench started them."""
    pids = {"gateway": env("BENCH_PID_GW"), "control plane": env("BENCH_PID_CP")}
    if with_node:
        pids["node"] = env("BENCH_PID_NODE")
    return pids


def _machine_busy():
    """CPU seconds the whole machine spent busy (all but idle and iowait), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / TICKS_PER_SECOND


def _long_lived(pids, comms):
    own = {name: _ticks(pid) / TICKS_PER_SECOND for name, pid in pids.items()}
    by_comm = {comm: _ticks_of_all(comm) for comm in comms}
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime
    return own, by_comm, client, _machine_busy()


# Long-lived processes by name, as the output calls them. The engine's daemons: what they start
# per container (shims, runc, the agent) ends with it and is counted as "rest".
LONG_LIVED = {"postgres": "PostgreSQL", "beam.smp": "RabbitMQ", "dockerd": "dockerd",
              "containerd": "containerd"}


class Meter:
    """Where the machine's CPU went during a phase: each named process, PostgreSQL, RabbitMQ,
    the engine's daemons, this benchmark client, and the rest (processes that ended during the
    phase: container shims, runc, the agents themselves)."""

    def __init__(self, pids):
        self.pids = pids
        self.comms = tuple(LONG_LIVED)
        self.before = _long_lived(pids, self.comms)

    def stop(self):
        own0, comm0, client0, busy0 = self.before
        own1, comm1, client1, busy1 = _long_lived(self.pids, self.comms)
        used = {name: own1[name] - own0[name] for name in self.pids}
        for comm in self.comms:
            used[LONG_LIVED[comm]] = _grown(comm0[comm], comm1[comm])
        # This process and what it ran (wrk, pgbench, docker run).
        used["bench client"] = client1 - client0
        used["rest"] = max(0.0, (busy1 - busy0) - sum(used.values()))
        used["machine"] = busy1 - busy0
        return used
