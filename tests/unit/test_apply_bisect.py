"""Isolating the event at fault in a batch: bisection, and what committed kept across retries.

The transaction is a fake here (pure logic of `Applying`); the integration tests run
the real one against PostgreSQL and the real consumer."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from customer_core.domain.order_events import Cancelled, OrderEvent, Topic
from customer_core.errors import Unavailable
from customer_core.usecases.events import Applying, BatchResult, Incoming


def batch(n: int) -> list[Incoming]:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    events = [
        OrderEvent(f"e{i}", Topic.CANCELLED, at, uuid.uuid4(), f"o{i}", 1, Cancelled(""))
        for i in range(n)
    ]
    return [Incoming(ev, "t", 0, i) for i, ev in enumerate(events)]


class FakeTransaction:
    def __init__(self, bad: set[str], outage_on_call: int = 0) -> None:
        self.bad, self.outage_on_call, self.calls = bad, outage_on_call, 0

    async def __call__(self, ctx: Any, part: Sequence[Incoming], seconds: float) -> BatchResult:
        self.calls += 1
        if self.calls == self.outage_on_call:
            raise Unavailable("database: gone")
        if any(i.event.event_id in self.bad for i in part):
            raise OverflowError("date value out of range")
        return BatchResult(applied=list(part))


async def test_an_unexpected_error_is_raised_until_the_caller_asks_to_isolate():
    events = batch(8)
    applying = Applying(events)
    with pytest.raises(OverflowError):
        await applying.apply(None, isolate_any=False, run=FakeTransaction({"e3"}))  # type: ignore[arg-type]
    assert applying.pending == events and not applying.committed.applied


async def test_bisection_rejects_only_the_event_at_fault_in_few_transactions():
    events = batch(1000)
    run = FakeTransaction({"e637"})
    applying = Applying(events)
    await applying.apply(None, isolate_any=True, run=run)  # type: ignore[arg-type]
    [rejected] = applying.committed.rejected
    assert rejected.incoming is events[637]
    assert rejected.reason == "apply failed: OverflowError: date value out of range"
    assert applying.committed.applied == [i for i in events if i is not events[637]]
    assert applying.pending == []
    assert run.calls <= 2 * 10 + 1  # one at a time would be 1001


async def test_what_committed_before_an_outage_is_kept_and_not_applied_again():
    events = batch(16)
    run = FakeTransaction({"e2"}, outage_on_call=7)  # the outage in the middle of bisecting
    applying = Applying(events)
    with pytest.raises(Unavailable):
        await applying.apply(None, isolate_any=True, run=run)  # type: ignore[arg-type]
    committed_before = list(applying.committed.applied)
    assert committed_before and len(applying.pending) == 16 - len(committed_before) - len(
        applying.committed.rejected
    )
    await applying.apply(None, isolate_any=True, run=run)  # type: ignore[arg-type]
    applied = [i.event.event_id for i in applying.committed.applied]
    assert sorted(applied) == sorted(f"e{i}" for i in range(16) if i != 2)  # each once
    assert [r.incoming.event.event_id for r in applying.committed.rejected] == ["e2"]
