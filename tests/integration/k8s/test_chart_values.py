"""Values: bad ones fail at install with a message naming them; every one is documented."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import helm_python as helm
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.k8s.conftest import CHART, ROOT, render
from tests.integration.k8s.values_doc import VALUES, documented, leaves, table


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


BAD_VALUES = [
    ({"api": {"replicas": 0}}, "/api/replicas"),
    ({"api": {"replica": 3}}, "'replica' not allowed"),
    ({"service": {"grpcPort": 70000}}, "/service/grpcPort"),
    ({"metrics": {"port": "9464"}}, "/metrics/port"),
    ({"config": {"DB_PORT": "five"}}, "/config/DB_PORT"),
    ({"config": {"DB_HOST": ""}}, "/config/DB_HOST"),
    ({"config": {"KAFKA_BROKERS": "kafka"}}, "/config/KAFKA_BROKERS"),
    ({"config": {"LOG_LEVEL": "LOUD"}}, "/config/LOG_LEVEL"),
    ({"config": {"AUTH_MODE": "basic"}}, "/config/AUTH_MODE"),
    ({"config": {"JOBS_SCHEDULE_EXPIRY": "daily"}}, "/config/JOBS_SCHEDULE_EXPIRY"),
    ({"config": {"TLS_CERT_FILE": "cert.pem"}}, "/config/TLS_CERT_FILE"),
    ({"config": {"DB_HOTS": "db"}}, "'DB_HOTS' not allowed"),
    ({"secrets": {"DB_PASSWD": "x"}}, "'DB_PASSWD' not allowed"),
    ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ({"image": {"digest": "latest"}}, "/image/digest"),
    ({"consumer": {"partitions": 0}}, "/consumer/partitions"),
    ({"consumer": {"keda": {"lagThreshold": 0}}}, "/consumer/keda/lagThreshold"),
    ({"metrics": {"prometheusRule": {"errorRatio": 2}}}, "/metrics/prometheusRule/errorRatio"),
    ({"metrics": {"serviceMonitor": {"interval": "often"}}}, "/metrics/serviceMonitor/interval"),
    ({"api": {"resources": {"limits": {"memory": "lots"}}}}, "/api/resources/limits/memory"),
    ({"scheduler": {"replicas": 2}}, "'replicas' not allowed"),
    ({"operator": {"replicas": 2}}, "'replicas' not allowed"),
    ({"networkPolicy": {"egressPorts": [0]}}, "/networkPolicy/egressPorts/0"),
]


@pytest.mark.parametrize(("values", "named"), BAD_VALUES)
def test_bad_values_are_refused_naming_the_value(
    chart: helm.Chart, values: dict[str, Any], named: str
) -> None:
    with pytest.raises(helm.HelmError) as caught:
        chart.validate_schema(values)
    assert named in str(caught.value)


def test_an_install_with_a_bad_value_fails_before_rendering() -> None:
    with pytest.raises(helm.HelmError, match="/config/DB_PORT"):
        render({"config": {"DB_PORT": "five"}})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"consumer": {"replicas": 8}},
            r"consumer\.replicas \(8\) must not exceed consumer\.partitions \(6\)",
        ),
        (
            {"consumer": {"keda": {"enabled": True, "maxReplicas": 7}}},
            r"consumer\.keda\.maxReplicas \(7\) must not exceed consumer\.partitions \(6\)",
        ),
    ],
)
def test_consumers_never_outnumber_partitions(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmError, match=message):
        render(values)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(port=st.integers(min_value=-(10**6), max_value=10**6))
def test_only_real_ports_pass(chart: helm.Chart, port: int) -> None:
    values = {"service": {"grpcPort": port}}
    if 1 <= port <= 65535:
        chart.validate_schema(values)
    else:
        with pytest.raises(helm.HelmError, match="/service/grpcPort"):
            chart.validate_schema(values)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(min_size=1, max_size=12))
def test_numeric_variables_refuse_words(chart: helm.Chart, text: str) -> None:
    values = {"config": {"CONSUMER_MAX_BATCH": text}}
    if text.isascii() and text.replace(".", "", 1).isdigit() and text[0] != ".":
        chart.validate_schema(values)
    else:
        with pytest.raises(helm.HelmError, match="/config/CONSUMER_MAX_BATCH"):
            chart.validate_schema(values)


def test_the_shipped_values_files_pass(chart: helm.Chart) -> None:
    for path in sorted((CHART / "ci").glob("*.yaml")):
        chart.validate_schema(yaml.safe_load(path.read_text()))


def test_every_value_is_documented() -> None:
    text = VALUES.read_text()
    docs = documented(text)
    undocumented = [
        leaf
        for leaf in leaves(yaml.safe_load(text))
        if not any(leaf == d or leaf.startswith(d + ".") for d in docs)
    ]
    assert undocumented == []


def test_the_docs_table_is_the_generated_one() -> None:
    """Regenerate with `python -m tests.integration.k8s.values_doc` when values change."""
    assert table() in (ROOT / "docs" / "kubernetes.md").read_text()


def test_the_schema_knows_exactly_the_values() -> None:
    """Every key of values.yaml is in the schema (and so is every config variable)."""
    with helm.Chart.load(CHART) as loaded:
        schema = loaded.schema
    assert schema is not None

    def walk(values: Any, node: dict[str, Any], path: str) -> None:
        if not isinstance(values, dict) or "properties" not in node:
            return
        assert set(values) <= set(node["properties"]), path
        for key, value in values.items():
            walk(value, node["properties"][key], f"{path}.{key}")

    values = yaml.safe_load(VALUES.read_text())
    walk(values, schema, "")
    assert set(schema["properties"]["config"]["properties"]) == set(values["config"])
