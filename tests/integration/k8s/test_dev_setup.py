"""skaffold.yaml and the k8s/dev/ dependencies agree with the chart and exist."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.integration.k8s.conftest import (
    CHART,
    KUBE_VERSION,
    ROOT,
    find,
    load_values,
    render,
)

DEV = ROOT / "k8s" / "dev"


def skaffold() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    return config


def dev_objects() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(DEV.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def _exists(relative: str) -> bool:
    return (ROOT / relative).exists()


def _releases(config: dict[str, Any]) -> list[dict[str, Any]]:
    releases: list[dict[str, Any]] = config["deploy"]["helm"]["releases"]
    return releases


def test_skaffold_points_at_files_that_exist() -> None:
    config = skaffold()
    assert config["apiVersion"].startswith("skaffold/v4beta")
    assert config["kind"] == "Config"
    (artifact,) = config["build"]["artifacts"]
    assert _exists(str(Path(artifact["context"]) / artifact["docker"]["dockerfile"]))
    profiles = {p["name"]: p for p in config["profiles"]}
    for release in _releases(config) + _releases(profiles["with-deps"]):
        assert (ROOT / release["chartPath"] / "Chart.yaml").exists()
        for values in release["valuesFiles"]:
            assert _exists(values), values
    raw = profiles["with-deps"]["manifests"]["rawYaml"]
    assert raw and all(_exists(p) for p in raw)
    assert {Path(p).name for p in raw} == {p.name for p in DEV.glob("*.yaml")}


def test_skaffold_deploys_the_image_it_builds() -> None:
    config = skaffold()
    (artifact,) = config["build"]["artifacts"]
    key = artifact["image"].replace("-", "_")
    profiles = {p["name"]: p for p in config["profiles"]}
    main, with_deps = _releases(config)[0], _releases(profiles["with-deps"])[0]
    for release in (main, with_deps):
        templates = release["setValueTemplates"]
        assert templates["image.repository"] == f"{{{{.IMAGE_REPO_{key}}}}}"
        assert f"{{{{.IMAGE_TAG_{key}}}}}" in templates["image.tag"]
    # The profile only adds the dependencies: the release itself is the same.
    same = ("name", "chartPath", "namespace", "valuesFiles", "setValueTemplates")
    assert {k: main[k] for k in same} == {k: with_deps[k] for k in same}
    assert load_values(CHART / "values.yaml")["image"]["repository"] == artifact["image"]


def test_port_forwards_reach_the_api_service() -> None:
    config = skaffold()
    release = _releases(config)[0]
    values = load_values(ROOT / release["valuesFiles"][0])
    from tests.integration.k8s import conftest

    manifests = conftest.render(values)
    # Service names carry the release name; re-render under skaffold's release name.
    name = release["name"]
    services = {
        m.name.replace(conftest.RELEASE, name, 1): {p["port"] for p in m.body["spec"]["ports"]}
        for m in find(manifests, "Service")
    }
    forwards = config["portForward"]
    assert {(f["resourceName"], f["port"]) for f in forwards} == {
        (f"{name}-customer-service-api", 50052),
        (f"{name}-customer-service-api", 9464),
    }
    for f in forwards:
        assert f["port"] in services[f["resourceName"]]
        assert f["namespace"] == release["namespace"]


def test_dev_dependencies_validate() -> None:
    objects = dev_objects()
    assert {o["kind"] for o in objects} >= {"Namespace", "StatefulSet", "Deployment", "Service"}
    for o in objects:
        try:
            kubernetes_validate.validate(o, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{o['kind']}/{o['metadata']['name']}: {exc.message}")


def test_dev_dependencies_match_the_chart_defaults() -> None:
    """A default install in the dev namespace reaches all three servers."""
    objects = dev_objects()
    namespaces = {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"}
    (ns,) = [o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"]
    assert namespaces == {ns} == {_releases(skaffold())[0]["namespace"]}

    values = load_values(CHART / "values.yaml")
    config, secrets = values["config"], values["secrets"]
    services = {
        o["metadata"]["name"]: {p["port"] for p in o["spec"]["ports"]}
        for o in objects
        if o["kind"] == "Service"
    }
    assert int(config["DB_PORT"]) in services[config["DB_HOST"]]
    assert int(config["VALKEY_PORT"]) in services[config["VALKEY_HOST"]]
    for broker in config["KAFKA_BROKERS"].split(","):
        host, port = broker.rsplit(":", 1)
        assert int(port) in services[host]

    (pg_secret,) = [o for o in objects if o["kind"] == "Secret"]
    creds = pg_secret["stringData"]
    assert creds["POSTGRES_DB"] == config["DB_NAME"]
    assert creds["POSTGRES_USER"] == config["DB_USER"]
    assert creds["POSTGRES_PASSWORD"] == secrets["DB_PASSWORD"]
    (chart_secret,) = find(render(None), "Secret", "customer-customer-service")
    assert (
        base64.b64decode(chart_secret.body["data"]["DB_PASSWORD"]).decode()
        == creds["POSTGRES_PASSWORD"]
    )

    (kafka,) = [
        o for o in objects if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "kafka"
    ]
    env = {e["name"]: e["value"] for e in kafka["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "broker" in env["KAFKA_PROCESS_ROLES"] and "controller" in env["KAFKA_PROCESS_ROLES"]
    assert int(env["KAFKA_NUM_PARTITIONS"]) == values["consumer"]["partitions"]
    assert env["KAFKA_ADVERTISED_LISTENERS"].endswith(config["KAFKA_BROKERS"])
