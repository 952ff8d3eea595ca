"""Traces cross process boundaries; the metrics the dashboards chart exist with data.

Spans go to a real OTLP/gRPC TraceService in the test (tests/support/e2e_otlp.py),
which every process exports to through OTEL_EXPORTER_OTLP_ENDPOINT.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from google.protobuf import json_format

from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from customer_core.pb.customer.v1 import events_pb2 as ev
from tests.support.e2e_otlp import Collector, Span
from tests.support.e2e_simulator import Simulator

DASHBOARDS = Path(__file__).parents[2] / "helm" / "customer-service" / "dashboards"


def _ids() -> tuple[str, str]:
    rng = random.Random()
    return f"{rng.getrandbits(128):032x}", f"{rng.getrandbits(64):016x}"


async def _spans_until(collector: Collector, ok: object, within: float = 60) -> list[Span]:
    assert callable(ok)
    deadline = time.monotonic() + within
    while True:
        spans = collector.snapshot()
        if ok(spans):
            return spans
        assert time.monotonic() < deadline, "the expected spans never reached the collector"
        await asyncio.sleep(0.5)


def _is_db(span: Span) -> bool:
    return span.attributes.get("db.system") == "postgresql"


async def test_one_trace_from_a_grpc_call_through_the_database(
    collector: Collector, sim: Simulator, stub: customer_pb2_grpc.CustomerServiceStub
) -> None:
    await sim.create_members(families=1, per_family=1)
    member = next(iter(sim.model.members))
    trace_id, parent = _ids()
    await stub.GetLoyaltyAccount(
        pb.GetLoyaltyAccountRequest(customer=member),
        metadata=[("traceparent", f"00-{trace_id}-{parent}-01")],
        timeout=10,
    )

    def done(spans: list[Span]) -> bool:
        mine = [s for s in spans if s.trace_id == trace_id]
        return any(s.parent_id == parent for s in mine) and any(_is_db(s) for s in mine)

    spans = [s for s in await _spans_until(collector, done) if s.trace_id == trace_id]
    server = next(s for s in spans if s.parent_id == parent)
    assert server.component == "api"
    assert "GetLoyaltyAccount" in server.name
    by_id = {s.span_id: s for s in spans}
    for db_span in filter(_is_db, spans):
        # Every database span hangs off the server span of our call.
        chain, at = [], db_span
        while at.parent_id in by_id:
            at = by_id[at.parent_id]
            chain.append(at.span_id)
        assert server.span_id in chain


async def test_a_produced_events_traceparent_reaches_the_consumers_spans(
    collector: Collector, sim: Simulator
) -> None:
    """The producer's trace continues into the consumer: a consumer span has the
    producer's span as its parent, and the database work that applied the event is
    in that same trace (a batch of this one record is parented on it) or in the
    batch span it links to (a batch mixing several producers' records)."""
    await sim.create_members(families=1, per_family=1)
    customer = next(iter(sim.model.members)).split("/")[1]
    trace_id, parent = _ids()
    event = ev.OrderEvent(
        event_id=str(uuid.uuid4()),
        event_type="order.placed",
        customer_id=customer,
        order_id=f"trace-{trace_id[:8]}",
        schema_version=1,
        placed=ev.OrderPlaced(
            items=[
                ev.OrderItem(
                    drink_id="espresso",
                    drink_name="Espresso",
                    size="small",
                    quantity=1,
                    unit_price_minor=300,
                )
            ],
            currency_code="USD",
            subtotal_minor=300,
            total_minor=300,
        ),
    )
    event.occurred_at.FromDatetime(datetime.now(UTC))
    value = json_format.MessageToJson(event, indent=None).encode()
    header = f"00-{trace_id}-{parent}-01".encode()
    await sim.produce("order.placed", customer.encode(), value, [("traceparent", header)])

    def continued(s: Span) -> bool:
        return s.component == "consumer" and s.trace_id == trace_id and s.parent_id == parent

    def work_of(spans: list[Span], first: Span) -> list[Span]:
        # The trace the event's database work is in: the producer's own, or the
        # batch span's that the consumer span links to.
        traces = {first.trace_id} | {t for t, _ in first.links}
        return [
            d for d in spans if _is_db(d) and d.component == "consumer" and d.trace_id in traces
        ]

    def done(spans: list[Span]) -> bool:
        return any(work_of(spans, s) for s in spans if continued(s))

    spans = await _spans_until(collector, done)
    first = next(s for s in spans if continued(s) and work_of(spans, s))
    assert first.trace_id == trace_id
    assert work_of(spans, first)
