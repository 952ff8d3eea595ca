"""quick_init builds exactly what the dataclass's own __init__ builds, and stays frozen."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import customer_core.db.order_points  # (each module below uses quick_init)
import customer_core.domain.loyalty
import customer_core.domain.order_events
import customer_core.notices
import customer_core.usecases.events
from customer_core.domain.values import ORIGINAL_INIT, quick_init

CLASSES = sorted(ORIGINAL_INIT, key=lambda c: c.__qualname__)


def test_the_hot_path_classes_are_built_quickly() -> None:
    names = {c.__name__ for c in CLASSES}
    assert {"OrderEvent", "OrderState", "Change", "Item", "Incoming", "Activity"} <= names


def _build_both(cls: type[Any], given_fields: int, keywords: bool) -> tuple[Any, Any, set[str]]:
    """The instance built both ways from the same fresh objects, and the fields given."""
    fields = dataclasses.fields(cls)
    required = sum(
        f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        for f in fields
    )
    n = max(required, min(given_fields, len(fields)))
    values = [object() for _ in range(n)]
    args: tuple[Any, ...] = () if keywords else tuple(values)
    kwargs = {f.name: v for f, v in zip(fields, values, strict=False)} if keywords else {}
    quick = cls(*args, **kwargs)
    slow = object.__new__(cls)
    ORIGINAL_INIT[cls](slow, *args, **kwargs)
    return quick, slow, {f.name for f in fields[:n]}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__qualname__)
@given(given_fields=st.integers(0, 20), keywords=st.booleans())
def test_quick_init_gives_what_the_dataclass_init_gives(
    cls: type[Any], given_fields: int, keywords: bool
) -> None:
    quick, slow, given_names = _build_both(cls, given_fields, keywords)
    assert list(quick.__dict__) == list(slow.__dict__)
    fresh = False
    for f in dataclasses.fields(cls):
        if f.name in given_names or f.default_factory is dataclasses.MISSING:
            assert quick.__dict__[f.name] is slow.__dict__[f.name], f.name
        else:  # a factory's fresh value (Activity.occurred_at reads the clock)
            fresh = True
            assert type(quick.__dict__[f.name]) is type(slow.__dict__[f.name]), f.name
    if not fresh:
        assert quick == slow and hash(quick) == hash(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(quick, dataclasses.fields(cls)[0].name, None)


def test_missing_and_unknown_arguments_fail_as_before() -> None:
    state_cls = customer_core.domain.order_events.OrderState
    with pytest.raises(TypeError):
        state_cls("only the order id")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        state_cls("o", None, nonsense=1)  # type: ignore[call-arg, arg-type]


def test_a_default_factory_makes_a_new_value_each_time() -> None:
    @quick_init
    @dataclass(frozen=True)
    class Bag:
        name: str
        things: list[int] = field(default_factory=list)

    a, b = Bag("a"), Bag("a")
    assert a.things == [] and a.things is not b.things
    assert a == b and Bag("a", [1]) != a


def test_what_it_cannot_reproduce_is_refused() -> None:
    @dataclass(frozen=True)
    class WithPostInit:
        x: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True, slots=True)
    class Slotted:
        x: int

    @dataclass(frozen=True)
    class KeywordOnly:
        x: int = field(kw_only=True)

    for cls in (WithPostInit, Slotted, KeywordOnly):
        with pytest.raises(TypeError):
            quick_init(cls)
