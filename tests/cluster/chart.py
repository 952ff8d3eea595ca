"""The chart and CRD as the cluster tests use them: rendered pieces and install values.

The server here is kube-apiserver 1.20 (the newest Debian ships as source), while
the chart claims Kubernetes >=1.29. `server_values` turns off only the objects whose
API versions 1.20 lacks (PodDisruptionBudget policy/v1, HorizontalPodAutoscaler
autoscaling/v2) and the api, whose gRPC probes are 1.24+; `chart_for_server`
widens kubeVersion in a copy. Both are listed
in docs/kubernetes.md as what the cluster tests do not check.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml
from helm_python import _native

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "customer-service"
CRDS = ROOT / "k8s" / "crds"
CRD_PATH = CRDS / "rewardcampaigns.yaml"
EXAMPLES = sorted((ROOT / "k8s" / "examples").glob("*.yaml"))
PRODUCTION_VALUES = CHART / "ci" / "production-values.yaml"
RELEASE = "customer"
OPERATOR_SERVICE_ACCOUNT = f"{RELEASE}-customer-service-operator"
# Set explicitly so the tests hold whichever AUTH_MODE the chart defaults to.
AUTH = {
    "AUTH_MODE": "jwt",
    "JWT_JWKS_URL": "https://login.example.com/.well-known/jwks.json",
    "JWT_ISSUER": "https://login.example.com/",
    "JWT_AUDIENCE": "customer-service",
}


def example(path: Path) -> str:
    """An example manifest for any namespace (the files name `default`)."""
    body = yaml.safe_load(path.read_text())
    body["metadata"].pop("namespace", None)
    return yaml.safe_dump(body)


def render(values: dict[str, Any] | None, namespace: str) -> dict[str, list[dict[str, Any]]]:
    """Template name -> its objects, rendered by Helm's engine for `namespace`."""
    with helm.Chart.load(CHART) as loaded:
        files = loaded.render(values, name=RELEASE, namespace=namespace, is_install=True)
    return {
        template: [doc for doc in yaml.safe_load_all(text) if doc]
        for template, text in files.items()
        if not template.endswith("NOTES.txt")
    }


def operator_rbac(namespace: str) -> str:
    """Exactly the chart's operator ServiceAccount, Role, ClusterRole and bindings."""
    docs = render(default_values(), namespace)["customer-service/templates/operator-rbac.yaml"]
    for doc in docs:
        if doc["kind"] in ("ServiceAccount", "Role", "RoleBinding", "KopfPeering"):
            doc["metadata"]["namespace"] = namespace
    return yaml.safe_dump_all(docs)


def default_values() -> dict[str, Any]:
    return {"config": dict(AUTH)}


def production_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(PRODUCTION_VALUES.read_text())
    return values


def server_values(values: dict[str, Any]) -> dict[str, Any]:
    """`values` less the objects whose API versions kube-apiserver 1.20 does not serve."""
    out = copy.deepcopy(values)
    for component in ("api", "consumer", "worker"):
        out.setdefault(component, {}).setdefault("pdb", {})["enabled"] = False
    for component in ("api", "worker"):  # the consumer scales with KEDA
        out.setdefault(component, {}).setdefault("autoscaling", {})["enabled"] = False
    # Its probes are gRPC probes (1.24+), which 1.20 refuses as "no handler".
    out["api"]["enabled"] = False
    return out


def chart_for_server(directory: Path, kube_version: str) -> Path:
    """A copy of the chart whose kubeVersion admits the test server's version."""
    target = directory / "customer-service"
    if not target.exists():
        shutil.copytree(CHART, target)
        meta_path = target / "Chart.yaml"
        meta = yaml.safe_load(meta_path.read_text())
        meta["kubeVersion"] = f">={kube_version}-0"
        meta_path.write_text(yaml.safe_dump(meta, sort_keys=False))
    return target


# Options helm-python-sdk's native library takes but its Python signature omits:
# the CRDs are already installed (1.20's typed schema refuses their CEL rules under
# Helm's server-side apply; test_crds checks them), and kubectl-style client-side
# validation against 1.20's OpenAPI, like 1.20's server-side apply, would refuse
# fields newer than 1.20 (gRPC probes, 1.24+): a plain create lets the server take
# the objects (dropping those fields, which this server therefore does not check).
FOR_OLD_SERVER = {
    "skip_crds": True,
    "disable_openapi_validation": True,
}


def release(
    config: helm.Config, action: str, chart_dir: Path, values: dict[str, Any], namespace: str
) -> dict[str, Any]:
    """`helm install` or `helm upgrade` of `chart_dir` as RELEASE, waiting up to 2 minutes."""
    # install takes a bool here, upgrade "true", "false" or "auto".
    ssa: bool | str = False if action == "install" else "false"
    opts = {
        "namespace": namespace,
        "timeout_seconds": 120,
        "server_side_apply": ssa,
        **FOR_OLD_SERVER,
    }
    payload = _native.call_string(
        f"helm_{action}",
        config._raw(),
        _native.HANDLE(0),
        _native.HANDLE(0),
        str(chart_dir),
        RELEASE,
        json.dumps(values),
        json.dumps(opts),
    )
    result: dict[str, Any] = json.loads(payload)
    return result
