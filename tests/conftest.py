"""Shared fixtures: real servers once per session, a fresh database per test.

The embedded PostgreSQL, Valkey and Tansu start once per session (about a
second). Migrations run once into a template database; every test gets its own
database cloned from it (CREATE DATABASE ... TEMPLATE, tens of milliseconds) and a
flushed Valkey, so tests never see each other's data.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from customer_core.config import Settings, load_settings
from customer_core.context import Context, connect_db
from customer_core.db.migrate import apply_migrations
from customer_core.pb.customer.v1 import customer_pb2_grpc
from customer_launcher.devstack import DB_NAME, DevStack

TEMPLATE_DB = "customer_template"


@pytest.fixture(scope="session")
def stack() -> Iterator[DevStack]:
    root = Path(tempfile.mkdtemp(prefix="customer-service-test-"))
    root.chmod(0o755)  # PostgreSQL runs as another user when we are root
    dev = DevStack.create(root)
    dev.start()
    try:
        yield dev
    finally:
        dev.stop()
        # A session's servers hold ~300 MB of data; leaving them filled the disk.
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def base_env(stack: DevStack) -> dict[str, str]:
    """Variables pointing at the session's servers (and quiet, fast defaults)."""
    return {**stack.env(), "LOG_FORMAT": "text", "METRICS_PORT": "0", "GRPC_PORT": "0"}


@pytest.fixture(scope="session")
async def template_db(stack: DevStack, base_env: dict[str, str]) -> str:
    assert stack.postgres is not None
    stack.postgres.psql(f"DROP DATABASE IF EXISTS {TEMPLATE_DB}")
    stack.postgres.psql(f"CREATE DATABASE {TEMPLATE_DB}")
    settings = load_settings({**base_env, "DB_NAME": TEMPLATE_DB})
    conn = await connect_db(settings)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()
    return TEMPLATE_DB


@pytest.fixture
async def settings(
    stack: DevStack, base_env: dict[str, str], template_db: str
) -> AsyncIterator[Settings]:
    """Settings for a database of this test's own, cloned from the migrated template."""
    assert stack.postgres is not None
    name = f"t_{uuid.uuid4().hex[:12]}"
    stack.postgres.psql(f"CREATE DATABASE {name} TEMPLATE {template_db}")
    env = {**base_env, "DB_NAME": name}
    yield load_settings(env)
    stack.postgres.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def env(settings: Settings, base_env: dict[str, str]) -> dict[str, str]:
    """The same as `settings`, as variables for a child process."""
    return {**os.environ, **base_env, "DB_NAME": settings.db.name}


@pytest.fixture
async def ctx(settings: Settings) -> AsyncIterator[Context]:
    context = await Context.create(settings)
    await context.valkey.flushdb()
    try:
        yield context
    finally:
        await context.aclose()


@pytest.fixture
async def api(ctx: Context) -> AsyncIterator[customer_pb2_grpc.CustomerServiceStub]:
    """A real server on a free port and a real channel to it."""
    from customer_api.server import build_server
    from tests.support.open_api import NO_AUTH

    server = build_server(ctx, 0, host="127.0.0.1", security=NO_AUTH)
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield customer_pb2_grpc.CustomerServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(0)


__all__ = ["DB_NAME"]
