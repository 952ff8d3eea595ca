"""Dashboards and alerts query only metrics, and labels, that the code exports.

The exported set comes from the Prometheus registries of the code: every module
that declares a metric is imported, and each metric's exposed series names
(`_total`, `_bucket`, ...) and label names are read from its collector. The
integration test beside this one checks the same names against the /metrics
output of the running processes.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import promql_parser
import pytest
from prometheus_client import REGISTRY

from customer_core.domain import jobs as job_names
from customer_core.pb.customer.v1 import customer_pb2
from customer_core.telemetry.tallies import FastCounter, FastGauge, FastHistogram
from tests.integration.k8s.conftest import CHART, ROOT, Manifest, find
from tests.integration.k8s.promql import Query, dashboard_queries, rule_queries, uses

DASHBOARDS = sorted((CHART / "dashboards").glob("*.json"))
# Labels Prometheus adds to every scraped series (jobs name theirs `job_name`,
# so they do not collide with `job`).
TARGET_LABELS = {"namespace", "pod", "container", "instance", "job", "service", "endpoint"}
# Series Prometheus itself makes.
BUILTIN: dict[str, set[str]] = {"up": set()}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}


def _import_metric_modules() -> None:
    for top in (ROOT / "shared", *sorted((ROOT / "services").iterdir())):
        for path in sorted(top.rglob("*.py")):
            if "/pb/" in str(path) or path.name == "__main__.py":
                continue
            text = path.read_text()
            if "prometheus_client" in text or "telemetry.tallies" in text:
                module = ".".join(path.relative_to(top).with_suffix("").parts)
                importlib.import_module(module.removesuffix(".__init__"))


def exported() -> dict[str, set[str]]:
    """Exposed series name -> label names, for every metric the code declares."""
    _import_metric_modules()
    series: dict[str, set[str]] = {}
    for collector in list(REGISTRY._collector_to_names):
        if isinstance(collector, FastCounter | FastGauge | FastHistogram):
            name, kind, labels = collector.name, collector.type, set(collector.labelnames)
        else:  # prometheus_client's own metrics
            name, kind = getattr(collector, "_name", None), getattr(collector, "_type", None)
            labels = set(getattr(collector, "_labelnames", ()))
        if name is None or kind not in SUFFIXES:
            continue
        for suffix in SUFFIXES[kind]:
            extra = {"le"} if suffix == "_bucket" else set()
            series[name + suffix] = labels | extra
    return series


@pytest.fixture(scope="module")
def exports() -> dict[str, set[str]]:
    return exported()


@pytest.fixture(scope="module")
def queries(production_manifests: list[Manifest]) -> list[Query]:
    (rule,) = find(production_manifests, "PrometheusRule")
    out = [q for path in DASHBOARDS for q in dashboard_queries(path)]
    return out + list(rule_queries(rule.body))


def test_the_four_dashboards_are_well_formed() -> None:
    assert [p.stem for p in DASHBOARDS] == ["api", "consumer", "jobs", "loyalty"]
    uids = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        uids.add(board["uid"])
        variables = [v["name"] for v in board["templating"]["list"]]
        assert variables[0] == "datasource"
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == "${datasource}"
            assert panel["targets"], panel["title"]
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24
            for target in panel["targets"]:
                for var in ("$namespace",):
                    assert var in target["expr"], f"{path.name}: {panel['title']} ignores {var}"
    assert len(uids) == len(DASHBOARDS)


def test_every_query_parses(queries: list[Query]) -> None:
    assert len(queries) > 30
    for q in queries:
        try:
            uses(q.expr)
        except Exception as exc:
            pytest.fail(f"{q.where}: {exc}\n{q.expr}")


def test_every_queried_metric_and_label_is_exported(
    queries: list[Query], exports: dict[str, set[str]]
) -> None:
    known = {**exports, **BUILTIN}
    for q in queries:
        for use in uses(q.expr):
            assert use.metric in known, f"{q.where}: {use.metric} is not exported by the code"
            missing = use.labels - known[use.metric] - TARGET_LABELS
            assert not missing, f"{q.where}: {use.metric} has no label {sorted(missing)}"


def test_every_variable_reads_a_label_the_code_declares(exports: dict[str, set[str]]) -> None:
    """Not one Prometheus adds (`job` is the process): a "Job" variable listed processes.
    `namespace` is the target label meant (the ServiceMonitor's)."""
    for path in DASHBOARDS:
        for v in json.loads(path.read_text())["templating"]["list"]:
            if v["type"] != "query":
                continue
            metric, label = re.fullmatch(
                r"label_values\((\w+),\s*(\w+)\)", v["query"]["query"]
            ).groups()  # type: ignore[union-attr]
            declared = exports.get(metric, set())
            if label != "namespace":
                assert label in declared, f"{path.name}: ${v['name']} reads {label}"


def test_each_area_has_its_panels(exports: dict[str, set[str]]) -> None:
    """The dashboards cover what the issue asks for, by metric."""
    wanted = {
        "api": {
            "customer_grpc_requests_total",
            "customer_grpc_request_duration_seconds_bucket",
            "customer_cache_requests_total",
        },
        "consumer": {
            "customer_consumer_lag",
            "customer_consumer_events_total",
            "customer_consumer_dead_letters_total",
            "customer_consumer_batch_duration_seconds_bucket",
        },
        "jobs": {
            "customer_job_runs_total",
            "customer_job_duration_seconds_bucket",
            "customer_job_rows",
            "customer_job_last_success_timestamp_seconds",
        },
        "loyalty": {"customer_points_earned_total", "customer_points_redeemed_total"},
    }
    for path in DASHBOARDS:
        metrics = {u.metric for q in dashboard_queries(path) for u in uses(q.expr)}
        assert wanted[path.stem] <= metrics, path.stem


def test_alerts_cover_lag_dead_letters_errors_latency_and_jobs(queries: list[Query]) -> None:
    alerts = {
        q.where: {u.metric for u in uses(q.expr)} for q in queries if q.where.startswith("alert")
    }
    metrics = set().union(*alerts.values())
    assert {
        "customer_consumer_lag",
        "customer_consumer_dead_letters_total",
        "customer_grpc_requests_total",
        "customer_grpc_request_duration_seconds_bucket",
        "customer_job_runs_total",
        "customer_job_last_success_timestamp_seconds",
    } <= metrics


def test_latency_leaves_out_exactly_the_streaming_methods(queries: list[Query]) -> None:
    """A stream's duration is how long the client kept it open, not latency."""
    service = customer_pb2.DESCRIPTOR.services_by_name["CustomerService"]
    streams = {m.name for m in service.methods if m.client_streaming or m.server_streaming}
    latency = [q for q in queries if "customer_grpc_request_duration_seconds_bucket" in q.expr]
    assert latency
    for q in latency:
        excluded = {
            value
            for m in _matchers(q.expr)
            if m.name == "method" and m.op == promql_parser.MatchOp.NotRe
            for value in m.value.split("|")
        }
        assert excluded == streams, q.where


def test_job_names_in_alerts_are_real_jobs(queries: list[Query]) -> None:
    named = {
        m.value
        for q in queries
        for m in _matchers(q.expr, prefix="customer_job")
        if m.name == "job_name" and not m.value.startswith("$")
    }
    assert named and named <= set(job_names.JOB_NAMES)


def _matchers(expr: str, prefix: str = "") -> list[Any]:
    found: list[Any] = []

    def visit(n: object) -> None:
        if isinstance(n, promql_parser.VectorSelector) and str(n.name).startswith(prefix):
            found.extend(n.matchers.matchers)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def test_rendered_dashboards_are_the_files(production_manifests: list[Manifest]) -> None:
    shipped = {
        key: json.loads(value)
        for m in find(production_manifests, "ConfigMap")
        for key, value in m.body["data"].items()
        if key.endswith(".json")
    }
    assert shipped == {p.name: json.loads(Path(p).read_text()) for p in DASHBOARDS}
