"""The chart and the code agree: variables, subcommands, secrets."""

from __future__ import annotations

import base64
import importlib
from pathlib import Path

from customer_launcher.cli import COMMANDS
from tests.integration.k8s.conftest import Manifest, find, service_variables

# Variables whose values must live in a Secret, never in a ConfigMap (a *_FILE or
# *_URL variable only names where a secret is, and may sit in a ConfigMap).
SECRET_MARKERS = ("PASSWORD", "SECRET", "TOKEN", "PRIVATE_KEY")


def _is_secret(name: str) -> bool:
    return any(s in name for s in SECRET_MARKERS) and not name.endswith(("_FILE", "_URL"))


def _env_names(manifests: list[Manifest], container: dict) -> set[str]:  # type: ignore[type-arg]
    """Every variable a container gets: its ConfigMap and Secret keys and its env."""
    names = {e["name"] for e in container.get("env", [])}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            (cm,) = find(manifests, "ConfigMap", source["configMapRef"]["name"])
            names |= set(cm.body["data"])
        if "secretRef" in source:
            secret = find(manifests, "Secret", source["secretRef"]["name"])
            names |= set(secret[0].body["data"]) if secret else set()
    return names


def _containers(manifests: list[Manifest]) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    return [
        (m.name, c)
        for m in find(manifests, "Deployment") + find(manifests, "Job")
        for c in m.body["spec"]["template"]["spec"]["containers"]
    ]


def test_every_process_gets_exactly_the_variables_the_code_reads(
    default_manifests: list[Manifest],
) -> None:
    """Importing each service's settings module registers its variables; the chart
    must set each of them (a missing one silently takes the code's default, an
    extra one is a typo the code never reads)."""
    expected = {v.name for v in service_variables()}
    containers = _containers(default_manifests)
    assert len(containers) == 6
    for name, container in containers:
        got = _env_names(default_manifests, container)
        missing, unknown = sorted(expected - got), sorted(got - expected)
        assert got == expected, f"{name}: missing {missing}, not read by the code {unknown}"


def test_secret_values_never_sit_in_a_configmap(default_manifests: list[Manifest]) -> None:
    secret_like = {v.name for v in service_variables() if _is_secret(v.name)}
    assert {"DB_PASSWORD", "VALKEY_PASSWORD"} <= secret_like
    for cm in find(default_manifests, "ConfigMap"):
        assert not secret_like & set(cm.body.get("data", {})), cm.name
    for secret in find(default_manifests, "Secret"):
        assert set(secret.body["data"]) == secret_like
        base64.b64decode(secret.body["data"]["DB_PASSWORD"], validate=True)


def test_existing_secret_replaces_the_charts_secret(production_manifests: list[Manifest]) -> None:
    assert not find(production_manifests, "Secret")
    for _, container in _containers(production_manifests):
        refs = [s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s]
        assert refs == ["customer-service-credentials"]


def test_each_deployment_runs_a_real_subcommand(default_manifests: list[Manifest]) -> None:
    seen = {}
    for name, container in _containers(default_manifests):
        argv = container["command"] + container["args"]
        assert argv[0] == "customer-service", name
        assert argv[1] in COMMANDS, f"{name}: {argv[1]!r} is not a customer-service subcommand"
        seen[container["name"]] = argv[1]
    assert seen == {
        "api": "api",
        "consumer": "consumer",
        "scheduler": "scheduler",
        "worker": "worker",
        "operator": "operator",
        "migrate": "migrate",
    }


def test_ports_in_the_environment_match_the_containers(default_manifests: list[Manifest]) -> None:
    (cm,) = find(default_manifests, "ConfigMap", "customer-customer-service")
    for _, container in _containers(default_manifests):
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        if "grpc" in ports:
            assert str(ports["grpc"]) == cm.body["data"]["GRPC_PORT"]
        if "metrics" in ports:
            assert str(ports["metrics"]) == cm.body["data"]["METRICS_PORT"]


def test_a_config_change_rolls_the_pods() -> None:
    from tests.integration.k8s.conftest import render

    def checksums(values: dict) -> set[str]:  # type: ignore[type-arg]
        return {
            m.body["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            for m in find(render(values), "Deployment")
        }

    before, after = checksums({}), checksums({"config": {"LOG_LEVEL": "DEBUG"}})
    assert len(before) == 1 and len(after) == 1 and before != after


def test_a_metrics_port_is_declared_exactly_where_a_process_serves_one(
    default_manifests: list[Manifest],
) -> None:
    """A declared port nobody serves is a scrape target forever down; a served one
    without a port is never scraped."""
    for name, container in _containers(default_manifests):
        subcommand = container["args"][0]
        package = COMMANDS[subcommand].target.split(".")[0]
        source = "".join(
            p.read_text() for p in Path(importlib.import_module(package).__path__[0]).rglob("*.py")
        )
        declared = any(p["name"] == "metrics" for p in container.get("ports", []))
        serves = "start_metrics_server(" in source and subcommand != "migrate"
        assert declared == serves, f"{name}: metrics port declared {declared}, served {serves}"
