"""Realistic order events: the dev demo's live traffic, and the benchmark's load.

Each order is placed, usually paid, then completed (about 88%) or cancelled,
with one to three drinks from a small menu, for customers picked with a
skewed (Zipf-like) weight so a few regulars order most. Events are protobuf
JSON keyed by customer id, with a W3C traceparent header, exactly as the
Order Service is asked to send them (docs/consumer.md).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer

from customer_core.domain.order_events import (
    Cancelled,
    Completed,
    Item,
    OrderEvent,
    Payment,
    Placed,
    Topic,
)
from customer_core.usecases.wire import encode_event

log = logging.getLogger(__name__)

MENU = (
    ("caffe-latte", "Caffè Latte", 475),
    ("flat-white", "Flat White", 495),
    ("cappuccino", "Cappuccino", 455),
    ("cold-brew", "Cold Brew", 425),
    ("iced-oat-latte", "Iced Oat Latte", 545),
    ("matcha-latte", "Matcha Latte", 525),
    ("chai-tea-latte", "Chai Tea Latte", 495),
    ("brewed-coffee", "Brewed Coffee", 295),
    ("hot-chocolate", "Hot Chocolate", 395),
    ("reserve-pour-over", "Reserve Pour Over", 695),
)
SIZES = (("small", -50), ("medium", 0), ("large", 60))
METHODS = ("card", "card", "card", "wallet", "wallet", "cash", "gift_card")


@dataclass(frozen=True)
class Outgoing:
    topic: Topic
    key: bytes
    value: bytes
    event: OrderEvent


def _items(rng: random.Random) -> tuple[Item, ...]:
    picks = rng.sample(MENU, k=rng.choice((1, 1, 1, 2, 2, 3)))
    items = []
    for drink_id, name, price in picks:
        size, extra = rng.choice(SIZES)
        items.append(Item(drink_id, name, size, rng.choice((1, 1, 1, 2)), price + extra))
    return tuple(items)


def order_events(rng: random.Random, customer_id: uuid.UUID, at: datetime) -> list[OrderEvent]:
    """One order's events in their natural order, timed from `at`."""
    order_id = f"ord-{uuid.UUID(int=rng.getrandbits(128), version=4).hex[:20]}"
    items = _items(rng)
    total = sum(i.quantity * i.unit_price_minor for i in items)

    def event(topic: Topic, seconds: float, body: object) -> OrderEvent:
        return OrderEvent(
            event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            topic=topic,
            occurred_at=at + timedelta(seconds=seconds),
            customer_id=customer_id,
            order_id=order_id,
            schema_version=1,
            body=body,  # type: ignore[arg-type]
        )

    events = [event(Topic.PLACED, 0, Placed(items, "USD", total, total))]
    cancelled = rng.random() < 0.12
    if not cancelled or rng.random() < 0.5:
        method = rng.choice(METHODS)
        payment = Payment(f"pay-{order_id[4:]}", total, "USD", method)
        events.append(event(Topic.PAYMENT, 2, payment))
    if cancelled:
        events.append(
            event(Topic.CANCELLED, 30, Cancelled(rng.choice(("changed mind", "out of stock"))))
        )
    else:
        events.append(event(Topic.COMPLETED, rng.uniform(120, 400), Completed(total, "USD", items)))
    return events


def skewed(rng: random.Random, customers: Sequence[uuid.UUID]) -> uuid.UUID:
    weights = _weights(len(customers))
    return rng.choices(customers, cum_weights=weights, k=1)[0]


_WEIGHT_CACHE: dict[int, list[float]] = {}


def _weights(n: int) -> list[float]:
    if n not in _WEIGHT_CACHE:
        total, cumulative = 0.0, []
        for i in range(n):
            total += 1 / (i + 1)
            cumulative.append(total)
        _WEIGHT_CACHE[n] = cumulative
    return _WEIGHT_CACHE[n]


def outgoing(event: OrderEvent) -> Outgoing:
    return Outgoing(event.topic, str(event.customer_id).encode(), encode_event(event), event)


def load(
    rng: random.Random,
    customers: Sequence[uuid.UUID],
    count: int,
    *,
    duplicates: float = 0.02,
    start: datetime | None = None,
) -> list[Outgoing]:
    """About `count` events of whole orders, interleaved as many tills would send them,
    with a share of exact duplicates (a producer's retries)."""
    at = start or datetime.now(UTC) - timedelta(days=1)
    events: list[Outgoing] = []
    while len(events) < count:
        for event in order_events(rng, skewed(rng, customers), at):
            events.append(outgoing(event))
            if rng.random() < duplicates:
                events.append(outgoing(event))
        at += timedelta(seconds=rng.uniform(0, 2))
    # Orders overlap in time: shuffle within small windows, keeping most causality.
    window = 64
    for i in range(0, len(events), window):
        chunk = events[i : i + window]
        rng.shuffle(chunk)
        events[i : i + window] = chunk
    return events[:count]


def traceparent(rng: random.Random) -> bytes:
    return f"00-{rng.getrandbits(128):032x}-{rng.getrandbits(64):016x}-01".encode()


async def publish(
    producer: AIOKafkaProducer, prefix: str, events: Sequence[Outgoing], rng: random.Random
) -> None:
    """Send `events` and wait until the broker acknowledged all of them."""
    futures = []
    for out in events:
        headers = [("traceparent", traceparent(rng))]
        futures.append(
            await producer.send(
                f"{prefix}{out.topic.value}", out.value, key=out.key, headers=headers
            )
        )
    await asyncio.gather(*futures)


def live_schedule(
    rng: random.Random, customers: Sequence[uuid.UUID], rate: float
) -> Iterator[tuple[float, OrderEvent]]:
    """(delay from now, event) forever: new orders arrive so that about `rate` events/s flow,
    each order's later events following seconds after its placement."""
    heap: list[tuple[float, int, OrderEvent]] = []
    clock, seq = 0.0, 0
    per_order = 2.9
    while True:
        clock += rng.expovariate(rate / per_order)
        now = datetime.now(UTC)
        for event in order_events(rng, skewed(rng, customers), now):
            # Compress an order's minutes into seconds so the demo moves.
            delay = (event.occurred_at - now).total_seconds() / 60
            heapq.heappush(heap, (clock + delay, seq, event))
            seq += 1
        while heap and heap[0][0] <= clock:
            due, _, event = heapq.heappop(heap)
            yield due, event
