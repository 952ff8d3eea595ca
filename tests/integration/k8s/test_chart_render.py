"""The chart renders, lints clean and yields objects Kubernetes would accept."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from customer_core.pb.customer.v1 import customer_pb2
from tests.integration.k8s.conftest import (
    CHART,
    DEV_VALUES,
    KUBE_VERSION,
    NAMESPACE,
    PRODUCTION_VALUES,
    Manifest,
    find,
    load_values,
)

# Kinds from operators the cluster may run (no schema in kubernetes-validate): each
# must carry the fields its operator needs, checked by hand below.
CUSTOM_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule", "ScaledObject"}
# Kopf's peering objects: their CRDs ship in the chart, the real server checks them
# (tests/cluster).
PEERING_KINDS = {"KopfPeering", "ClusterKopfPeering"}
WARNING = 2


@pytest.mark.parametrize("values_file", [None, PRODUCTION_VALUES, DEV_VALUES])
def test_lint_is_clean(values_file: Any) -> None:
    values = load_values(values_file) if values_file else None
    report = helm.lint(
        CHART, values, strict=True, namespace=NAMESPACE, kube_version=f"v{KUBE_VERSION}.0"
    )
    problems = [m for m in report["messages"] if m["severity"] >= WARNING]
    assert report["errors"] == [] and problems == []


def test_every_manifest_validates_against_the_kubernetes_schemas(
    manifests: list[Manifest],
) -> None:
    checked = set()
    for m in manifests:
        if m.kind in CUSTOM_KINDS | PEERING_KINDS:
            continue
        try:
            kubernetes_validate.validate(m.body, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{m.template}: {m.kind}/{m.name}: {path}: {exc.message}")
        checked.add(m.kind)
    assert {"Deployment", "Service", "ConfigMap", "Job", "NetworkPolicy"} <= checked


def test_the_chart_ships_the_rewardcampaign_crd() -> None:
    with helm.Chart.load(CHART) as chart:
        crds = [yaml.safe_load(c["data"]) for c in chart.crds]
    names = [c["metadata"]["name"] for c in crds]
    assert "rewardcampaigns.rewards.coffee.example" in names
    for crd in crds:
        kubernetes_validate.validate(crd, KUBE_VERSION, strict=True)


def test_custom_resources_carry_what_their_operators_need(
    production_manifests: list[Manifest],
) -> None:
    kinds = {m.kind for m in production_manifests}
    assert kinds >= CUSTOM_KINDS
    for m in find(production_manifests, "ServiceMonitor") + find(
        production_manifests, "PodMonitor"
    ):
        assert m.body["apiVersion"] == "monitoring.coreos.com/v1"
        assert m.body["spec"]["selector"]["matchLabels"]
        endpoints = m.body["spec"].get("endpoints") or m.body["spec"]["podMetricsEndpoints"]
        assert [e["port"] for e in endpoints] == ["metrics"]
        assert m.body["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (rule,) = find(production_manifests, "PrometheusRule")
    assert rule.body["apiVersion"] == "monitoring.coreos.com/v1"
    for group in rule.body["spec"]["groups"]:
        for r in group["rules"]:
            assert set(r) <= {"alert", "expr", "for", "labels", "annotations"}
            assert r["labels"]["severity"] in {"warning", "critical"}
            assert r["annotations"]["summary"] and r["annotations"]["description"]
    (scaled,) = find(production_manifests, "ScaledObject")
    assert scaled.body["apiVersion"] == "keda.sh/v1alpha1"
    (trigger,) = scaled.body["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    assert set(trigger["metadata"]) >= {"bootstrapServers", "consumerGroup", "lagThreshold"}
    assert trigger["metadata"]["allowIdleConsumers"] == "false"
    assert all(isinstance(v, str) for v in trigger["metadata"].values())


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        value = labels.get(expr["key"])
        if expr["operator"] == "In" and value not in expr["values"]:
            return False
        if expr["operator"] == "NotIn" and value in expr["values"]:
            return False
    return True


def test_selectors_find_their_pods(manifests: list[Manifest]) -> None:
    """Services, PDBs, HPAs, policies and monitors all point at pods the chart makes."""
    pods = {
        m.name: m.body["spec"]["template"]["metadata"]["labels"]
        for m in find(manifests, "Deployment")
    }
    for m in find(manifests, "Deployment"):
        assert _selects(m.body["spec"]["selector"], pods[m.name])
    for m in find(manifests, "Service"):
        assert [
            n
            for n, labels in pods.items()
            if _selects({"matchLabels": m.body["spec"]["selector"]}, labels)
        ] == [f"{m.name.removesuffix('-headless')}"]
    for kind in ("PodDisruptionBudget", "NetworkPolicy", "PodMonitor"):
        for m in find(manifests, kind):
            key = "podSelector" if kind == "NetworkPolicy" else "selector"
            assert any(_selects(m.body["spec"][key], labels) for labels in pods.values()), m.name
    for m in find(manifests, "HorizontalPodAutoscaler") + find(manifests, "ScaledObject"):
        assert m.body["spec"]["scaleTargetRef"]["name"] in pods


def test_every_pod_runs_locked_down(manifests: list[Manifest]) -> None:
    templates = [
        m.body["spec"]["template"] for m in find(manifests, "Deployment") + find(manifests, "Job")
    ]
    assert len(templates) >= 2
    for pod in templates:
        spec = pod["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert "memory" in c["resources"]["limits"] and c["resources"]["requests"]


def test_single_processes_never_overlap(manifests: list[Manifest]) -> None:
    """The scheduler and the operator must never run twice, even during a rollout."""
    for component in ("scheduler", "operator"):
        (d,) = find(manifests, "Deployment", f"customer-customer-service-{component}")
        assert d.body["spec"]["replicas"] == 1
        assert d.body["spec"]["strategy"] == {"type": "Recreate"}
        assert not find(manifests, "HorizontalPodAutoscaler", d.name)
        assert "topologySpreadConstraints" not in d.body["spec"]["template"]["spec"]


def test_api_probes_use_the_grpc_health_service(manifests: list[Manifest]) -> None:
    (api,) = find(manifests, "Deployment", "customer-customer-service-api")
    (c,) = api.body["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"grpc": 50052, "metrics": 9464}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["grpc"]["port"] == ports["grpc"]
    # Readiness names the service so a draining pod leaves the endpoints first.
    service = customer_pb2.DESCRIPTOR.services_by_name["CustomerService"].full_name
    assert c["readinessProbe"]["grpc"]["service"] == service
    (svc,) = find(manifests, "Service", "customer-customer-service-api")
    assert {p["name"]: p["port"] for p in svc.body["spec"]["ports"]} == ports


def test_every_process_exposes_metrics_and_the_pod_monitor_scrapes_the_operator(
    manifests: list[Manifest], production_manifests: list[Manifest]
) -> None:
    for m in find(manifests, "Deployment"):
        (c,) = m.body["spec"]["template"]["spec"]["containers"]
        assert {"name": "metrics", "containerPort": 9464, "protocol": "TCP"} in c["ports"], m.name
    pods = {
        m.name: m.body["spec"]["template"]["metadata"]["labels"]
        for m in find(production_manifests, "Deployment")
    }
    (monitor,) = find(production_manifests, "PodMonitor")
    scraped = {
        name for name, labels in pods.items() if _selects(monitor.body["spec"]["selector"], labels)
    }
    assert "customer-customer-service-operator" in scraped


def test_operator_probe_is_kopfs_liveness_endpoint(manifests: list[Manifest]) -> None:
    (op,) = find(manifests, "Deployment", "customer-customer-service-operator")
    spec = op.body["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {"name": "health", "containerPort": 8080, "protocol": "TCP"} in c["ports"]
    assert spec["serviceAccountName"] == "customer-customer-service-operator"
    assert spec["automountServiceAccountToken"] is True


def test_migrations_run_as_a_hook_before_install_and_upgrade(manifests: list[Manifest]) -> None:
    hooks = [m for m in manifests if "helm.sh/hook" in m.body["metadata"].get("annotations", {})]
    (job,) = [m for m in hooks if m.kind == "Job"]
    notes = job.body["metadata"]["annotations"]
    assert notes["helm.sh/hook"] == "pre-install,pre-upgrade"
    (c,) = job.body["spec"]["template"]["spec"]["containers"]
    assert c["command"] + c["args"] == ["customer-service", "migrate"]
    # What the Job reads exists before it: hooks of a lower weight, or an existing Secret.
    weight = int(notes["helm.sh/hook-weight"])
    refs = [
        (k, s[k]["name"]) for s in c["envFrom"] for k in ("configMapRef", "secretRef") if k in s
    ]
    available = {
        (h.kind, h.name)
        for h in hooks
        if int(h.body["metadata"]["annotations"]["helm.sh/hook-weight"]) < weight
    }
    for kind, name in refs:
        kind = "ConfigMap" if kind == "configMapRef" else "Secret"
        assert (kind, name) in available or name == "customer-service-credentials"


def test_autoscalers_are_exclusive_with_fixed_replicas(
    production_manifests: list[Manifest],
) -> None:
    scaled = {
        m.body["spec"]["scaleTargetRef"]["name"]
        for m in production_manifests
        if m.kind in ("HorizontalPodAutoscaler", "ScaledObject")
    }
    assert scaled == {f"customer-customer-service-{c}" for c in ("api", "worker", "consumer")}
    for d in find(production_manifests, "Deployment"):
        if d.name in scaled:
            assert "replicas" not in d.body["spec"], d.name


def test_keda_never_scales_past_the_partition_count(production_values: dict[str, Any]) -> None:
    from tests.integration.k8s.conftest import render

    (scaled,) = find(render(production_values), "ScaledObject")
    assert scaled.body["spec"]["maxReplicaCount"] == production_values["consumer"]["partitions"]
    values = {
        **production_values,
        "consumer": {**production_values["consumer"], "keda": {"enabled": True}},
    }
    (scaled,) = find(render(values), "ScaledObject")
    assert scaled.body["spec"]["maxReplicaCount"] == production_values["consumer"]["partitions"]


def test_dashboards_ship_as_sidecar_configmaps(production_manifests: list[Manifest]) -> None:
    boards = [
        m
        for m in find(production_manifests, "ConfigMap")
        if m.body["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]
    names = {key.removesuffix(".json") for m in boards for key in m.body["data"]}
    assert names == {"api", "consumer", "jobs", "loyalty"}
    assert {m.body["metadata"]["namespace"] for m in boards} == {"monitoring"}


def test_tls_mounts_the_certificate_and_probes_by_tcp() -> None:
    """Kubelet's gRPC probes speak plaintext only; with TLS they would always fail."""
    from tests.integration.k8s.conftest import render

    values = {"api": {"tls": {"secretName": "api-tls", "mutual": True}}}
    manifests = render(values)
    (api,) = find(manifests, "Deployment", "customer-customer-service-api")
    spec = api.body["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    env = {e["name"]: e["value"] for e in c["env"]}
    mount = next(m["mountPath"] for m in c["volumeMounts"] if m["name"] == "tls")
    assert env == {
        "TLS_CERT_FILE": f"{mount}/tls.crt",
        "TLS_KEY_FILE": f"{mount}/tls.key",
        "TLS_CLIENT_CA_FILE": f"{mount}/ca.crt",
    }
    assert {"name": "tls", "secret": {"secretName": "api-tls"}} in spec["volumes"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["tcpSocket"] == {"port": "grpc"}
    kubernetes_validate.validate(api.body, KUBE_VERSION, strict=True)
    # Only the api serves TLS.
    (consumer,) = find(manifests, "Deployment", "customer-customer-service-consumer")
    assert "env" not in consumer.body["spec"]["template"]["spec"]["containers"][0]


def test_kafka_tls_secret_is_mounted_where_the_kafka_ssl_files_point() -> None:
    """A private CA or client certificate for Kafka reaches every process that talks
    to the brokers, at the path the KAFKA_SSL_* variables name."""
    from tests.integration.k8s.conftest import render

    mount = "/etc/customer-service/kafka-tls"
    values = {
        "kafkaTls": {"secretName": "kafka-client"},
        "config": {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_USERNAME": "svc",
            "KAFKA_SSL_CA_FILE": f"{mount}/ca.crt",
        },
        "secrets": {"KAFKA_SASL_PASSWORD": "pw"},
    }
    manifests = render(values)
    deployments = find(manifests, "Deployment")
    assert {d.name.rsplit("-", 1)[1] for d in deployments} >= {"consumer", "scheduler", "worker"}
    for d in deployments:
        spec = d.body["spec"]["template"]["spec"]
        (c,) = spec["containers"]
        assert {"name": "kafka-tls", "mountPath": mount, "readOnly": True} in c["volumeMounts"]
        assert {"name": "kafka-tls", "secret": {"secretName": "kafka-client"}} in spec["volumes"]
        kubernetes_validate.validate(d.body, KUBE_VERSION, strict=True)
    (secret,) = find(manifests, "Secret", "customer-customer-service")
    assert "KAFKA_SASL_PASSWORD" in secret.body["data"]
    (cm,) = find(manifests, "ConfigMap", "customer-customer-service")
    assert cm.body["data"]["KAFKA_SSL_CA_FILE"] == f"{mount}/ca.crt"
    # Without the value nothing is mounted.
    for d in find(render(None), "Deployment"):
        assert all(v["name"] != "kafka-tls" for v in d.body["spec"]["template"]["spec"]["volumes"])
