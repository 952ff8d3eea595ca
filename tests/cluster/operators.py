"""`customer-service operator` as real child processes with the chart's RBAC identity."""

from __future__ import annotations

import sys
from pathlib import Path

from customer_launcher.devstack import DevStack
from tests.cluster.kube import Kubectl
from tests.cluster.servers import Process, free_port

CLI = Path(sys.executable).with_name("customer-service")


class Operators:
    """Starts operator replicas for one namespace; each logs to its own file."""

    def __init__(
        self, env: dict[str, str], kubectl: Kubectl, admin: Kubectl, directory: Path
    ) -> None:
        self.env, self.kubectl, self.directory = env, kubectl, directory
        self.admin = admin.in_namespace(kubectl.namespace)
        self.started: list[Process] = []

    def start(self, *, db_port: int | None = None) -> Process:
        env = {
            **self.env,
            "KUBECONFIG": str(self.kubectl.kubeconfig),
            "OPERATOR_NAMESPACES": self.kubectl.namespace,
            "OPERATOR_LIVENESS_PORT": str(free_port()),
            "OPERATOR_REFRESH_SECONDS": "2",
            "OPERATOR_RETRY_SECONDS": "1",
            "METRICS_PORT": "0",
            "LOG_LEVEL": "INFO",
        }
        if db_port is not None:
            env["DB_PORT"] = str(db_port)
        n = len(self.started) + 1
        proc = Process(f"operator-{n}", [str(CLI), "operator"], self.directory / f"op{n}.log", env)
        self.started.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.started:
            proc.stop()


def campaign_row(stack: DevStack, database: str, namespace: str, name: str) -> list[str]:
    """generation, paused, ended? and the spec's multiplier of the campaign's row."""
    assert stack.postgres is not None
    out = stack.postgres.psql(
        "SELECT generation, paused, ended_at IS NOT NULL, spec->'effect'->>'multiplier' "
        f"FROM reward_campaigns WHERE namespace = '{namespace}' AND name = '{name}'",
        database=database,
    )
    return out.strip().split("|") if out.strip() else []
