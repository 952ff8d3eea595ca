"""Order events and how one order's events combine, whatever order they arrive in.

An order's state is a fold of its events. Each kind of event sets its part of
the state once (a later copy of the same kind changes nothing), and the parts
never overwrite each other in an arrival-dependent way: the placement's items
and total win over the completion's copy whichever came first. So every
permutation of one order's events ends in the same state, and the effects
(counters, points) follow from the transitions, never from arrival order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from customer_core.domain.values import quick_init


class Topic(StrEnum):
    """The event types, which are also the base names of their topics."""

    PLACED = "order.placed"
    COMPLETED = "order.completed"
    CANCELLED = "order.cancelled"
    PAYMENT = "payment.processed"


SCHEMA_VERSIONS = frozenset({1})


@quick_init
@dataclass(frozen=True)
class Item:
    drink_id: str
    drink_name: str
    size: str
    quantity: int
    unit_price_minor: int


@quick_init
@dataclass(frozen=True)
class Placed:
    items: tuple[Item, ...]
    currency_code: str
    subtotal_minor: int
    total_minor: int


@quick_init
@dataclass(frozen=True)
class Completed:
    total_minor: int
    currency_code: str
    items: tuple[Item, ...] = ()


@quick_init
@dataclass(frozen=True)
class Cancelled:
    reason: str = ""


@quick_init
@dataclass(frozen=True)
class Payment:
    payment_id: str
    amount_minor: int
    currency_code: str
    method: str


Body = Placed | Completed | Cancelled | Payment
BODY_FOR_TOPIC: dict[Topic, type[Body]] = {
    Topic.PLACED: Placed,
    Topic.COMPLETED: Completed,
    Topic.CANCELLED: Cancelled,
    Topic.PAYMENT: Payment,
}


@quick_init
@dataclass(frozen=True)
class OrderEvent:
    event_id: str
    topic: Topic
    occurred_at: datetime
    customer_id: uuid.UUID
    order_id: str
    schema_version: int
    body: Body


@quick_init
@dataclass(frozen=True)
class OrderState:
    """One order as far as its events have told us (a row of order_history)."""

    order_id: str
    customer_id: uuid.UUID
    placed_at: datetime | None = None
    completed_at: datetime | None = None
    cancelled_at: datetime | None = None
    items: tuple[Item, ...] = ()
    currency_code: str = ""
    total_minor: int = 0
    paid_minor: int = 0
    payment_ids: frozenset[str] = frozenset()
    points_earned: int = 0
    cancel_reason: str = ""

    def with_points(self, delta: int) -> OrderState:
        """The order with `delta` more points earned (built directly: hot path)."""
        s = self
        return OrderState(
            s.order_id,
            s.customer_id,
            s.placed_at,
            s.completed_at,
            s.cancelled_at,
            s.items,
            s.currency_code,
            s.total_minor,
            s.paid_minor,
            s.payment_ids,
            s.points_earned + delta,
            s.cancel_reason,
        )

    @property
    def reversal_due(self) -> bool:
        """Completed and cancelled: whatever the completion earned goes back."""
        return self.completed_at is not None and self.cancelled_at is not None


@quick_init
@dataclass(frozen=True)
class Change:
    """What one event changed in its order (nothing, for a repeat of a kind already seen)."""

    event: OrderEvent
    placed: bool = False
    completed: bool = False
    cancelled: bool = False
    paid_minor: int = 0


def apply_event(state: OrderState, event: OrderEvent) -> tuple[OrderState, Change]:
    """The order after `event`, and what the event changed."""
    # States are built field by field: `dataclasses.replace` costs several times
    # more, and this runs once per event on the consumer's hot path.
    s, body = state, event.body
    if isinstance(body, Placed):
        if s.placed_at is not None:
            return s, Change(event)
        new = OrderState(
            s.order_id,
            s.customer_id,
            event.occurred_at,
            s.completed_at,
            s.cancelled_at,
            body.items,
            body.currency_code,
            body.total_minor,
            s.paid_minor,
            s.payment_ids,
            s.points_earned,
            s.cancel_reason,
        )
        return new, Change(event, placed=True)
    if isinstance(body, Completed):
        if s.completed_at is not None:
            return s, Change(event)
        # Until the placement arrives the completion's copy stands in; then the
        # placement's is the order of record.
        early = s.placed_at is None
        new = OrderState(
            s.order_id,
            s.customer_id,
            s.placed_at,
            event.occurred_at,
            s.cancelled_at,
            (body.items or s.items) if early else s.items,
            (body.currency_code or s.currency_code) if early else s.currency_code,
            body.total_minor if early else s.total_minor,
            s.paid_minor,
            s.payment_ids,
            s.points_earned,
            s.cancel_reason,
        )
        return new, Change(event, completed=True)
    if isinstance(body, Cancelled):
        if s.cancelled_at is not None:
            return s, Change(event)
        new = OrderState(
            s.order_id,
            s.customer_id,
            s.placed_at,
            s.completed_at,
            event.occurred_at,
            s.items,
            s.currency_code,
            s.total_minor,
            s.paid_minor,
            s.payment_ids,
            s.points_earned,
            body.reason,
        )
        return new, Change(event, cancelled=True)
    if body.payment_id in s.payment_ids:
        return s, Change(event)
    new = OrderState(
        s.order_id,
        s.customer_id,
        s.placed_at,
        s.completed_at,
        s.cancelled_at,
        s.items,
        s.currency_code or body.currency_code,
        s.total_minor,
        s.paid_minor + body.amount_minor,
        s.payment_ids | {body.payment_id},
        s.points_earned,
        s.cancel_reason,
    )
    return new, Change(event, paid_minor=body.amount_minor)


def hour_of_week(at: datetime) -> int:
    """0 = Monday 00:00 UTC .. 167 = Sunday 23:00 UTC."""
    if at.tzinfo is UTC:
        return at.weekday() * 24 + at.hour
    utc = at.utctimetuple()
    return utc.tm_wday * 24 + utc.tm_hour


@dataclass
class StatsDelta:
    """What a batch adds to one customer's statistics."""

    orders: int = 0
    completed: int = 0
    cancelled: int = 0
    spent_minor: int = 0
    payments: int = 0
    currency_code: str = ""
    first_order_at: datetime | None = None
    last_order_at: datetime | None = None
    # Plain dicts rather than Counters: a batch makes thousands of these.
    drinks: dict[str, int] = field(default_factory=dict)
    drink_names: dict[str, str] = field(default_factory=dict)
    hours: dict[int, int] = field(default_factory=dict)

    def add(self, change: Change, order: OrderState) -> None:
        if change.placed:
            at = change.event.occurred_at
            self.orders += 1
            self.first_order_at = (
                at if self.first_order_at is None else min(self.first_order_at, at)
            )
            self.last_order_at = at if self.last_order_at is None else max(self.last_order_at, at)
            hour = hour_of_week(at)
            self.hours[hour] = self.hours.get(hour, 0) + 1
            for item in order.items:
                self.drinks[item.drink_id] = self.drinks.get(item.drink_id, 0) + item.quantity
                self.drink_names[item.drink_id] = item.drink_name
            self.currency_code = self.currency_code or order.currency_code
        if change.completed:
            self.completed += 1
        if change.cancelled:
            self.cancelled += 1
        if change.paid_minor:
            self.payments += 1
            self.spent_minor += change.paid_minor
            self.currency_code = self.currency_code or order.currency_code


def stats_deltas(changes: Iterable[tuple[Change, OrderState]]) -> dict[uuid.UUID, StatsDelta]:
    """Per customer, the sum of what the changes add (customers with no change are left out).

    `OrderState` is the order after the batch: a placement's drinks are those of
    the placement even when the completion arrived in the same batch first.
    """
    deltas: dict[uuid.UUID, StatsDelta] = {}
    for change, order in changes:
        if not (change.placed or change.completed or change.cancelled or change.paid_minor):
            continue
        delta = deltas.get(order.customer_id)
        if delta is None:
            delta = deltas[order.customer_id] = StatsDelta()
        delta.add(change, order)
    return deltas
