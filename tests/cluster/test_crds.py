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
from tests.cluster.kube import Kubectl, KubectlError, eventually
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
    """The server's own refusal (kubectl's client-side schema check is off)."""
    with pytest.raises(KubectlError) as refused:
        kubectl.run(
            "create", "--dry-run=server", "--validate=false", "-f", "-", stdin=_manifest(spec)
        )
    return refused.value.stderr


# The CRD-only server serves no /api, so kubectl's discovery fails there: raw requests.
CEL_CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
CEL_CAMPAIGNS = "/apis/rewards.coffee.example/v1alpha1/namespaces/default/rewardcampaigns"


def _cel_refusal(kubectl: Kubectl, body: str) -> str:
    with pytest.raises(KubectlError) as refused:
        kubectl.run("create", "--raw", f"{CEL_CAMPAIGNS}?dryRun=All", "-f", "-", stdin=body)
    return refused.value.stderr


def test_crd_is_served_with_short_names_categories_and_a_structural_schema(
    crd: dict[str, Any], admin: Kubectl
) -> None:
    accepted = crd["status"]["acceptedNames"]
    assert accepted["shortNames"] == crd["spec"]["names"]["shortNames"]
    assert "coffee" in accepted["categories"]
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions.get("NonStructuralSchema", "False") == "False"
    assert conditions["NamesAccepted"] == "True"
    resources = admin.run("api-resources", "--api-group=rewards.coffee.example", "-o", "wide")
    ours = set(accepted["shortNames"])
    assert re.search(rf"rewardcampaigns\s+{','.join(sorted(ours))}\s+rewards", resources)
    # A short name another resource has is shadowed: `kubectl get` picks the other one.
    for line in admin.run("api-resources", "--no-headers").splitlines():
        name, *rest = line.split()
        if name != "rewardcampaigns" and len(rest) >= 4:  # NAME SHORTNAMES VERSION ...
            assert not ours & set(rest[0].split(",")), f"{name} has short names {rest[0]}"
    (served,) = crd["spec"]["versions"]
    assert served["subresources"] == {"status": {}}
    assert [c["name"] for c in served["additionalPrinterColumns"]][:5] == [
        "Phase",
        "Multiplier",
        "Bonus",
        "Window",
        "Points",
    ]


@pytest.mark.parametrize("path", chart.EXAMPLES, ids=lambda p: p.name)
def test_every_example_applies_and_gets_the_schema_defaults(
    path: Path, admin: Kubectl, namespace: str
) -> None:
    kubectl = admin.in_namespace(namespace)
    kubectl.apply(chart.example(path))
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
    assert "status" not in kubectl.get("rwc", "status-check")
    kubectl.run(
        "patch",
        "rwc",
        "status-check",
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status": {"phase": "Active"}}',
    )
    assert kubectl.get("rwc", "status-check")["status"]["phase"] == "Active"


@pytest.mark.parametrize("case", SCHEMA_CASES)
def test_bad_specs_are_refused_by_the_server_naming_the_field(
    case: str, admin: Kubectl, namespace: str
) -> None:
    stderr = _refusal(admin.in_namespace(namespace), _with(BAD[case]))
    assert f"{_schema_field(case)}" in stderr, stderr


def _cel_stored(kubectl: Kubectl) -> dict[str, Any] | None:
    stored: dict[str, Any] = json.loads(
        kubectl.run("get", "--raw", f"{CEL_CRDS}/rewardcampaigns.rewards.coffee.example")
    )
    conditions = stored.get("status", {}).get("conditions", [])
    ok = any(c["type"] == "Established" and c["status"] == "True" for c in conditions)
    return stored if ok else None


@pytest.fixture(scope="session")
def cel_crd(cel_server: Kubectl) -> Kubectl:
    crd = json.dumps(yaml.safe_load(chart.CRD_PATH.read_text()))
    # Its admission waits for the core server's informers: retried until it takes.
    eventually(
        lambda: cel_server.run("create", "--raw", CEL_CRDS, "-f", "-", stdin=crd),
        timeout=60,
        what="CRD created",
    )
    eventually(lambda: _cel_stored(cel_server), timeout=60, what="CRD established")
    # Established can precede the first served request by a moment.
    eventually(lambda: cel_server.run("get", "--raw", CEL_CAMPAIGNS), what="served")
    return cel_server


def test_the_cel_server_keeps_every_rule(cel_crd: Kubectl) -> None:
    stored = _cel_stored(cel_crd)
    assert stored is not None
    text = json.dumps(stored["spec"]["versions"][0]["schema"])
    assert text.count("x-kubernetes-validations") == json.dumps(SCHEMA).count(
        "x-kubernetes-validations"
    )


@pytest.mark.parametrize("case", CEL_CASES)
def test_cel_rules_refuse_with_their_message(case: str, cel_crd: Kubectl) -> None:
    stderr = _cel_refusal(cel_crd, _manifest(_with(BAD[case])))
    assert _cel_message(case) in stderr, stderr


@pytest.mark.parametrize("path", chart.EXAMPLES, ids=lambda p: p.name)
def test_every_example_passes_the_cel_rules(path: Path, cel_crd: Kubectl) -> None:
    body = json.dumps(yaml.safe_load(chart.example(path)))
    cel_crd.run("create", "--raw", f"{CEL_CAMPAIGNS}?dryRun=All", "-f", "-", stdin=body)
