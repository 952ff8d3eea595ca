"""`helm install`, `upgrade` and `uninstall` of the chart against the real API server.

No kubelet or controllers run, so nothing would finish the migration hook Job:
the test plays the Job controller, marking it Complete once it appears, and
records what existed at that moment (the hook's ordering). See chart.py for what
kube-apiserver 1.20 cannot check.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.cluster import chart
from tests.cluster.kube import Kubectl, eventually

# Kinds the server knows only through stand-in CRDs (their operators are not here).
STAND_INS = {
    ("keda.sh", "v1alpha1", "ScaledObject"),
    ("monitoring.coreos.com", "v1", "ServiceMonitor"),
    ("monitoring.coreos.com", "v1", "PodMonitor"),
    ("monitoring.coreos.com", "v1", "PrometheusRule"),
}


def _stand_in(group: str, version: str, kind: str) -> dict[str, Any]:
    plural = kind.lower() + "s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


@pytest.fixture(scope="session")
def stand_ins(admin: Kubectl) -> None:
    admin.apply(yaml.safe_dump_all([_stand_in(*k) for k in sorted(STAND_INS)]))
    for group, _, kind in STAND_INS:
        admin.run(
            "wait", "--for=condition=Established", "--timeout=60s", f"crd/{kind.lower()}s.{group}"
        )
    if not admin.exists("namespace", "monitoring"):
        admin.run("create", "namespace", "monitoring")


class JobController:
    """Completes the chart's hook Jobs, noting which Deployments existed at the time."""

    def __init__(self, kubectl: Kubectl) -> None:
        self.kubectl = kubectl
        self.seen: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> JobController:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        done: set[str] = set()
        while not self._stop.wait(0.3):
            for job in self.kubectl.get("jobs")["items"]:
                uid = job["metadata"]["uid"]
                if uid in done:
                    continue
                deployments = self.kubectl.get("deployments")["items"]
                configmaps = [
                    c["metadata"]["name"] for c in self.kubectl.get("configmaps")["items"]
                ]
                self.seen.append({"job": job, "deployments": deployments, "configmaps": configmaps})
                self.kubectl.run(
                    "patch",
                    "job",
                    job["metadata"]["name"],
                    "--subresource=status",
                    "--type=merge",
                    "-p",
                    _COMPLETE,
                )
                done.add(uid)


_COMPLETE = (
    '{"status": {"succeeded": 1, "startTime": "2026-01-01T00:00:00Z",'
    ' "completionTime": "2026-01-01T00:00:01Z", "conditions": [{"type": "Complete",'
    ' "status": "True", "lastProbeTime": "2026-01-01T00:00:01Z",'
    ' "lastTransitionTime": "2026-01-01T00:00:01Z"}]}}'
)


def _objects(manifest: str) -> list[tuple[str, str]]:
    return [(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(manifest) if d]


@pytest.mark.parametrize("which", ["default", "production"])
def test_install_upgrade_and_uninstall_are_accepted_by_the_server(
    which: str, admin: Kubectl, namespace: str, stand_ins: None, tmp_path: Path
) -> None:
    kubectl = admin.in_namespace(namespace)
    values = chart.server_values(
        chart.default_values() if which == "default" else chart.production_values()
    )
    version = yaml.safe_load(kubectl.run("version", "-o", "yaml"))["serverVersion"]["gitVersion"]
    chart_dir = chart.chart_for_server(tmp_path, version.lstrip("v"))
    with helm.Config(kubeconfig_path=admin.kubeconfig, namespace=namespace) as config:
        with JobController(kubectl) as jobs:
            release = chart.release(config, "install", chart_dir, values, namespace)
        (install,) = jobs.seen
        assert install["job"]["metadata"]["name"] == "customer-customer-service-migrate"
        assert install["deployments"] == []  # the migration runs before any process
        assert "customer-customer-service-migrate" in install["configmaps"]
        created = _objects(release["manifest"])
        assert ("Deployment", "customer-customer-service-operator") in created
        for kind, name in created:
            target = admin if kind.startswith("Cluster") else kubectl
            if kind == "ConfigMap" and name.startswith(
                f"{chart.RELEASE}-customer-service-dashboard"
            ):
                continue  # may live in the dashboards namespace
            assert target.exists(kind, name), (kind, name)
        assert not kubectl.exists("job", "customer-customer-service-migrate")  # hook-succeeded

        changed = {**values, "worker": {**values.get("worker", {}), "replicas": 4}}
        with JobController(kubectl) as jobs:
            chart.release(config, "upgrade", chart_dir, changed, namespace)
        (upgrade,) = jobs.seen
        worker = next(
            d for d in upgrade["deployments"] if d["metadata"]["name"].endswith("-worker")
        )
        assert worker["spec"]["replicas"] != 4  # pre-upgrade: migrated before the rollout
        eventually(
            lambda: (
                kubectl.get("deployment", "customer-customer-service-worker")["spec"]["replicas"]
                == 4
            ),
            what="upgraded",
        )

        config.uninstall(chart.RELEASE, timeout=120)
    for kind, name in created:
        target = admin if kind.startswith("Cluster") else kubectl
        eventually(lambda k=kind, n=name, t=target: not t.exists(k, n), what=f"{kind} removed")
