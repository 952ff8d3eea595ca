"""inline_init: the hot-path constructor behaves exactly as the dataclass's own."""

from __future__ import annotations

import dataclasses
import pickle
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer_core.db.order_points import EarnedEntry
from customer_core.db.orders import Member
from customer_core.domain.loyalty import LedgerEntry, PostedEntry
from customer_core.domain.orders import (
    Cancelled,
    Change,
    Completed,
    Item,
    OrderEvent,
    OrderState,
    Payment,
    Placed,
)
from customer_core.domain.values import inline_init
from customer_core.notices import Activity, Notice
from customer_core.usecases.events import Incoming

# Built several times per event by the consumer.
HOT_TYPES = (Item, Placed, Completed, Cancelled, Payment, OrderEvent, OrderState, Change,
             Activity, Notice, Incoming, LedgerEntry, PostedEntry, Member, EarnedEntry)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Plain:
    a: str
    b: int = 3
    c: tuple[int, ...] = ()
    d: list[int] = dataclasses.field(default_factory=list)


@inline_init
@dataclasses.dataclass(frozen=True)
class Fast:
    a: str
    b: int = 3
    c: tuple[int, ...] = ()
    d: list[int] = dataclasses.field(default_factory=list)


def _as_plain(value: object) -> dict[str, object]:
    return dict(vars(value))


@given(st.text(), st.integers(), st.lists(st.integers()).map(tuple))
def test_positional_keyword_and_default_arguments_fill_the_same_fields(
    a: str, b: int, c: tuple[int, ...]
) -> None:
    assert _as_plain(Fast(a, b, c)) == _as_plain(Plain(a, b, c))
    assert _as_plain(Fast(a=a, c=c)) == _as_plain(Plain(a=a, c=c))
    assert _as_plain(Fast(a)) == _as_plain(Plain(a))


def test_a_default_factory_runs_once_per_instance() -> None:
    first, second = Fast("x"), Fast("y")
    assert first.d == [] and second.d == []
    assert first.d is not second.d
    given_list = [1]
    assert Fast("x", d=given_list).d is given_list


def test_missing_or_unknown_arguments_fail_as_a_dataclass_would() -> None:
    with pytest.raises(TypeError, match="'a'"):
        Fast()
    with pytest.raises(TypeError, match="'e'"):
        Fast("x", e=1)
    with pytest.raises(TypeError):
        Fast("x", 1, (), [], 5)


def test_a_subclass_keeps_its_parents_fields_and_defaults() -> None:
    account = uuid.UUID(int=3)
    entry = LedgerEntry(account, None, "earn", 10, "order o", "order", idempotency_key="k")
    posted = PostedEntry(account, None, "earn", 10, "order o", "order", idempotency_key="k", id=7)
    assert posted.source_ref is None and posted.campaign == "" and posted.id == 7
    assert {k: v for k, v in vars(posted).items() if k in vars(entry)} == vars(entry)


def test_values_stay_frozen_equal_hashable_and_replaceable() -> None:
    state = OrderState("ord-1", uuid.UUID(int=7), total_minor=450)
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.total_minor = 1  # type: ignore[misc]
    same = OrderState("ord-1", state.customer_id, total_minor=450)
    assert state == same and hash(state) == hash(same)
    assert dataclasses.replace(state, paid_minor=450).paid_minor == 450
    assert pickle.loads(pickle.dumps(state)) == state
    assert repr(Item("latte", "Latte", "M", 1, 450)).startswith("Item(drink_id='latte'")


def test_the_hot_path_types_use_it_and_keep_their_defaults() -> None:
    activity = Activity("order_placed", uuid.UUID(int=1))
    assert activity.occurred_at.tzinfo is UTC
    assert (datetime.now(UTC) - activity.occurred_at).total_seconds() < 60
    for cls in HOT_TYPES:
        assert "__d" in cls.__init__.__code__.co_varnames, cls
        assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"


@pytest.mark.parametrize(
    ("kwargs", "extra", "message"),
    [
        ({"frozen": False}, {}, "not a frozen dataclass"),
        ({"frozen": True}, {"__post_init__": lambda self: None}, "__post_init__"),
        ({"frozen": True, "slots": True}, {}, "slots"),
    ],
)
def test_classes_it_cannot_speed_up_safely_are_refused(
    kwargs: dict[str, bool], extra: dict[str, object], message: str
) -> None:
    cls = dataclasses.make_dataclass("Odd", [("a", int)], namespace=extra, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=message):
        inline_init(cls)


def test_fields_outside_init_are_refused() -> None:
    cls = dataclasses.make_dataclass(
        "Odd", [("a", int), ("b", int, dataclasses.field(default=0, init=False))], frozen=True
    )
    with pytest.raises(TypeError, match="init=False"):
        inline_init(cls)
    kw = dataclasses.make_dataclass(
        "Kw", [("a", int, dataclasses.field(kw_only=True))], frozen=True
    )
    with pytest.raises(TypeError, match="keyword-only"):
        inline_init(kw)
