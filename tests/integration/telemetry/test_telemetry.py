"""What operators rely on: RPC metrics, JSON logs with request and trace ids."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from prometheus_client import REGISTRY, generate_latest

from customer_api.server import build_server
from customer_core import telemetry
from customer_core.context import Context
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from tests.support.open_api import NO_AUTH

Stub = customer_pb2_grpc.CustomerServiceStub


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_rpcs_are_counted_by_method_and_code_with_latency(api: Stub) -> None:
    watched = {
        "ok": ("customer_grpc_requests_total", {"method": "CreateFamily", "code": "OK"}),
        "bad": (
            "customer_grpc_requests_total",
            {"method": "GetFamily", "code": "INVALID_ARGUMENT"},
        ),
        "missing": ("customer_grpc_requests_total", {"method": "GetCustomer", "code": "NOT_FOUND"}),
        "latency": ("customer_grpc_request_duration_seconds_count", {"method": "CreateFamily"}),
        "miss": ("customer_cache_requests_total", {"cache": "customer", "result": "miss"}),
    }
    before = {k: sample(name, **labels) for k, (name, labels) in watched.items()}

    for _ in range(3):
        await api.CreateFamily(pb.CreateFamilyRequest(family=pb.Family(display_name="M")))
    with pytest.raises(grpc.aio.AioRpcError):
        await api.GetFamily(pb.GetFamilyRequest(name="nope"))
    with pytest.raises(grpc.aio.AioRpcError):
        await api.GetCustomer(
            pb.GetCustomerRequest(name="customers/00000000-0000-4000-8000-000000000000")
        )

    grown = {k: sample(name, **labels) - before[k] for k, (name, labels) in watched.items()}
    assert grown == {"ok": 3, "bad": 1, "missing": 1, "latency": 3, "miss": 1}
    text = generate_latest(REGISTRY).decode()
    assert 'customer_grpc_requests_total{code="OK",method="CreateFamily"}' in text
    assert re.search(
        r'customer_grpc_request_duration_seconds_bucket\{le="0\.1",method="CreateFamily"\}', text
    )
    assert 'customer_db_query_duration_seconds_count{operation="families.create"}' in text


class Captured(logging.Handler):
    """Formats each record as it is emitted, inside the RPC's context."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(telemetry.JsonFormatter())
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def captured() -> Iterator[Captured]:
    handler = Captured()
    logger = logging.getLogger("customer_core")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


@pytest.fixture
async def traced_api(ctx: Context) -> AsyncIterator[Stub]:
    """A server built after tracing was set up the way `customer-service api` does it."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorServer

    telemetry.setup_tracing(ctx.settings, "api")
    instrumentor = GrpcAioInstrumentorServer()
    instrumentor.instrument()
    try:
        server = build_server(ctx, 0, host="127.0.0.1", security=NO_AUTH)
    finally:
        # Only servers built inside this fixture are traced; later tests see plain ones.
        instrumentor.uninstrument()
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield Stub(channel)
    finally:
        await channel.close()
        await server.stop(0)
        AsyncPGInstrumentor().uninstrument()


async def test_log_lines_carry_the_request_id_and_trace_id(
    traced_api: Stub, captured: Captured
) -> None:
    await traced_api.CreateFamily(
        pb.CreateFamilyRequest(family=pb.Family(display_name="Logged")),
        metadata=(("x-request-id", "req-1234"),),
    )
    lines = [line for line in captured.lines if line["message"] == "family created"]
    assert len(lines) == 1
    line = lines[0]
    assert line["request_id"] == "req-1234"
    assert re.fullmatch(r"[0-9a-f]{32}", str(line["trace_id"]))
    assert line["trace_id"] != "0" * 32
    assert line["level"] == "INFO"


async def test_a_request_id_is_generated_when_none_is_sent(api: Stub, captured: Captured) -> None:
    await api.CreateFamily(pb.CreateFamilyRequest(family=pb.Family(display_name="A")))
    await api.CreateFamily(pb.CreateFamilyRequest(family=pb.Family(display_name="B")))
    ids = [line.get("request_id") for line in captured.lines if line["message"] == "family created"]
    assert len(ids) == 2
    assert all(isinstance(i, str) and len(i) >= 16 for i in ids)
    assert ids[0] != ids[1]
