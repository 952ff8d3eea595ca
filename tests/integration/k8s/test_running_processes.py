"""The running processes serve what the chart and the dashboards rely on.

api, consumer, scheduler and worker start as `customer-service SUBCOMMAND` child
processes against the session's real PostgreSQL, Valkey and Kafka-protocol broker,
each with its own database, topics, consumer group and job queue. Then:
- every metric a dashboard or alert queries appears in some process's /metrics;
- the probes the chart declares answer: gRPC health (both service names) on the
  api, /livez and /readyz on the consumer, /metrics on the scheduler and worker.
The operator needs a Kubernetes API server, so its metrics are not scraped here.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from customer_launcher.devstack import free_port
from customer_operator import metrics as operator_metrics
from tests.integration.k8s.conftest import Manifest, find
from tests.integration.k8s.promql import dashboard_queries, rule_queries, uses
from tests.integration.k8s.test_dashboards_and_alerts import BUILTIN, DASHBOARDS, SUFFIXES

pytestmark = pytest.mark.integration

STARTUP_SECONDS = 120  # generous: several suites share two cores

# The operator's own series (it needs a Kubernetes API server, so it is not run here).
OPERATOR_METRICS = tuple(
    m._name for m in vars(operator_metrics).values() if isinstance(m, MetricWrapperBase)
)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    ports: dict[str, int]

    def get(self, port: str, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.ports[port]}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode()

    def wait_for(self, port: str, path: str, status: int = 200) -> str:
        deadline = time.monotonic() + STARTUP_SECONDS
        last: object = None
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.popen.returncode}")
            try:
                code, body = self.get(port, path)
                if code == status:
                    return body
                last = code
            except OSError as exc:
                last = exc
            time.sleep(0.5)
        pytest.fail(f"{self.name}: {path} on {port} never answered {status} (last: {last})")


@pytest.fixture
def processes(env: dict[str, str]) -> Iterator[dict[str, Process]]:
    tag = uuid.uuid4().hex[:8]
    common = {
        **env,
        "LOG_FORMAT": "text",
        "AUTH_MODE": "none",  # the api has no default; auth has its own tests
        "KAFKA_TOPIC_PREFIX": f"k8s{tag}.",
        "KAFKA_GROUP_ID": f"k8s-{tag}",
        "KAFKA_TOPIC_PARTITIONS": "2",
        "JOBS_QUEUE": f"k8s-{tag}:jobs",
    }
    wanted = {
        "api": {"metrics": "METRICS_PORT", "grpc": "GRPC_PORT"},
        "consumer": {"metrics": "METRICS_PORT", "health": "CONSUMER_HEALTH_PORT"},
        "scheduler": {"metrics": "METRICS_PORT"},
        "worker": {"metrics": "METRICS_PORT"},
    }
    started: dict[str, Process] = {}
    try:
        for name, port_vars in wanted.items():
            ports = {port: free_port() for port in port_vars}
            child_env = {**common, **{var: str(ports[p]) for p, var in port_vars.items()}}
            popen = subprocess.Popen(
                [sys.executable, "-m", "customer_launcher", name],
                env=child_env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            started[name] = Process(name, popen, ports)
        yield started
    finally:
        for p in started.values():
            if p.popen.poll() is None:
                p.popen.send_signal(signal.SIGTERM)
        for p in started.values():
            try:
                p.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.popen.kill()
                p.popen.wait()


def _series(exposition: str) -> set[str]:
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(family.name + s for s in SUFFIXES.get(family.type, ("",)))
    return names


def test_processes_export_every_queried_metric_and_answer_their_probes(
    processes: dict[str, Process], production_manifests: list[Manifest]
) -> None:
    served: dict[str, set[str]] = {}
    for name, p in processes.items():
        served[name] = _series(p.wait_for("metrics", "/metrics"))

    (rule,) = find(production_manifests, "PrometheusRule")
    queries = [q for path in DASHBOARDS for q in dashboard_queries(path)]
    queries += list(rule_queries(rule.body))
    everything = set().union(*served.values()) | set(BUILTIN)
    for q in queries:
        for use in uses(q.expr):
            if use.metric.startswith(OPERATOR_METRICS):
                continue  # needs a cluster; tests/integration/operator checks them
            assert use.metric in everything, f"{q.where}: no process serves {use.metric}"
    # Each area's metrics come from the process that does the work.
    assert "customer_grpc_requests_total" in served["api"]
    assert "customer_consumer_lag" in served["consumer"]
    assert "customer_job_runs_total" in served["worker"]

    # The probes exactly as the chart declares them.
    probes = {
        d.name.rsplit("-", 1)[-1]: d.body["spec"]["template"]["spec"]["containers"][0]
        for d in find(production_manifests, "Deployment")
    }
    api = processes["api"]
    with grpc.insecure_channel(f"127.0.0.1:{api.ports['grpc']}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            service = probes["api"][probe]["grpc"]["service"]
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=30)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, probe
    for name in ("consumer", "scheduler", "worker"):
        for probe in ("livenessProbe", "readinessProbe"):
            if probe in probes[name]:
                http = probes[name][probe]["httpGet"]
                processes[name].wait_for(http["port"], http["path"])
