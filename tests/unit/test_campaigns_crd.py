"""The RewardCampaign CRD: valid itself, accepts every example, rejects bad specs.

Custom resources are validated with a JSON-schema validator over the CRD's
own openAPIV3Schema. The x-kubernetes-validations (CEL) rules cannot run here,
so each has a Python twin stating its intent, keyed by its message; a rule
without a twin fails the test, so none goes unchecked.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from customer_core.domain.campaign_spec import campaign_from_spec

ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = ROOT / "k8s" / "crds" / "rewardcampaigns.yaml"
CHART_CRD_PATH = ROOT / "helm" / "customer-service" / "crds" / "rewardcampaigns.yaml"
EXAMPLES = sorted((ROOT / "k8s" / "examples").glob("*.yaml"))
CRD: dict[str, Any] = yaml.safe_load(CRD_PATH.read_text())
(VERSION,) = CRD["spec"]["versions"]
SCHEMA: dict[str, Any] = VERSION["schema"]["openAPIV3Schema"]
OFFSET = re.compile(r"(Z|[+-][0-9]{2}:[0-9]{2})$")

CelTwin = Callable[[dict[str, Any]], bool]
CEL_TWINS: dict[str, CelTwin] = {
    "budget.perCustomerPoints must not exceed budget.totalPoints": lambda spec: (
        "totalPoints" not in spec.get("budget", {})
        or "perCustomerPoints" not in spec.get("budget", {})
        or spec["budget"]["perCustomerPoints"] <= spec["budget"]["totalPoints"]
    ),
    "window.end must be after window.start": lambda w: bool(
        OFFSET.search(w["start"]) or OFFSET.search(w["end"]) or w["end"] > w["start"]
    ),
    "hours.end must differ from hours.start": lambda h: h["start"] != h["end"],
    "effect needs a multiplier above 1 or bonusPoints above 0": lambda e: (
        e.get("multiplier", 0) > 1 or e.get("bonusPoints", 0) > 0
    ),
}


def cel_rules(
    schema: dict[str, Any], path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    for rule in schema.get("x-kubernetes-validations", ()):
        yield path, rule
    for name, child in schema.get("properties", {}).items():
        yield from cel_rules(child, (*path, name))


def _at(body: dict[str, Any], path: tuple[str, ...]) -> Any:
    for name in path:
        if not isinstance(body, dict) or name not in body:
            return None
        body = body[name]
    return body


def problems(body: dict[str, Any]) -> list[str]:
    """What the API server would refuse: schema errors, then CEL rule messages."""
    validator = jsonschema.Draft7Validator(SCHEMA)
    found = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)
    ]
    if found:
        return found  # CEL rules run only on an object that passed the schema
    for path, rule in cel_rules(SCHEMA):
        value = _at(body, path)
        if value is not None and not CEL_TWINS[rule["message"]](value):
            found.append(rule["message"])
    return found


def resource(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "rewards.coffee.example/v1alpha1",
        "kind": "RewardCampaign",
        "metadata": {"name": "x", "namespace": "default"},
        "spec": spec,
    }


GOOD: dict[str, Any] = {
    "displayName": "Double points",
    "window": {"start": "2026-01-01T00:00", "end": "2026-02-01T00:00", "timeZone": "UTC"},
    "effect": {"multiplier": 2},
}


def test_chart_and_kubectl_crds_are_the_same_file() -> None:
    assert CHART_CRD_PATH.read_bytes() == CRD_PATH.read_bytes()


def test_crd_is_a_valid_kubernetes_object() -> None:
    kubernetes_validate.validate(CRD, "1.33", strict=True)
    assert CRD["spec"]["scope"] == "Namespaced"
    assert VERSION["subresources"] == {"status": {}}
    # Not `rc`: ReplicationController has it, and `kubectl get rc` lists those.
    assert CRD["spec"]["names"]["shortNames"] == ["rwc"]
    assert "coffee" in CRD["spec"]["names"]["categories"]


def test_every_cel_rule_has_a_python_twin() -> None:
    messages = {rule["message"] for _, rule in cel_rules(SCHEMA)}
    assert messages == set(CEL_TWINS)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_is_accepted_by_the_schema_and_the_operator(path: Path) -> None:
    body = yaml.safe_load(path.read_text())
    assert problems(body) == []
    name = body["metadata"]["name"]
    campaign = campaign_from_spec(f"default/{name}", body["spec"], id=uuid.uuid4())
    assert campaign.ends_at > campaign.starts_at


def test_examples_cover_every_kind_of_campaign() -> None:
    specs = [yaml.safe_load(p.read_text())["spec"] for p in EXAMPLES]
    assert len(EXAMPLES) >= 5
    assert any("hours" in s["window"] and "weekdays" in s["window"] for s in specs)
    assert any(s["effect"].get("bonusPoints") and "multiplier" not in s["effect"] for s in specs)
    assert any(s.get("eligibility", {}).get("tiers") for s in specs)
    assert any(s.get("eligibility", {}).get("familyMembersOnly") for s in specs)
    assert any(s.get("eligibility", {}).get("firstOrderOnly") for s in specs)
    assert any(s.get("eligibility", {}).get("minOrderTotal") for s in specs)
    assert any(s.get("eligibility", {}).get("drinkCategories") for s in specs)
    assert any(s.get("budget", {}).get("perCustomerPoints") for s in specs)
    assert any(s.get("paused") for s in specs)


def _with(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    spec = copy.deepcopy(GOOD)
    change(spec)
    return spec


BAD: dict[str, Callable[[dict[str, Any]], None]] = {
    "no display name": lambda s: s.pop("displayName"),
    "empty display name": lambda s: s.update(displayName=""),
    "no window": lambda s: s.pop("window"),
    "no end": lambda s: s["window"].pop("end"),
    "date only": lambda s: s["window"].update(start="2026-01-01"),
    "end before start": lambda s: s["window"].update(end="2025-12-31T23:00"),
    "end equals start": lambda s: s["window"].update(end=s["window"]["start"]),
    "bad weekday": lambda s: s["window"].update(weekdays=["Monday"]),
    "hour 24": lambda s: s["window"].update(hours={"start": "24:00", "end": "02:00"}),
    "empty hours span": lambda s: s["window"].update(hours={"start": "07:00", "end": "07:00"}),
    "multiplier below 1": lambda s: s["effect"].update(multiplier=0.5),
    "multiplier above 10": lambda s: s["effect"].update(multiplier=11),
    "multiplier as text": lambda s: s["effect"].update(multiplier="2"),
    "no effect": lambda s: s.update(effect={}),
    "multiplier 1 and no bonus": lambda s: s.update(effect={"multiplier": 1}),
    "negative bonus": lambda s: s.update(effect={"bonusPoints": -5}),
    "unknown tier": lambda s: s.update(eligibility={"tiers": ["platinum"]}),
    "unknown category": lambda s: s.update(eligibility={"drinkCategories": ["soda"]}),
    "negative minimum": lambda s: s.update(eligibility={"minOrderTotal": {"amountMinor": -1}}),
    "lower-case currency": lambda s: s.update(
        eligibility={"minOrderTotal": {"amountMinor": 1, "currencyCode": "usd"}}
    ),
    "zero budget": lambda s: s.update(budget={"totalPoints": 0}),
    "per-customer above total": lambda s: s.update(
        budget={"totalPoints": 10, "perCustomerPoints": 11}
    ),
    "paused as text": lambda s: s.update(paused="yes"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_specs_are_refused_by_the_schema(case: str) -> None:
    assert problems(resource(_with(BAD[case]))) != []


def test_a_good_spec_passes() -> None:
    assert problems(resource(GOOD)) == []


def test_status_declares_every_field_the_operator_writes() -> None:
    from customer_core.domain.campaigns import Phase
    from customer_core.usecases.campaigns import CampaignStatus
    from customer_operator import status as statuses

    now = datetime(2026, 6, 1, tzinfo=UTC)
    campaign = CampaignStatus(
        id=uuid.uuid4(),
        key="default/x",
        display_name="X",
        phase=Phase.ACTIVE,
        generation=2,
        points_awarded=10,
        customers_reached=1,
        budget_left=90,
        starts_at=now,
        ends_at=now,
        time_zone="UTC",
        ended_at=now,
        next_change=now,
        spec=GOOD,
    )
    written = [
        statuses.for_campaign(campaign, observed_generation=2, previous=None, now=now),
        statuses.invalid("x", observed_generation=3, in_force=campaign, previous=None, now=now),
        statuses.pending("db down", previous=None, now=now),
    ]
    declared = SCHEMA["properties"]["status"]["properties"]
    condition = declared["conditions"]["items"]["properties"]
    for status in written:
        assert set(status) <= set(declared)
        for item in status.get("conditions", ()):
            assert set(item) <= set(condition)
        body = {**resource(GOOD), "status": {k: v for k, v in status.items() if v is not None}}
        assert problems(body) == []


def test_printer_columns_point_at_declared_fields() -> None:
    names = {c["name"] for c in VERSION["additionalPrinterColumns"]}
    assert {"Phase", "Multiplier", "Bonus", "Window", "Points", "Age"} <= names
    for column in VERSION["additionalPrinterColumns"]:
        path = column["jsonPath"].lstrip(".").split(".")
        if path[0] == "metadata":
            continue
        node = SCHEMA
        for part in path:
            node = node["properties"][part]
        assert node["type"] in ("string", "integer", "number")
