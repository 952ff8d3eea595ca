"""Every dashboard and alert query, evaluated by a real Prometheus scraping the e2e processes.

Debian's `prometheus` scrapes `customer-service dev`'s processes (one scrape job per
process, as a cluster's `job` label would be) with the `namespace` label a ServiceMonitor
adds. Each dashboard's variables take their values as Grafana would ask Prometheus for
them, and each query runs with every variable at All and with each at a real value: it
must parse, return data, and an error or dead-letter panel must read 0 (not "No data")
while nothing goes wrong. The chart's alerts are loaded as Prometheus rules: each one
evaluates without error, none fires on a healthy stack, and the series each compares
with its threshold exist.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.k8s.conftest import CHART, find, render
from tests.support.e2e_simulator import Simulator
from tests.support.e2e_stack import E2EStack, metric_samples
from tests.support.prometheus import BINARY, NAMESPACE, SCRAPE_SECONDS, Prometheus

pytestmark = pytest.mark.skipif(
    BINARY is None, reason="Debian's prometheus is not installed (apt-get install prometheus)"
)

# Grafana's $__rate_interval is at least four scrape intervals.
MACROS = {"$__rate_interval": f"{8 * SCRAPE_SECONDS}s", "$__interval": "2s", "$__range": "1h"}
# Panels that count what went wrong: they read 0 on a healthy stack.
ERROR_PANEL = re.compile(r"error|dead letter|failed|failure|denied|retries|differences", re.I)
# Served by the operator, which the e2e stack does not run (it needs a cluster).
OPERATOR_ONLY = {"Campaign points awarded"}
# Alert comparisons whose left side exists only once something went wrong: the label the
# dead-letter count is by (the field at fault) is known only then.
ONLY_WHEN_WRONG = {"CustomerServiceDeadLetters"}


@pytest.fixture(scope="module")
def prometheus(e2e: E2EStack) -> Iterator[Prometheus]:
    rule = find(render({"metrics": {"prometheusRule": {"enabled": True}}}), "PrometheusRule")
    assert len(rule) == 1
    root = Path(tempfile.mkdtemp(prefix="customer-prometheus-"))
    prom = Prometheus(root, e2e.processes(), rule[0].body["spec"]["groups"])
    prom.start()
    try:
        yield prom
    finally:
        prom.stop()
        shutil.rmtree(root, ignore_errors=True)


def _variables(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in board["templating"]["list"] if v["type"] == "query"]


def _label_values(prom: Prometheus, query: str) -> tuple[list[str], str | None]:
    """The values Grafana offers for `label_values(metric, label)`, and the busiest one
    (the real value a user would pick: the most samples counted)."""
    m = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", query.strip())
    assert m, f"not a label_values(metric, label) query: {query}"
    values: list[str] = prom.api(f"label/{m[2]}/values", **{"match[]": m[1]})
    top = prom.query(f"topk(1, sum by ({m[2]}) ({m[1]}))")
    return values, top[0][0].get(m[2]) if top else None


def _reads_an_exported_label(
    e2e: E2EStack, board: str, variable: dict[str, Any], panels: list[tuple[str, str]]
) -> list[str]:
    """A variable lists values of a label our processes export on the metric (not one
    Prometheus adds, like `job`: selecting a "job" then filtered by process), and every
    panel filters that same label by it. `namespace` is the one target label meant."""
    metric, label = re.findall(r"\w+", variable["query"]["query"])[1:3]
    name = variable["name"]
    wrong = []
    for title, expr in panels:
        for used in re.findall(r"(\w+)=~\"\$\{?" + name + r"\b", expr):
            if used != label:
                wrong.append(f"{board}: {title} filters {used} by ${name}, which lists {label}")
    if label == "namespace":
        return wrong
    pages = [e2e.scrape(p) or "" for p in e2e.processes()]
    exported = {
        found
        for page in pages
        for labels in metric_samples(page, metric)
        for found in re.findall(r'(\w+)="', labels)
    }
    if label not in exported:
        wrong.append(f"{board}: ${name} lists {metric}'s {label}; it exports {sorted(exported)}")
    return wrong


def _substitute(expr: str, chosen: dict[str, str]) -> str:
    for macro, value in MACROS.items():
        expr = expr.replace(macro, value)
    for name in sorted(chosen, key=len, reverse=True):
        expr = re.sub(r"\$\{" + name + r"\}|\$" + name + r"\b", chosen[name], expr)
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


def _panels(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


async def _wait_scraped(prom: Prometheus, e2e: E2EStack, sim: Simulator) -> None:
    """Until every process was scraped for a few rate windows and the every-minute jobs
    ran, with traffic meanwhile."""
    wanted = len(e2e.processes())
    ready = (
        f'count(count_over_time(up{{namespace="{NAMESPACE}"}}[30s]) >= 20) == {wanted}'
        " and on() count(customer_job_last_success_timestamp_seconds) > 0"
    )
    deadline = time.monotonic() + 180
    while not prom.query(ready):
        assert time.monotonic() < deadline, f"not scraped long enough\n{prom.log()}"
        await sim.run(orders=4, concurrency=2)
        await asyncio.sleep(1)
    await sim.run(orders=6, concurrency=2)
    await asyncio.sleep(2 * SCRAPE_SECONDS)


async def test_every_dashboard_query_with_every_variable(
    prometheus: Prometheus, e2e: E2EStack, sim: Simulator
) -> None:
    await sim.create_members(families=2, per_family=2)
    await _wait_scraped(prometheus, e2e, sim)
    failures: list[str] = []
    checked = 0
    for path in sorted((CHART / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        variables = _variables(board)
        every = {v["name"]: v.get("allValue") or ".*" for v in variables}
        settings = [("All", every)]
        for v in variables:
            failures += _reads_an_exported_label(e2e, path.name, v, list(_panels(board)))
            values, busiest = _label_values(prometheus, v["query"]["query"])
            if not values or busiest not in values:
                failures.append(f"{path.name}: variable {v['name']} values {values}")
                continue
            settings.append((f"{v['name']}={busiest}", {**every, v["name"]: busiest}))
        for setting, chosen in settings:
            for title, expr in _panels(board):
                where = f"{path.name} [{setting}] {title}: {_substitute(expr, chosen)}"
                checked += 1
                try:
                    samples = prometheus.query(_substitute(expr, chosen))
                except AssertionError as e:
                    failures.append(f"{where}: {e}")
                    continue
                if title in OPERATOR_ONLY:
                    continue
                if not samples:
                    failures.append(f"{where}: no data")
                elif ERROR_PANEL.search(title) and any(v != 0 for _, v in samples):
                    failures.append(f"{where}: errors on a healthy stack: {samples}")
    assert checked > 60, checked
    assert not failures, "\n".join(failures)


def _threshold_side(expr: str) -> str:
    """The series an alert compares with its threshold (`A > 3` -> `A`)."""
    m = re.fullmatch(r"(?s)(.*\S)\s*(?:>|<|==|>=|<=|!=)\s*[-\d.e]+\s*", expr.strip())
    assert m, f"no threshold comparison in {expr}"
    return m[1]


async def test_every_alert_evaluates_and_none_fires_on_a_healthy_stack(
    prometheus: Prometheus, e2e: E2EStack, sim: Simulator
) -> None:
    await sim.create_members(families=1, per_family=2)
    await _wait_scraped(prometheus, e2e, sim)
    groups = prometheus.api("rules")["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) >= 8, rules
    failures = []
    for r in rules:
        if r["health"] != "ok" or r.get("lastError"):
            failures.append(f"{r['name']}: {r['health']} {r.get('lastError')}")
        if r["state"] != "inactive":
            failures.append(f"{r['name']} is {r['state']} on a healthy stack: {r['alerts']}")
        if r["name"] in ONLY_WHEN_WRONG:
            continue
        if not prometheus.query(_threshold_side(r["query"])):
            failures.append(f"{r['name']}: no series for {_threshold_side(r['query'])}")
    assert not failures, "\n".join(failures)
