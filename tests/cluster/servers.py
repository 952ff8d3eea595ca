"""etcd and the API servers as child processes on loopback, and kubeconfigs for them.

The binaries come from scripts/build_cluster_bins.sh (Debian's etcd-server, and
kube-apiserver built from Debian's kubernetes sources), cached outside the repo.
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from customer_launcher.devstack import free_port
from tests.support.pki import Authority, Pair, service_account_keys

CACHE = Path(os.environ.get("CLUSTER_BIN_CACHE", "/var/cache/customer-service-cluster"))
BIN = CACHE / "bin"
ETCD = BIN / "etcd"
KUBE_APISERVER = BIN / "kube-apiserver"
# Newer than kube-apiserver: serves CRDs with CEL rules (x-kubernetes-validations).
APIEXTENSIONS_APISERVER = BIN / "apiextensions-apiserver"
READY_SECONDS = 120.0


class Process:
    """A server child process whose output goes to a log file kept for failures."""

    def __init__(
        self, name: str, argv: Sequence[str], log: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name, self.log = name, log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(argv, stdout=self._out, stderr=subprocess.STDOUT, env=env)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


def start_etcd(root: Path) -> tuple[Process, str]:
    client, peer = free_port(), free_port()
    url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
    argv = [
        str(ETCD),
        "--name=test",
        f"--data-dir={root / 'etcd'}",
        f"--listen-client-urls={url}",
        f"--advertise-client-urls={url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=test={peer_url}",
        "--log-level=warn",
    ]
    proc = Process("etcd", argv, root / "etcd.log")
    _wait(proc, lambda: _http_ok(f"{url}/health"))
    return proc, url


@dataclass(frozen=True)
class ApiServer:
    process: Process
    url: str
    ca: Path
    authority: Authority
    root: Path

    def kubeconfig(self, name: str, *, client: Pair | None = None, token: str = "") -> Path:
        """A kubeconfig file for one identity: a client certificate or a bearer token."""
        user: dict[str, str] = (
            {"token": token}
            if token
            else {"client-certificate": str(client.cert), "client-key": str(client.key)}
            if client
            else {}
        )
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": name,
            "clusters": [
                {
                    "name": "test",
                    "cluster": {"server": self.url, "certificate-authority": str(self.ca)},
                }
            ],
            "users": [{"name": name, "user": user}],
            "contexts": [{"name": name, "context": {"cluster": "test", "user": name}}],
        }
        path = self.root / f"{name}.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path


def start_kube_apiserver(root: Path, etcd_url: str) -> ApiServer:
    pki = root / "pki"
    pki.mkdir()
    ca = Authority(pki, "cluster-test-ca")
    serving = ca.issue("apiserver", "kube-apiserver", server=True)
    sa = service_account_keys(pki)
    port = free_port()
    argv = [
        str(KUBE_APISERVER),
        f"--etcd-servers={etcd_url}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={port}",
        "--insecure-port=0",
        f"--cert-dir={pki}",
        f"--tls-cert-file={serving.cert}",
        f"--tls-private-key-file={serving.key}",
        f"--client-ca-file={ca.cert}",
        "--authorization-mode=RBAC",
        "--anonymous-auth=false",
        f"--service-account-key-file={sa.cert}",
        f"--service-account-signing-key-file={sa.key}",
        "--service-account-issuer=https://kubernetes.default.svc",
        "--api-audiences=https://kubernetes.default.svc",
        "--service-cluster-ip-range=10.96.0.0/16",
        "--profiling=false",
        "--v=1",
    ]
    proc = Process("kube-apiserver", argv, root / "kube-apiserver.log")
    url = f"https://127.0.0.1:{port}"
    server = ApiServer(proc, url, ca.cert, ca, root)
    admin = ca.issue("admin", "cluster-admin", groups=("system:masters",))
    context = ssl.create_default_context(cafile=str(ca.cert))
    context.load_cert_chain(str(admin.cert), str(admin.key))
    _wait(proc, lambda: _http_ok(f"{url}/readyz", context))
    return server


def start_apiextensions_apiserver(
    root: Path, etcd_url: str, core: ApiServer, admin_kubeconfig: Path
) -> ApiServer:
    """The CRD-only server, delegating authentication and authorization to `core`."""
    directory = root / "apiextensions"
    directory.mkdir()
    serving = core.authority.issue("apiextensions", "apiextensions-apiserver", server=True)
    port = free_port()
    argv = [
        str(APIEXTENSIONS_APISERVER),
        f"--etcd-servers={etcd_url}",
        "--etcd-prefix=/apiextensions-cel",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={directory}",
        f"--tls-cert-file={serving.cert}",
        f"--tls-private-key-file={serving.key}",
        f"--client-ca-file={core.ca}",
        f"--kubeconfig={admin_kubeconfig}",
        f"--authentication-kubeconfig={admin_kubeconfig}",
        f"--authorization-kubeconfig={admin_kubeconfig}",
        # Their informers would wait forever for APIs the 1.20 core server lacks.
        "--disable-admission-plugins=MutatingAdmissionPolicy,MutatingAdmissionWebhook,"
        "ValidatingAdmissionPolicy,ValidatingAdmissionWebhook",
        "--enable-priority-and-fairness=false",
    ]
    proc = Process("apiextensions-apiserver", argv, root / "apiextensions-apiserver.log")
    url = f"https://127.0.0.1:{port}"
    context = ssl.create_default_context(cafile=str(core.ca))
    _wait(proc, lambda: _http_ok(f"{url}/readyz", context, any_answer=True))
    return ApiServer(proc, url, core.ca, core.authority, directory)


def _http_ok(url: str, context: ssl.SSLContext | None = None, *, any_answer: bool = False) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError:
        return any_answer  # it answered: up, though it wants credentials
    except (OSError, ssl.SSLError):
        return False


def _wait(proc: Process, ready: object) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        proc.check_alive()
        if callable(ready) and ready():
            return
        time.sleep(0.25)
    raise RuntimeError(f"{proc.name} not ready in {READY_SECONDS:.0f}s:\n{proc.tail()}")
