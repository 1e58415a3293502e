"""The table of scripts/bench, and its machine-readable summary (JSON)."""

import json
import os
import platform
import subprocess
import time

from client import env

ORDER = ["p5-idle", "p1", "p2", "p4", "p5-load", "p3", "p6", "p7"]
GOAL_ORDER = ["P1", "P2", "P3", "P4", "P5", "P6", "P7"]


def fmt(value, unit):
    if value is None:
        return "—"
    if value < 10:
        return f"{value:.2f} {unit}"
    if value < 100:
        return f"{value:.1f} {unit}"
    return f"{value:,.0f} {unit}"


def target_text(r):
    if r["target"] is None:
        return "(bound)"
    sign = "≥" if r["higher_is_better"] else "≤"
    if r["target_on"] == "ratio":
        return f"{sign} {r['target']}×"
    return f"{sign} {r['target']} {r['unit']}"


def main():
    results = env("BENCH_RESULTS")
    phases = []
    for name in ORDER:
        path = os.path.join(results, f"{name}.json")
        if os.path.exists(path):
            with open(path) as f:
                phases.append(json.load(f))
    rows = [r for p in phases for r in p["rows"]]
    rows.sort(key=lambda r: GOAL_ORDER.index(r["goal"]))
    header = ["goal", "what", "platform", "reference", "ratio", "target", "met?"]
    lines = []
    for r in rows:
        ratio = f"{r['ratio']:.2f}×" if r["ratio"] is not None else "—"
        met = {True: "yes", False: "NO", None: "?" if r["target"] is not None else ""}[r["met"]]
        lines.append([r["goal"], r["metric"], fmt(r["platform"], r["unit"]), fmt(r["reference"], r["unit"]),
                      ratio, target_text(r), met])
    widths = [max(len(x[i]) for x in [header] + lines) for i in range(len(header))]
    print()
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("-+-".join("-" * w for w in widths))
    for line in lines:
        print(" | ".join(c.ljust(w) for c, w in zip(line, widths)))
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    summary = {
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": commit,
        "host": {"cpus": os.cpu_count(), "machine": platform.machine(),
                 "load_average_at_start": env("BENCH_LOAD_AT_START", "?"),
                 "load_average_at_end": open("/proc/loadavg").read().split()[:3]},
        "settings": {k: v for k, v in sorted(os.environ.items())
                     if k.startswith("BENCH_") and k not in ("BENCH_KEY",)},
        "rows": rows,
        "phases": {p["phase"]: p["raw"] for p in phases},
    }
    out = env("BENCH_SUMMARY")
    with open(out, "w") as f:
        json.dump(summary, f, indent=1)
    print(f"\nraw numbers and the table as JSON: {out}")


if __name__ == "__main__":
    main()
