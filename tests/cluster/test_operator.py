"""`customer-service operator` against a real API server, as the chart's ServiceAccount.

Each test has its own namespace, the chart's Role bound there, a token for exactly
that ServiceAccount, its own database, and the operator as a child process.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from typing import Any

import yaml

from customer_launcher.devstack import DevStack
from tests.cluster import chart
from tests.cluster.kube import Kubectl, eventually
from tests.cluster.operators import Operators, campaign_row
from tests.cluster.proxy import Proxy
from tests.cluster.servers import Process
from tests.unit.test_campaigns_crd import GOOD, resource

EXAMPLE = next(p for p in chart.EXAMPLES if p.name == "weekday-mornings.yaml")
NAME = yaml.safe_load(EXAMPLE.read_text())["metadata"]["name"]


def _status(kubectl: Kubectl, name: str) -> dict[str, Any]:
    status: dict[str, Any] = kubectl.get("rwc", name).get("status", {})
    return status


def _applied(kubectl: Kubectl, name: str, generation: int) -> dict[str, Any]:
    return eventually(
        lambda: (s := _status(kubectl, name)).get("appliedGeneration") == generation and s,
        timeout=90,
        what=f"generation {generation} applied",
    )


def _patch(kubectl: Kubectl, name: str, spec: dict[str, Any]) -> None:
    kubectl.run("patch", "rwc", name, "--type=merge", "-p", json.dumps({"spec": spec}))


def test_create_update_pause_and_delete_through_the_finalizer(
    operators: Operators, operator_kubectl: Kubectl, stack: DevStack, env: dict[str, str]
) -> None:
    kubectl, db, ns = operator_kubectl, env["DB_NAME"], operator_kubectl.namespace
    # Exactly the chart's Role: it reads and patches campaigns, never creates them.
    assert kubectl.run("auth", "can-i", "create", "rewardcampaigns", check=False).strip() == "no"
    assert kubectl.run("auth", "can-i", "patch", "rewardcampaigns/status").strip() == "yes"
    assert kubectl.run("auth", "can-i", "list", "secrets", check=False).strip() == "no"
    operators.start()
    admin = operators.admin
    admin.apply(chart.example(EXAMPLE))

    status = _applied(kubectl, NAME, 1)
    assert status["phase"] in ("Active", "Scheduled")
    assert (
        "rewards.coffee.example/end-campaign" in kubectl.get("rwc", NAME)["metadata"]["finalizers"]
    )
    assert campaign_row(stack, db, ns, NAME)[:3] == ["1", "f", "f"]

    _patch(admin, NAME, {"effect": {"multiplier": 3}})
    _applied(kubectl, NAME, 2)
    assert campaign_row(stack, db, ns, NAME) == ["2", "f", "f", "3"]

    _patch(admin, NAME, {"paused": True})
    eventually(lambda: _status(kubectl, NAME).get("phase") == "Paused", what="Paused")
    assert campaign_row(stack, db, ns, NAME)[:2] == ["3", "t"]

    admin.run("delete", "rwc", NAME, "--timeout=60s")
    assert not admin.exists("rwc", NAME)
    assert campaign_row(stack, db, ns, NAME)[2] == "t"  # ended, kept for the ledger


def test_kubectl_get_shows_the_printer_columns_filled_from_status(
    operators: Operators, operator_kubectl: Kubectl
) -> None:
    operators.start()
    admin = operators.admin
    admin.apply(chart.example(EXAMPLE))
    status = _applied(operator_kubectl, NAME, 1)
    eventually(lambda: "pointsAwarded" in _status(operator_kubectl, NAME), what="points")
    header, row = admin.run("get", "rwc", "-o", "wide").strip().splitlines()
    assert header.split() == [
        "NAME",
        "PHASE",
        "MULTIPLIER",
        "BONUS",
        "WINDOW",
        "POINTS",
        "CUSTOMERS",
        "BUDGET-LEFT",
        "AGE",
    ]
    assert row.startswith(f"{NAME} ")
    assert f" {status['phase']} " in row
    assert status["window"] in row
    assert re.search(r"\s2\s", row)  # the multiplier from spec


def _invalid(operators: Operators, kubectl: Kubectl) -> dict[str, Any]:
    operators.start()
    # With offsets the CRD's CEL rule leaves the order to the operator.
    body = resource(
        {**GOOD, "window": {"start": "2026-02-01T00:00:00Z", "end": "2026-01-01T00:00:00+01:00"}}
    )
    body["metadata"] = {"name": "backwards"}
    operators.admin.create(json.dumps(body))
    status: dict[str, Any] = eventually(
        lambda: (s := _status(kubectl, "backwards")).get("phase") == "Invalid" and s,
        what="phase Invalid",
    )
    return status


def test_an_invalid_spec_gets_phase_invalid_with_the_reason_in_status(
    operators: Operators, operator_kubectl: Kubectl
) -> None:
    status = _invalid(operators, operator_kubectl)
    assert "spec.window.end" in status["message"]
    assert status["observedGeneration"] == 1


def _events(operators: Operators, name: str, reason: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = operators.admin.get("events")["items"]
    return [e for e in items if e["involvedObject"].get("name") == name and e["reason"] == reason]


def test_an_invalid_spec_is_explained_by_a_warning_event(
    operators: Operators, operator_kubectl: Kubectl
) -> None:
    status = _invalid(operators, operator_kubectl)
    found = eventually(
        lambda: _events(operators, "backwards", "InvalidSpec"),
        timeout=30,
        what="an InvalidSpec Event for the refused campaign",
    )
    assert len(found) == 1, found
    event = found[0]
    assert event["type"] == "Warning"
    assert event["message"] == status["message"]
    assert "spec.window.end" in event["message"]
    uid = operators.admin.get("rwc", "backwards")["metadata"]["uid"]
    assert event["involvedObject"]["kind"] == "RewardCampaign"
    assert event["involvedObject"]["uid"] == uid
    assert event["metadata"]["namespace"] == operator_kubectl.namespace


def test_a_database_outage_is_retried_until_the_campaign_is_applied(
    operators: Operators, operator_kubectl: Kubectl, stack: DevStack
) -> None:
    assert stack.postgres is not None
    proxy = Proxy(stack.postgres.port)
    proxy.start()
    operators.start(db_port=proxy.port)
    admin = operators.admin
    eventually(lambda: "reconciling RewardCampaigns" in operators.started[0].text(), what="up")
    proxy.cut()
    try:
        admin.apply(chart.example(EXAMPLE))
        pending = eventually(
            lambda: (s := _status(operator_kubectl, NAME)).get("phase") == "Pending" and s,
            what="phase Pending while the database is away",
        )
        assert "PostgreSQL" in pending["message"] or "database" in pending["message"]
        warned = eventually(
            lambda: _events(operators, NAME, "DatabaseUnavailable"),
            timeout=30,
            what="a DatabaseUnavailable Event",
        )
        assert warned[0]["type"] == "Warning"
        assert warned[0]["message"].startswith("waiting for the database: ")
    finally:
        proxy.start()
    _applied(operator_kubectl, NAME, 1)
    applied = eventually(lambda: _events(operators, NAME, "Applied"), timeout=30, what="Applied")
    assert applied[0]["type"] == "Normal"
    assert applied[0]["message"].startswith("generation 1 in force: ")


def _applied_reconciles(proc: Process) -> float:
    port = re.search(r"metrics on :(\d+)", proc.text()).group(1)  # type: ignore[union-attr]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    found = re.search(
        r'^customer_campaign_reconciles_total\{outcome="applied"\} (\S+)$', text, re.M
    )
    return float(found.group(1)) if found else 0.0


def test_a_second_replica_does_not_apply_the_same_change_again(
    operators: Operators, operator_kubectl: Kubectl
) -> None:
    first, second = operators.start(), operators.start()
    for proc in (first, second):
        eventually(lambda p=proc: "reconciling RewardCampaigns" in p.text(), what="up")
    time.sleep(3)  # the replicas' first keep-alives: each learns of the other
    admin = operators.admin
    admin.apply(chart.example(EXAMPLE))
    _applied(operator_kubectl, NAME, 1)
    _patch(admin, NAME, {"effect": {"multiplier": 3}})
    _applied(operator_kubectl, NAME, 2)
    applied = sorted(_applied_reconciles(p) for p in (first, second))
    assert applied == [0.0, 2.0], applied
