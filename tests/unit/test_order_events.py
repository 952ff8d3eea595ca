"""How one order's events combine: the same state and effects in every arrival order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from customer_core.domain.order_events import (
    Cancelled,
    Completed,
    Item,
    OrderEvent,
    OrderState,
    Payment,
    Placed,
    Topic,
    apply_event,
    hour_of_week,
    stats_deltas,
)

CID = uuid.UUID("00000000-0000-4000-8000-000000000001")
AT = datetime(2025, 6, 2, 7, 45, tzinfo=UTC)  # a Monday
PLACED_ITEMS = (Item("latte", "Latte", "large", 2, 500),)
COMPLETED_ITEMS = (Item("mocha", "Mocha", "small", 1, 400),)


def ev(topic: Topic, minutes: int, body: object, eid: str | None = None) -> OrderEvent:
    return OrderEvent(
        eid or f"{topic}-{minutes}", topic, AT + timedelta(minutes=minutes), CID, "o-1", 1, body
    )  # type: ignore[arg-type]


EVENTS = [
    ev(Topic.PLACED, 0, Placed(PLACED_ITEMS, "USD", 1000, 1000)),
    ev(Topic.PAYMENT, 1, Payment("p-1", 1000, "USD", "card")),
    ev(Topic.PAYMENT, 2, Payment("p-2", 150, "USD", "card")),
    ev(Topic.COMPLETED, 5, Completed(1150, "USD", COMPLETED_ITEMS)),
    ev(Topic.CANCELLED, 9, Cancelled("spilled")),
]


def fold(events: list[OrderEvent]) -> tuple[OrderState, list]:
    state = OrderState("o-1", CID)
    changes = []
    for e in events:
        state, change = apply_event(state, e)
        changes.append(change)
    return state, changes


def totals(events: list[OrderEvent]) -> tuple:
    state, changes = fold(events)
    d = stats_deltas((c, state) for c in changes)[CID]
    return (
        state,
        d.orders,
        d.completed,
        d.cancelled,
        d.payments,
        d.spent_minor,
        dict(d.drinks),
        dict(d.hours),
        d.first_order_at,
    )


@given(st.permutations(EVENTS), st.lists(st.sampled_from(EVENTS), max_size=6))
def test_every_arrival_order_and_any_repeats_end_the_same(order, repeats):
    assert totals(list(order) + repeats) == totals(EVENTS)


def test_the_placements_items_win_even_when_the_completion_came_first():
    state, _ = fold([EVENTS[3], EVENTS[0]])
    assert state.items == PLACED_ITEMS
    assert state.total_minor == 1000
    alone, _ = fold([EVENTS[3]])
    assert alone.items == COMPLETED_ITEMS  # until the placement arrives
    assert alone.total_minor == 1150


def test_reversal_is_due_only_when_completed_and_cancelled():
    assert not fold(EVENTS[:4])[0].reversal_due
    assert fold(EVENTS)[0].reversal_due
    assert not fold([EVENTS[0], EVENTS[4]])[0].reversal_due


def test_a_payment_resent_under_a_new_event_id_counts_once():
    again = ev(Topic.PAYMENT, 7, Payment("p-1", 1000, "USD", "card"), eid="retry")
    state, changes = fold([EVENTS[1], again])
    assert state.paid_minor == 1000
    assert [c.paid_minor for c in changes] == [1000, 0]


def test_stats_count_drinks_by_quantity_and_the_hour_of_week():
    d = stats_deltas([(fold(EVENTS[:1])[1][0], fold(EVENTS[:1])[0])])[CID]
    assert d.drinks == {"latte": 2}
    assert d.hours == {7: 1}  # Monday 07:00 UTC


def test_hour_of_week_spans_monday_to_sunday_in_utc():
    assert hour_of_week(datetime(2025, 6, 2, 0, tzinfo=UTC)) == 0
    assert hour_of_week(datetime(2025, 6, 8, 23, 59, tzinfo=UTC)) == 167
    assert hour_of_week(datetime(2025, 6, 9, 3, tzinfo=UTC).astimezone()) == 3
