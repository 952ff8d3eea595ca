"""A real etcd and kube-apiserver on loopback, once per session (tests/cluster).

The binaries are built once by `scripts/build_cluster_bins.sh` (`make test-cluster`
runs it) into a cache outside the repo. Without them every test here is skipped,
saying so; with them the default `pytest` run includes these tests.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import chart
from tests.cluster.kube import Kubectl, eventually
from tests.cluster.operators import Operators
from tests.cluster.servers import (
    APIEXTENSIONS_APISERVER,
    ETCD,
    KUBE_APISERVER,
    ApiServer,
    start_apiextensions_apiserver,
    start_etcd,
    start_kube_apiserver,
)

MISSING = [str(p) for p in (ETCD, KUBE_APISERVER) if not p.exists()]
if shutil.which("kubectl") is None:
    MISSING.append("kubectl")
REASON = (
    f"cluster binaries missing ({', '.join(MISSING)}): run `make test-cluster` "
    "(scripts/build_cluster_bins.sh builds them once)"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.skipif(bool(MISSING), reason=REASON))


@pytest.fixture(scope="session")
def cluster_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="customer-service-cluster-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def etcd(cluster_root: Path) -> Iterator[str]:
    proc, url = start_etcd(cluster_root)
    yield url
    proc.stop()


@pytest.fixture(scope="session")
def apiserver(cluster_root: Path, etcd: str) -> Iterator[ApiServer]:
    server = start_kube_apiserver(cluster_root, etcd)
    yield server
    if server.process.proc.poll() is not None:
        print(f"kube-apiserver exited early:\n{server.process.tail(60)}")
    server.process.stop()


@pytest.fixture(scope="session")
def admin_kubeconfig(apiserver: ApiServer) -> Path:
    client = apiserver.authority.issue("admin", "cluster-admin", groups=("system:masters",))
    return apiserver.kubeconfig("admin", client=client)


@pytest.fixture(scope="session")
def admin(admin_kubeconfig: Path) -> Kubectl:
    return Kubectl(admin_kubeconfig)


@pytest.fixture(scope="session")
def crd(admin: Kubectl) -> dict[str, object]:
    """The CRDs from k8s/crds (RewardCampaign, kopf's peering), applied and Established."""
    # 1.20 predates x-kubernetes-validations: kubectl's schema check would refuse the
    # field, and the server drops it; the CEL rules are checked on `cel_server`.
    admin.run("apply", "--validate=false", "-f", str(chart.CRDS))
    name = "rewardcampaigns.rewards.coffee.example"

    def established() -> dict[str, object] | None:
        body: dict[str, object] = admin.get("crd", name)
        conditions = body.get("status", {}).get("conditions", [])  # type: ignore[attr-defined]
        ok = any(c["type"] == "Established" and c["status"] == "True" for c in conditions)
        return body if ok else None

    return eventually(established, timeout=30, what="CRD established")


@pytest.fixture(scope="session")
def cel_server(
    cluster_root: Path, etcd: str, apiserver: ApiServer, admin_kubeconfig: Path
) -> Iterator[Kubectl]:
    """A newer CRD server (apiextensions-apiserver) that runs x-kubernetes-validations."""
    if not APIEXTENSIONS_APISERVER.exists():
        pytest.skip(f"{APIEXTENSIONS_APISERVER} missing: CEL rules need a 1.25+ CRD server")
    server = start_apiextensions_apiserver(cluster_root, etcd, apiserver, admin_kubeconfig)
    client = apiserver.authority.issue("cel-admin", "cluster-admin", groups=("system:masters",))
    kubectl = Kubectl(server.kubeconfig("cel-admin", client=client))
    yield kubectl
    server.process.stop()


_namespaces = iter(range(1, 10_000))


@pytest.fixture
def namespace(admin: Kubectl, crd: object) -> str:
    name = f"coffee-{next(_namespaces)}"
    admin.run("create", "namespace", name)
    return name


@pytest.fixture
def operator_kubectl(admin: Kubectl, apiserver: ApiServer, namespace: str) -> Kubectl:
    """The chart's operator ServiceAccount, Role and bindings, and a token for exactly it."""
    admin.in_namespace(namespace).apply(chart.operator_rbac(namespace))
    account = chart.OPERATOR_SERVICE_ACCOUNT
    token = admin.in_namespace(namespace).run("create", "token", account, "--duration=2h")
    path = apiserver.kubeconfig(f"operator-{namespace}", token=token.strip())
    return Kubectl(path, namespace)


@pytest.fixture
def operators(
    env: dict[str, str], operator_kubectl: Kubectl, admin: Kubectl, tmp_path: Path
) -> Iterator[Operators]:
    running = Operators(env, operator_kubectl, admin, tmp_path)
    yield running
    running.stop()
    for proc in running.started:  # shown only when the test failed
        print(f"--- {proc.name}\n{proc.tail(40)}")
