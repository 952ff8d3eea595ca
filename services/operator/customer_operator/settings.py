"""The operator's own configuration variables (the core ones are in customer_core.config)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from customer_core.config import EnvReader, Settings, Variable, load_settings, register
from customer_core.errors import ConfigError

# Where Kubernetes mounts the pod's own namespace.
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

register(
    Variable(
        "OPERATOR_NAMESPACES",
        "",
        "namespaces whose RewardCampaigns the operator reconciles, comma-separated "
        "(empty: the pod's own namespace; `*`: the whole cluster, which needs a ClusterRole)",
    ),
    Variable("OPERATOR_LIVENESS_PORT", "8080", "HTTP port of the operator's /healthz"),
    Variable(
        "OPERATOR_REFRESH_SECONDS",
        "60",
        "how often each campaign's status is refreshed from the DB",
    ),
    Variable(
        "OPERATOR_RETRY_SECONDS", "30", "wait before retrying a reconcile the database refused"
    ),
)


@dataclass(frozen=True)
class OperatorSettings:
    core: Settings
    namespaces: tuple[str, ...]  # empty: cluster-wide
    liveness_port: int
    refresh_seconds: float
    retry_seconds: float

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces


def _namespaces(raw: str) -> tuple[str, ...]:
    if raw.strip() == "*":
        return ()
    names = tuple(n.strip() for n in raw.split(",") if n.strip())
    if names:
        if any(n == "*" for n in names):
            raise ConfigError("OPERATOR_NAMESPACES", "`*` cannot be combined with names")
        return names
    if SERVICE_ACCOUNT_NAMESPACE.exists():
        return (SERVICE_ACCOUNT_NAMESPACE.read_text().strip(),)
    return ("default",)


def load(env: Mapping[str, str] | None = None) -> OperatorSettings:
    source = os.environ if env is None else env
    r = EnvReader(source)
    return OperatorSettings(
        core=load_settings(source),
        namespaces=_namespaces(r.text("OPERATOR_NAMESPACES")),
        liveness_port=r.integer("OPERATOR_LIVENESS_PORT", 1, 65535),
        refresh_seconds=r.number("OPERATOR_REFRESH_SECONDS", 1, 86400),
        retry_seconds=r.number("OPERATOR_RETRY_SECONDS", 0.1, 3600),
    )
