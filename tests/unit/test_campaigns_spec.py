"""Spec checks: every refusal names its field; local times resolve through DST."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer_core.domain.campaign_spec import campaign_from_spec, check_name
from customer_core.errors import InvalidArgument

SPEC: dict[str, Any] = {
    "displayName": "Mornings",
    "window": {
        "start": "2026-03-08T00:00",
        "end": "2026-11-02T00:00",
        "timeZone": "America/New_York",
        "hours": {"start": "07:00", "end": "10:00"},
        "weekdays": ["Mon", "Fri"],
    },
    "effect": {"multiplier": 1.5, "bonusPoints": 10},
    "eligibility": {
        "tiers": ["gold"],
        "drinkIds": ["cold-brew"],
        "drinkCategories": ["tea"],
        "minOrderTotal": {"amountMinor": 500, "currencyCode": "USD"},
        "firstOrderOnly": True,
        "familyMembersOnly": False,
    },
    "budget": {"totalPoints": 1000, "perCustomerPoints": 100},
}


MINIMUM = "spec.eligibility.minOrderTotal"


def parse(spec: dict[str, Any]) -> Any:
    return campaign_from_spec("coffee/mornings", spec, id=uuid.uuid4(), generation=3)


def test_a_full_spec_becomes_a_campaign() -> None:
    c = parse(SPEC)
    # Local midnight in New York: EST on 8 March (before the 02:00 change), EST on 2 Nov.
    assert c.starts_at == datetime(2026, 3, 8, 5, 0, tzinfo=UTC)
    assert c.ends_at == datetime(2026, 11, 2, 5, 0, tzinfo=UTC)
    assert c.hours == (time(7), time(10))
    assert c.weekdays == {0, 4}
    assert c.multiplier == Decimal("1.5") and c.bonus_points == 10
    assert c.tiers == {"gold"} and c.drink_ids == {"cold-brew"} and c.drink_categories == {"tea"}
    assert (c.min_order_total_minor, c.min_order_currency) == (500, "USD")
    assert c.first_order_only and not c.family_members_only
    assert (c.budget_total, c.budget_per_customer, c.generation) == (1000, 100, 3)


def test_offsets_win_over_the_time_zone_and_summer_time_is_respected() -> None:
    spec = copy.deepcopy(SPEC)
    spec["window"].update(start="2026-07-01T00:00", end="2026-07-02T00:00:00Z")
    c = parse(spec)
    assert c.starts_at == datetime(2026, 7, 1, 4, 0, tzinfo=UTC)  # EDT, UTC-4
    assert c.ends_at == datetime(2026, 7, 2, tzinfo=UTC)


def test_a_local_time_skipped_by_dst_still_resolves() -> None:
    spec = copy.deepcopy(SPEC)
    spec["window"].update(start="2026-03-08T02:30", end="2026-03-09T00:00")
    c = parse(spec)  # 02:30 does not exist in New York that night
    assert c.starts_at == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)


def test_yaml_datetimes_are_accepted() -> None:
    spec = copy.deepcopy(SPEC)
    spec["window"]["start"] = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
    assert parse(spec).starts_at == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)


def _break(path: str, value: Any) -> dict[str, Any]:
    spec = copy.deepcopy(SPEC)
    *parents, last = path.split(".")
    node = spec
    for part in parents:
        node = node[part]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return spec


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("displayName", "  ", "spec.displayName"),
        ("displayName", "x" * 201, "spec.displayName"),
        ("window", KeyError, "spec.window"),
        ("window", "soon", "spec.window"),
        ("window.start", KeyError, "spec.window.start"),
        ("window.start", "next tuesday", "spec.window.start"),
        ("window.end", 20260101, "spec.window.end"),
        ("window.end", "2026-03-07T00:00", "spec.window.end"),
        ("window.end", "2026-03-08T05:00:00Z", "spec.window.end"),  # = start, with offset
        ("window.timeZone", "Mars/Olympus", "spec.window.timeZone"),
        ("window.timeZone", "", "spec.window.timeZone"),
        ("window.hours", {"start": "7am", "end": "10:00"}, "spec.window.hours.start"),
        ("window.hours", {"start": "07:00"}, "spec.window.hours.end"),
        ("window.hours", {"start": "07:00", "end": "07:00"}, "spec.window.hours.end"),
        ("window.weekdays", ["Funday"], "spec.window.weekdays"),
        ("window.weekdays", "Mon", "spec.window.weekdays"),
        ("effect", KeyError, "spec.effect"),
        ("effect", {"multiplier": 1}, "spec.effect"),
        ("effect.multiplier", 0.99, "spec.effect.multiplier"),
        ("effect.multiplier", 10.5, "spec.effect.multiplier"),
        ("effect.multiplier", 1.234, "spec.effect.multiplier"),
        ("effect.multiplier", "lots", "spec.effect.multiplier"),
        ("effect.multiplier", True, "spec.effect.multiplier"),
        ("effect.multiplier", float("nan"), "spec.effect.multiplier"),
        ("effect.bonusPoints", -1, "spec.effect.bonusPoints"),
        ("effect.bonusPoints", 2.5, "spec.effect.bonusPoints"),
        ("eligibility.tiers", ["platinum"], "spec.eligibility.tiers"),
        ("eligibility.drinkIds", [""], "spec.eligibility.drinkIds"),
        ("eligibility.drinkCategories", ["soda"], "spec.eligibility.drinkCategories"),
        ("eligibility.minOrderTotal", {"amountMinor": -5}, f"{MINIMUM}.amountMinor"),
        ("eligibility.minOrderTotal.currencyCode", "usd", f"{MINIMUM}.currencyCode"),
        ("eligibility.firstOrderOnly", "yes", "spec.eligibility.firstOrderOnly"),
        ("budget.totalPoints", 0, "spec.budget.totalPoints"),
        ("budget.perCustomerPoints", 1001, "spec.budget.perCustomerPoints"),
        ("paused", 1, "spec.paused"),
    ],
)
def test_each_bad_field_is_named(path: str, value: Any, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse(_break(path, value))
    assert caught.value.field == field


def test_a_spec_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidArgument) as caught:
        campaign_from_spec("a/b", [], id=uuid.uuid4())  # type: ignore[arg-type]
    assert caught.value.field == "spec"


@pytest.mark.parametrize("name", ["", "Upper", "-lead", "trail-", "a" * 64, "under_score"])
def test_names_must_be_dns_labels(name: str) -> None:
    with pytest.raises(InvalidArgument, match=r"metadata\.name"):
        check_name(name)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(
    window=json_values,
    effect=json_values,
    eligibility=json_values,
    budget=json_values,
    paused=json_values,
)
def test_any_json_spec_is_a_campaign_or_a_named_refusal(
    window: Any, effect: Any, eligibility: Any, budget: Any, paused: Any
) -> None:
    spec = {"displayName": "x", "window": window, "effect": effect}
    for name, value in (("eligibility", eligibility), ("budget", budget), ("paused", paused)):
        if value is not None:
            spec[name] = value
    try:
        parse(spec)
    except InvalidArgument as exc:
        assert exc.field.startswith("spec")


def test_a_spec_that_is_a_mapping_but_not_a_dict_is_stored_as_itself() -> None:
    # kopf hands handlers its own read-only Mapping views, not dicts.
    from types import MappingProxyType

    from customer_core.usecases.campaigns import plain_spec

    spec = {
        "displayName": "X",
        "window": {"start": "2026-01-01T00:00"},
        "effect": {"bonusPoints": 5},
    }
    view = MappingProxyType({**spec, "window": MappingProxyType(spec["window"])})
    assert plain_spec(view) == spec
