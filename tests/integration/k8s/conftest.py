"""Fixtures for the deployment artefacts: the chart rendered once per session.

Rendering uses Helm v4's own engine through helm-python-sdk, offline: no
cluster, no helm binary. Each rendering is a list of `Manifest`s, one per YAML
document, so tests can look objects up by kind and name.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from customer_core.config import Variable, all_variables

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "helm" / "customer-service"
PRODUCTION_VALUES = CHART / "ci" / "production-values.yaml"
DEV_VALUES = CHART / "ci" / "dev-values.yaml"
RELEASE = "customer"
NAMESPACE = "coffee"
# The newest Kubernetes minor the chart claims to support and kubernetes-validate ships.
KUBE_VERSION = "1.33"
SERVICE_PACKAGES = (
    "customer_api",
    "customer_consumer",
    "customer_scheduler",
    "customer_operator",
    "customer_launcher",
)


@dataclass(frozen=True)
class Manifest:
    template: str
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])


def load_values(path: Path) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(path.read_text())
    return values


# What an install must give since AUTH_MODE=jwt is the default (see test_chart_auth.py).
REQUIRED_AUTH = {
    "JWT_ISSUER": "https://login.example.com/",
    "JWT_AUDIENCE": "customer-service",
    "JWT_JWKS_URL": "https://login.example.com/.well-known/jwks.json",
}


def with_required(values: dict[str, Any] | None) -> dict[str, Any]:
    """`values` plus the required auth values it does not set itself."""
    out = dict(values or {})
    config = dict(out.get("config") or {})
    if config.get("AUTH_MODE", "jwt") == "jwt" and "JWT_JWKS_FILE" not in config:
        for name, value in REQUIRED_AUTH.items():
            config.setdefault(name, value)
    out["config"] = config
    return out


def render(values: dict[str, Any] | None, *, upgrade: bool = False) -> list[Manifest]:
    with helm.Chart.load(CHART) as chart:
        files = chart.render(
            with_required(values),
            name=RELEASE,
            namespace=NAMESPACE,
            is_install=not upgrade,
            is_upgrade=upgrade,
        )
    out = []
    for template, text in sorted(files.items()):
        if template.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                out.append(Manifest(template, doc))
    return out


def find(manifests: list[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    return [m for m in manifests if m.kind == kind and (name is None or m.name == name)]


def service_variables() -> tuple[Variable, ...]:
    """Core variables plus each service's own: importing a `settings` module registers them."""
    for package in SERVICE_PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            if info.name.rsplit(".", 1)[-1].endswith("settings"):
                importlib.import_module(info.name)
    return all_variables()


@pytest.fixture(scope="session")
def default_manifests() -> list[Manifest]:
    return render(None)


@pytest.fixture(scope="session")
def production_values() -> dict[str, Any]:
    return load_values(PRODUCTION_VALUES)


@pytest.fixture(scope="session")
def production_manifests(production_values: dict[str, Any]) -> list[Manifest]:
    return render(production_values, upgrade=True)


@pytest.fixture(scope="session", params=["default", "production"])
def manifests(
    request: pytest.FixtureRequest,
    default_manifests: list[Manifest],
    production_manifests: list[Manifest],
) -> list[Manifest]:
    return default_manifests if request.param == "default" else production_manifests
