"""The e2e suite's fixtures: one set of processes for the package, a simulator per test.

`customer-service dev` (the launcher of `make run`) runs two api replicas,
the consumer, the scheduler and the worker on embedded servers of the suite's
own (see tests/support/e2e_stack.py), exporting traces to a test OTLP
collector. Tests share the processes but never their data: each test's
simulator creates its own families and customers, and checks only them.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from customer_core.pb.customer.v1 import customer_pb2_grpc
from tests.support.e2e_model import Model
from tests.support.e2e_otlp import Collector
from tests.support.e2e_simulator import Simulator, open_channel
from tests.support.e2e_stack import E2EStack

POINTS_PER_UNIT = 10

# Every job due each minute, so the scheduler and worker do real work while tests run.
EVERY_MINUTE = "* * * * *"


@pytest.fixture(scope="package")
def collector() -> Iterator[Collector]:
    c = Collector()
    c.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="package")
def e2e(collector: Collector) -> Iterator[E2EStack]:
    root = Path(tempfile.mkdtemp(prefix="customer-e2e-"))
    root.chmod(0o755)  # PostgreSQL runs as another user when we are root
    env = {
        "GRPC_PORT": "0",
        "METRICS_PORT": "0",
        "CONSUMER_HEALTH_PORT": "0",
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "WARNING",
        "KAFKA_TOPIC_PARTITIONS": "3",
        "CONSUMER_POLL_MS": "200",
        "CONSUMER_RETRY_MAX_SECONDS": "2",
        "GRPC_GRACE_SECONDS": "5",
        "POINTS_PER_CURRENCY_UNIT": str(POINTS_PER_UNIT),
        "POINTS_ROUNDING": "floor",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "300",
        "JOBS_SCHEDULE_HOLDS": EVERY_MINUTE,
        "JOBS_SCHEDULE_RECONCILE": EVERY_MINUTE,
        "JOBS_SCHEDULE_ROLLUPS": EVERY_MINUTE,
        "JOBS_SCHEDULE_NOTIFICATIONS": EVERY_MINUTE,
    }
    stack = E2EStack(root, env)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
async def channel(e2e: E2EStack) -> AsyncIterator[grpc.aio.Channel]:
    ch = open_channel(e2e.api_ports)
    try:
        yield ch
    finally:
        await ch.close()


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> customer_pb2_grpc.CustomerServiceStub:
    return customer_pb2_grpc.CustomerServiceStub(channel)


@pytest.fixture
async def sim(
    e2e: E2EStack, stub: customer_pb2_grpc.CustomerServiceStub
) -> AsyncIterator[Simulator]:
    # A fault test that failed half-way may have left a server stopped; start it
    # again so that the failure stays that test's own.
    for server in e2e.servers.servers():
        if not server.running:
            await asyncio.get_running_loop().run_in_executor(e2e.spawner, server.start)
    seed = random.randrange(2**32)
    print(f"simulator seed {seed}")
    simulator = Simulator(stub, e2e.brokers, Model(points_per_unit=POINTS_PER_UNIT), seed)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    stack = item.funcargs.get("e2e") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(stack, E2EStack):
        report.sections.append(("customer-service dev log (tail)", stack.log_tail()))
        report.sections.append(("customer-service dev log (errors)", stack.log_errors()))
    return report
