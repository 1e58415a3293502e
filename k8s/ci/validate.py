#!/usr/bin/env python3
"""Renders every kustomization under k8s/ and validates every document it produces.

- Built-in kinds: kubernetes-validate --strict against each Kubernetes version in
  K8S_VERSIONS (unknown fields are errors, as with `kubectl apply --validate=strict`).
- Custom resources (KEDA, Prometheus Operator): the vendored JSON schemas in k8s/ci/schemas/.
  A kind that neither knows fails the run: every document is validated by one of the two.
- PromQL of the alerts and the Grafana dashboard: parsed (promql-parser), and every frameos_*
  metric must be one of the names fixed for the services.
- Posture: tagged images (never :latest), CPU and memory limits, probes, the security context
  each workload is meant to have; every FRAMEOS_* setting is one some binary reads.

Run by scripts/test with the tools of its venv; by hand:
  python3 k8s/ci/validate.py --kubectl kubectl --kubernetes-validate kubernetes-validate
Exit status 1 names every failure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jsonschema
import promql_parser
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
DEFAULT_VERSIONS = "1.35.0 1.36.0 1.37.0"

# The metric families the services export (API.md §4.3 and the names fixed with them).
METRICS = {
    "frameos_executions_total", "frameos_execution_duration_seconds", "frameos_queue_depth",
    "frameos_outbox_pending", "frameos_node_running_executions", "frameos_egress_decisions_total",
    "frameos_charges_total", "frameos_http_requests_total", "frameos_grpc_requests_total",
    "frameos_amqp_publish_duration_seconds", "frameos_reconcile_runs_total",
    "frameos_reconcile_fixes_total", "frameos_package_cache_requests_total",
    "frameos_docker_request_duration_seconds", "frameos_egress_bytes_total",
    "frameos_node_heartbeat_age_seconds", "frameos_executions_stuck",
    "frameos_http_request_duration_seconds", "frameos_grpc_request_duration_seconds",
    "frameos_outbox_oldest_age_seconds", "frameos_schedule_ticks_total",
    "frameos_schedules_overdue_seconds",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# FRAMEOS_* settings fixed for the services before every service reads them (the brief of
# issue 8); all others must be read by some binary (clap `env = "…"` in services/ or libs/).
FIXED_SETTINGS = {
    "FRAMEOS_METRICS_ADDR", "FRAMEOS_TLS_CERT", "FRAMEOS_TLS_KEY", "FRAMEOS_TLS_CLIENT_CA",
    "FRAMEOS_CONTROL_PLANE_CA", "FRAMEOS_TLS_CLIENT_CERT", "FRAMEOS_TLS_CLIENT_KEY",
}
WORKLOADS = {"Deployment", "DaemonSet", "StatefulSet", "Job"}
# Workloads allowed host paths, and the only paths they may mount.
HOST_PATHS = {"execution-node": {"/var/run/docker.sock", "/var/lib/frameos"}}


class Report:
    def __init__(self) -> None:
        self.failures: list[str] = []

    def fail(self, where: str, message: str) -> None:
        self.failures.append(f"{where}: {message}")


def kustomizations(k8s: Path) -> list[Path]:
    """Every renderable kustomization (components are rendered through the overlays using them)."""
    found = []
    for path in sorted(k8s.rglob("kustomization.yaml")):
        doc = yaml.safe_load(path.read_text())
        if doc.get("kind", "Kustomization") == "Kustomization":
            found.append(path.parent)
    return found


def render(kubectl: str, directory: Path) -> str:
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip() or f"kubectl kustomize exited {result.returncode}")
    return result.stdout


def load_schemas() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    validators = {}
    for path in sorted(SCHEMAS.glob("*.json")):
        schema = json.loads(path.read_text())
        api = schema["properties"]["apiVersion"]["const"]
        kind = schema["properties"]["kind"]["const"]
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        validators[(api, kind)] = cls(schema)
    return validators


def validate_builtin(tool: str, files: list[Path], versions: list[str], custom: set, report: Report) -> int:
    """kubernetes-validate --strict per version; returns how many documents passed."""
    passed = 0
    unknown = re.compile(r"Couldn't find schema for kind (\S+) with api version (\S+)")
    # One process per version, side by side: each spends most of its time loading schemas.
    running = [
        (version, subprocess.Popen(
            [tool, "--strict", "-k", version, *map(str, files)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ))
        for version in versions
    ]
    for version, process in running:
        output, _ = process.communicate()
        failed_before = len(report.failures)
        for line in output.splitlines():
            if " passed for resource " in line:
                passed += 1
                continue
            match = unknown.search(line)
            if match and (match.group(2), match.group(1)) in custom:
                continue  # validated against the vendored schema below
            if line.strip():
                report.fail(f"kubernetes {version}", line.strip())
        if process.returncode != 0 and len(report.failures) == failed_before:
            report.fail(f"kubernetes {version}", f"kubernetes-validate exited {process.returncode}")
    return passed


def metric_names(expr: str) -> set[str]:
    names = set()
    for name in re.findall(r"\bframeos_[a-z0-9_]+", expr):
        for suffix in HISTOGRAM_SUFFIXES:
            if name.endswith(suffix) and name[: -len(suffix)] in METRICS:
                name = name[: -len(suffix)]
        names.add(name)
    return names


def check_promql(where: str, expr: str, report: Report) -> None:
    # Grafana's interval variables are not PromQL; any duration stands in for them.
    concrete = re.sub(r"\$__(rate_)?interval|\$__range", "5m", expr)
    try:
        promql_parser.parse(concrete)
    except Exception as e:  # the parser raises a bare ValueError-like error
        report.fail(where, f"PromQL does not parse: {e}: {expr.strip()}")
    for name in sorted(metric_names(expr) - METRICS):
        report.fail(where, f"unknown metric {name} (not exported by any service)")


def check_rules(origin: str, doc: dict, report: Report) -> int:
    count = 0
    for group in doc["spec"].get("groups", []):
        for rule in group.get("rules", []):
            where = f"{origin} PrometheusRule/{doc['metadata']['name']} {rule.get('alert', rule.get('record'))}"
            check_promql(where, str(rule["expr"]), report)
            count += 1
            if "alert" in rule:
                notes = rule.get("annotations", {})
                for key in ("summary", "description", "runbook"):
                    if not notes.get(key, "").strip():
                        report.fail(where, f"alert without a {key} annotation")
                if "severity" not in rule.get("labels", {}):
                    report.fail(where, "alert without a severity label")
    return count


def check_dashboard(origin: str, text: str, report: Report) -> int:
    dashboard = json.loads(text)
    count = 0
    seen: set[str] = set()
    for panel in dashboard.get("panels", []):
        for target in panel.get("targets", []):
            check_promql(f"{origin} dashboard panel {panel.get('title')!r}", target["expr"], report)
            seen |= metric_names(target["expr"])
            count += 1
    for name in sorted(METRICS - seen):
        report.fail(f"{origin} dashboard", f"no panel shows {name}")
    return count


def known_settings() -> set[str]:
    names = set(FIXED_SETTINGS)
    for top in ("services", "libs"):
        for path in (ROOT / top).rglob("*.rs"):
            names |= set(re.findall(r'env\s*=\s*"(FRAMEOS_[A-Z0-9_]+)"', path.read_text()))
    return names


def check_settings(origin: str, doc: dict, known: set[str], report: Report) -> None:
    """A FRAMEOS_* name no binary reads is a typo or a setting that silently does nothing."""
    where = f"{origin} {doc['kind']}/{doc['metadata']['name']}"
    names = []
    if doc["kind"] == "ConfigMap":
        names = list((doc.get("data") or {}).keys())
    spec = pod_spec(doc)
    if spec is not None:
        for container in spec.get("initContainers", []) + spec.get("containers", []):
            names += [env["name"] for env in container.get("env", [])]
    for name in names:
        if name.startswith("FRAMEOS_") and name not in known:
            report.fail(where, f"setting {name} is read by no service")


def pod_spec(doc: dict) -> dict | None:
    if doc.get("kind") in WORKLOADS:
        return doc["spec"]["template"]["spec"]
    return None


def check_posture(origin: str, doc: dict, report: Report) -> None:
    spec = pod_spec(doc)
    if spec is None:
        return
    name = doc["metadata"]["name"]
    where = f"{origin} {doc['kind']}/{name}"
    pod_security = spec.get("securityContext", {})
    if pod_security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        report.fail(where, "pod without seccompProfile RuntimeDefault")
    if not pod_security.get("runAsNonRoot"):
        report.fail(where, "pod without runAsNonRoot")
    if spec.get("automountServiceAccountToken") is not False:
        report.fail(where, "pod mounts a service-account token")
    allowed = HOST_PATHS.get(name, set())
    for volume in spec.get("volumes", []):
        if "hostPath" in volume and volume["hostPath"]["path"] not in allowed:
            report.fail(where, f"hostPath {volume['hostPath']['path']} is not allowed here")
    containers = spec.get("containers", [])
    for container in spec.get("initContainers", []) + containers:
        at = f"{where} container {container['name']}"
        image = container.get("image", "")
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        if "@" not in image and (not tag or tag == "latest"):
            report.fail(at, f"image {image!r} has no pinned tag")
        limits = container.get("resources", {}).get("limits", {})
        for resource in ("cpu", "memory"):
            if resource not in limits:
                report.fail(at, f"no {resource} limit")
        security = container.get("securityContext", {})
        if security.get("allowPrivilegeEscalation") is not False:
            report.fail(at, "allowPrivilegeEscalation is not false")
        if security.get("readOnlyRootFilesystem") is not True:
            report.fail(at, "root file system is writable")
        if security.get("capabilities", {}).get("drop") != ["ALL"]:
            report.fail(at, "capabilities are not all dropped")
        if security.get("privileged"):
            report.fail(at, "privileged")
    if doc["kind"] != "Job":
        for container in containers:
            if "livenessProbe" not in container:
                report.fail(f"{where} container {container['name']}", "no liveness probe")
            if doc["kind"] == "Deployment" and name != "execution-node" and "readinessProbe" not in container:
                report.fail(f"{where} container {container['name']}", "no readiness probe")


class Tools:
    def __init__(self, kubectl: str, kubernetes_validate: str) -> None:
        self.kubectl = kubectl
        self.kubernetes_validate = kubernetes_validate


def validate(k8s: Path, tools: Tools, versions: list[str]) -> tuple[Report, str]:
    """Renders and checks every kustomization under `k8s`; the report and a summary line."""
    started = time.monotonic()
    report = Report()
    validators = load_schemas()
    settings = known_settings()

    documents = 0
    custom_checked = 0
    expressions = 0
    with tempfile.TemporaryDirectory(prefix="frameos-k8s-") as tmp:
        files = []
        for directory in kustomizations(k8s):
            origin = str(Path("k8s") / directory.relative_to(k8s))
            try:
                rendered = render(tools.kubectl, directory)
            except RuntimeError as e:
                report.fail(origin, f"does not render: {e}")
                continue
            out = Path(tmp) / (origin.replace("/", "_") + ".yaml")
            out.write_text(rendered)
            files.append(out)
            for doc in yaml.safe_load_all(rendered):
                if not doc:
                    continue
                documents += 1
                if not doc.get("apiVersion") or not doc.get("kind") or not doc.get("metadata", {}).get("name"):
                    report.fail(origin, f"a document without apiVersion, kind or name: {str(doc)[:80]}")
                    continue
                key = (doc["apiVersion"], doc["kind"])
                label = f"{origin} {doc['kind']}/{doc['metadata']['name']}"
                if key in validators:
                    for error in validators[key].iter_errors(doc):
                        path = "/".join(str(p) for p in error.absolute_path)
                        report.fail(label, f"{path}: {error.message}")
                    custom_checked += 1
                if doc["kind"] == "PrometheusRule":
                    expressions += check_rules(origin, doc, report)
                if doc["kind"] == "ConfigMap":
                    for key_name, value in (doc.get("data") or {}).items():
                        if key_name.endswith(".json") and '"panels"' in value:
                            expressions += check_dashboard(origin, value, report)
                check_posture(origin, doc, report)
                check_settings(origin, doc, settings, report)
        builtin = validate_builtin(tools.kubernetes_validate, files, versions, set(validators), report)

    elapsed = time.monotonic() - started
    summary = (
        f"{len(files)} kustomizations, {documents} documents; {builtin} built-in document "
        f"checks against Kubernetes {', '.join(versions)}; {custom_checked} custom resources "
        f"against vendored CRD schemas; {expressions} PromQL expressions; {elapsed:.1f}s"
    )
    return report, summary


# Each breakage of a copy of k8s/ and the failure the validation must report for it.
BREAKAGES = [
    ("base/execution-node.yaml", "      tolerations:", "      tolerationz:",
     "'tolerationz' was unexpected"),
    ("components/keda-execution-nodes/scaledobject.yaml", "  pollingInterval: 15", '  pollingInterval: "15"',
     "ScaledObject/execution-node: spec/pollingInterval"),
    ("observability/alerts.yaml", "max(frameos_executions_stuck)", "max(frameos_execution_stuck)",
     "unknown metric frameos_execution_stuck"),
    ("observability/alerts.yaml", "max(frameos_outbox_oldest_age_seconds) > 120", "max(frameos_outbox_oldest_age_seconds > 120",
     "PromQL does not parse"),
    ("overlays/production/kustomization.yaml", "newTag: 0.1.0", "newTag: latest", "has no pinned tag"),
    ("base/gateway.yaml", "              drop: [\"ALL\"]", "              drop: [\"NET_RAW\"]",
     "capabilities are not all dropped"),
    ("base/kustomization.yaml", "FRAMEOS_QUEUE_NAME=", "FRAMEOS_QUEUE=", "setting FRAMEOS_QUEUE is read by no service"),
    ("observability/monitors.yaml", "kind: PodMonitor", "kind: PodMonitorz", "Couldn't find schema for kind PodMonitorz"),
]


def self_test(tools: Tools) -> int:
    """Breaks a copy of k8s/ in several ways: the validation must name every breakage."""
    with tempfile.TemporaryDirectory(prefix="frameos-k8s-broken-") as tmp:
        broken = Path(tmp) / "k8s"
        shutil.copytree(K8S, broken)
        for file, old, new, _ in BREAKAGES:
            path = broken / file
            text = path.read_text()
            if old not in text:
                print(f"FAIL self-test: {file} no longer contains {old!r}; update BREAKAGES")
                return 1
            path.write_text(text.replace(old, new, 1))
        report, summary = validate(broken, tools, DEFAULT_VERSIONS.split()[-1:])
    missed = [expected for _, _, _, expected in BREAKAGES
              if not any(expected in failure for failure in report.failures)]
    for expected in missed:
        print(f"FAIL self-test: a broken manifest passed (expected a failure naming {expected!r})")
    print(f"k8s self-test: {len(BREAKAGES) - len(missed)} of {len(BREAKAGES)} breakages caught; {summary}")
    return 1 if missed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubectl", default="kubectl")
    parser.add_argument("--kubernetes-validate", default="kubernetes-validate")
    parser.add_argument("--self-test", action="store_true",
                        help="check that broken copies of the manifests fail")
    args = parser.parse_args()
    tools = Tools(args.kubectl, args.kubernetes_validate)
    if args.self_test:
        return self_test(tools)
    versions = os.environ.get("K8S_VERSIONS", DEFAULT_VERSIONS).split()
    report, summary = validate(K8S, tools, versions)
    for failure in report.failures:
        print(f"FAIL {failure}")
    print(f"k8s: {summary}")
    if report.failures:
        print(f"k8s: {len(report.failures)} failures")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
