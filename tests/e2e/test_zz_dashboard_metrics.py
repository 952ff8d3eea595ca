"""The metrics the dashboards chart are exported by the running processes, with samples.

Named to run last in the e2e package: by then every process has served
traffic and the worker has run its every-minute jobs (see conftest.py).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

from prometheus_client.metrics import MetricWrapperBase

from customer_operator import metrics as operator_metrics
from tests.support.e2e_simulator import Simulator
from tests.support.e2e_stack import E2EStack, metric_samples

DASHBOARDS = Path(__file__).parents[2] / "helm" / "customer-service" / "dashboards"


def _dashboard_metrics() -> set[str]:
    names: set[str] = set()
    for path in DASHBOARDS.glob("*.json"):
        for expr in re.findall(r'"expr":\s*"((?:[^"\\]|\\.)*)"', path.read_text()):
            names |= set(re.findall(r"\b(customer_[a-z0-9_]+)", json.loads(f'"{expr}"')))
    return names


# Served by the operator, which the e2e stack does not run (it needs a cluster);
# tests/integration/operator checks them.
OPERATOR_METRICS = tuple(
    m._name for m in vars(operator_metrics).values() if isinstance(m, MetricWrapperBase)
)
# Series that exist only once something rare happened; declared (HELP/TYPE) is all we ask.
RARE = {
    "customer_consumer_retries_total": "only after a dependency failed mid-batch",
    "customer_points_expired_total": "only after POINTS_EXPIRY_DAYS of inactivity",
    "customer_security_denials_total": "only with AUTH_MODE set and a caller refused",
}


async def test_every_dashboard_metric_is_exported_with_samples(
    e2e: E2EStack, sim: Simulator
) -> None:
    await sim.create_members(families=2, per_family=2)
    await sim.send_poison()
    await sim.run(orders=20, concurrency=2)
    wanted = {m for m in _dashboard_metrics() if not m.startswith(OPERATOR_METRICS)}
    assert len(wanted) > 15, f"dashboards name too few metrics: {sorted(wanted)}"

    deadline = time.monotonic() + 150  # the worker runs its jobs each minute
    while True:
        pages = [e2e.scrape(p) or "" for p in e2e.processes()]
        declared = {m for page in pages for m in re.findall(r"^# TYPE (\S+)", page, re.M)}
        sampled = {m for m in wanted for page in pages if metric_samples(page, m)}
        undeclared = sorted(m for m in wanted if not any(m.startswith(d) for d in declared))
        missing = sorted(m for m in wanted - sampled if m not in RARE)
        if not undeclared and not missing:
            break
        assert time.monotonic() < deadline, (
            f"not exported: {undeclared}; exported without samples: {missing}"
        )
        await asyncio.sleep(2)
    # The worker's reconciliation found no difference between balances and ledgers.
    diffs = {
        labels: v
        for page in pages
        for labels, v in metric_samples(page, "customer_reconcile_differences").items()
    }
    assert diffs and all(v == 0 for v in diffs.values()), diffs
