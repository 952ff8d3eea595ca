"""The RewardCampaign CRD on real API servers: accepted, served, and refusing bad specs.

kube-apiserver 1.20 checks the structural schema (types, patterns, enums, ranges,
required fields, defaults) but predates CEL; the x-kubernetes-validations rules run
on the newer apiextensions-apiserver (`cel_server`) when it was built.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.cluster import chart
from tests.cluster.kube import Kubectl, KubectlError
from tests.unit.test_campaigns_crd import BAD, GOOD, SCHEMA, _with, resource


def _schema_field(case: str) -> str | None:
    """The field the schema names for a bad case; None when only a CEL rule refuses it."""
    body = resource(_with(BAD[case]))
    errors = sorted(jsonschema.Draft7Validator(SCHEMA).iter_errors(body), key=str)
    if not errors:
        return None
    error = errors[0]
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required":
        path.append(re.search(r"'(\w+)' is a required", error.message).group(1))  # type: ignore[union-attr]
    cut = next((i for i, p in enumerate(path) if p.isdigit()), len(path))
    return ".".join(path[:cut])


def _cel_message(case: str) -> str:
    from tests.unit.test_campaigns_crd import problems

    (message,) = problems(resource(_with(BAD[case])))
    return message


SCHEMA_CASES = sorted(c for c in BAD if _schema_field(c) is not None)
CEL_CASES = sorted(c for c in BAD if _schema_field(c) is None)


def _manifest(spec: dict[str, Any], name: str = "bad") -> str:
    body = resource(spec)
    body["metadata"] = {"name": name}
    return json.dumps(body)


def _refusal(kubectl: Kubectl, spec: dict[str, Any]) -> str:
    with pytest.raises(KubectlError) as refused:
        kubectl.run("create", "--dry-run=server", "-f", "-", stdin=_manifest(spec))
    return refused.value.stderr


def test_crd_is_served_with_short_names_categories_and_a_structural_schema(
    crd: dict[str, Any], admin: Kubectl
) -> None:
    accepted = crd["status"]["acceptedNames"]
    assert {"rc", "rwc"} <= set(accepted["shortNames"])
    assert "coffee" in accepted["categories"]
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions.get("NonStructuralSchema", "False") == "False"
    assert conditions["NamesAccepted"] == "True"
    resources = admin.run("api-resources", "--api-group=rewards.coffee.example", "-o", "wide")
    assert re.search(
        r"rewardcampaigns\s+rc,rwc\s+rewards.coffee.example/v1alpha1\s+true", resources
    )
    (served,) = crd["spec"]["versions"]
    assert served["subresources"] == {"status": {}}
    assert [c["name"] for c in served["additionalPrinterColumns"]][:5] == [
        "Phase", "Multiplier", "Bonus", "Window", "Points",
    ]  # fmt: skip


@pytest.mark.parametrize("path", chart.EXAMPLES, ids=lambda p: p.name)
def test_every_example_applies_and_gets_the_schema_defaults(
    path: Path, admin: Kubectl, namespace: str
) -> None:
    kubectl = admin.in_namespace(namespace)
    kubectl.run("apply", "-f", str(path))
    name = yaml.safe_load(path.read_text())["metadata"]["name"]
    stored = kubectl.get("rewardcampaign", name)
    assert stored["spec"]["window"]["timeZone"]  # defaulted to UTC when absent
    assert stored["spec"]["paused"] in (True, False)


def test_status_is_a_subresource_the_main_resource_cannot_write(
    admin: Kubectl, namespace: str
) -> None:
    kubectl = admin.in_namespace(namespace)
    body = resource(copy.deepcopy(GOOD))
    body["metadata"] = {"name": "status-check"}
    body["status"] = {"phase": "Active"}
    kubectl.create(json.dumps(body))
    assert "status" not in kubectl.get("rc", "status-check")
    kubectl.run("patch", "rc", "status-check", "--subresource=status", "--type=merge",
                "-p", '{"status": {"phase": "Active"}}')  # fmt: skip
    assert kubectl.get("rc", "status-check")["status"]["phase"] == "Active"


@pytest.mark.parametrize("case", SCHEMA_CASES)
def test_bad_specs_are_refused_by_the_server_naming_the_field(
    case: str, admin: Kubectl, namespace: str
) -> None:
    stderr = _refusal(admin.in_namespace(namespace), _with(BAD[case]))
    assert f"{_schema_field(case)}" in stderr, stderr


@pytest.fixture(scope="session")
def cel_crd(cel_server: Kubectl) -> Kubectl:
    cel_server.run("apply", "-f", str(chart.CRD_PATH))
    cel_server.run("wait", "--for=condition=Established", "--timeout=60s",
                   "crd/rewardcampaigns.rewards.coffee.example")  # fmt: skip
    return cel_server


def test_the_cel_server_keeps_every_rule(cel_crd: Kubectl) -> None:
    stored = cel_crd.get("crd", "rewardcampaigns.rewards.coffee.example")
    text = json.dumps(stored["spec"]["versions"][0]["schema"])
    assert text.count("x-kubernetes-validations") == json.dumps(SCHEMA).count(
        "x-kubernetes-validations"
    )


@pytest.mark.parametrize("case", CEL_CASES)
def test_cel_rules_refuse_with_their_message(case: str, cel_crd: Kubectl) -> None:
    stderr = _refusal(cel_crd, _with(BAD[case]))
    assert _cel_message(case) in stderr, stderr


@pytest.mark.parametrize("path", chart.EXAMPLES, ids=lambda p: p.name)
def test_every_example_passes_the_cel_rules(path: Path, cel_crd: Kubectl) -> None:
    cel_crd.run("create", "--dry-run=server", "-f", str(path))
