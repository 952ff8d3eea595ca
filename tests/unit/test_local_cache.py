"""The in-process cache's bookkeeping: bounds, LRU order, and no value older than an eviction."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from customer_core import local_cache
from customer_core.local_cache import LocalCache

C = [uuid.UUID(int=i) for i in range(4)]
KINDS = ["customer", "order_context"]


def bypassed() -> float:
    """What /metrics says of the customer cache's bypasses."""
    value = REGISTRY.get_sample_value(
        "customer_local_cache_requests_total", {"cache": "customer", "result": "bypass"}
    )
    return value or 0.0


def tracking(entries: int = 100, size: int = 1 << 20, ttl: float = 300) -> LocalCache:
    cache = LocalCache(entries, size, ttl)
    cache.reset(tracking=True)
    return cache


def test_nothing_is_served_or_stored_while_tracking_is_down() -> None:
    cache = tracking()
    cache.put("customer", C[0], b"v", cache.mark())
    cache.reset(tracking=False)
    before = bypassed()
    assert cache.get("customer", C[0]) is None
    cache.put("customer", C[0], b"v", cache.mark())
    assert len(cache) == 0 and bypassed() == before + 1


def test_the_least_recently_used_entry_goes_first() -> None:
    cache = tracking(entries=2)
    for i in range(2):
        cache.put("customer", C[i], b"v", cache.mark())
    assert cache.get("customer", C[0]) == b"v"  # C[1] is now the oldest
    cache.put("customer", C[2], b"v", cache.mark())
    assert cache.get("customer", C[1]) is None
    assert cache.get("customer", C[0]) == cache.get("customer", C[2]) == b"v"


def test_bytes_are_bounded_and_an_oversized_value_is_not_kept() -> None:
    cache = tracking(size=10)
    cache.put("customer", C[0], b"123456", cache.mark())
    cache.put("customer", C[1], b"123456", cache.mark())
    assert cache.get("customer", C[0]) is None and cache.get("customer", C[1]) == b"123456"
    cache.put("customer", C[2], b"x" * 11, cache.mark())
    assert cache.get("customer", C[2]) is None and len(cache) == 1


def test_an_entry_lives_no_longer_than_the_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(local_cache.time, "monotonic", lambda: now[0])
    cache = tracking(ttl=300)
    cache.put("customer", C[0], b"v", cache.mark())
    now[0] += 299
    assert cache.get("customer", C[0]) == b"v"
    now[0] += 1
    assert cache.get("customer", C[0]) is None and len(cache) == 0


def test_invalidation_evicts_every_kind_of_that_customer_only() -> None:
    cache = tracking()
    for kind in KINDS:
        for c in C[:2]:
            cache.put(kind, c, b"v", cache.mark())
    cache.invalidate(C[0])
    assert [cache.get(k, C[0]) for k in KINDS] == [None, None]
    assert [cache.get(k, C[1]) for k in KINDS] == [b"v", b"v"]


# Few customers and kinds, so the same entry is read, evicted and stored again often.
FEW = st.sampled_from(C[:2])
MARK = st.tuples(st.just("mark"), st.sampled_from(KINDS), FEW)
PUT = st.tuples(st.just("put"), st.integers(0, 20), st.binary(max_size=8))
GET = st.tuples(st.just("get"), st.sampled_from(KINDS), FEW)
INVALIDATE = st.tuples(st.just("invalidate"), FEW)
RESET = st.tuples(st.just("reset"), st.sampled_from([True, True, True, False]))
# Weighted towards reads and stores, so evictions land between a mark and its put.
ops = st.lists(
    st.one_of(MARK, MARK, PUT, PUT, GET, GET, GET, INVALIDATE, RESET), min_size=10, max_size=80
)


@settings(max_examples=300)
# A read that began before its customer's eviction, stored after it: refused
# while the eviction is remembered, and after it was forgotten (the floor).
@example(
    [("mark", "customer", C[0]), ("invalidate", C[0]), ("put", 0, b""), ("get", "customer", C[0])],
    5,
    24,
    1,
)
@example(
    [
        ("mark", "customer", C[0]),
        ("invalidate", C[0]),
        ("invalidate", C[1]),
        ("put", 0, b""),
        ("get", "customer", C[0]),
    ],
    5,
    24,
    1,
)
@given(ops, st.integers(1, 5), st.integers(12, 40), st.integers(1, 2))
def test_no_value_read_before_an_eviction_is_served_after_it(
    steps: list[tuple[object, ...]], entries: int, size: int, remembered: int
) -> None:
    cache = tracking(entries, size)
    cache._remembered = remembered  # small, so forgotten invalidations are exercised
    # The step at which each look-up began, and the last eviction of each customer.
    evicted: dict[uuid.UUID, int] = {}
    reset_at = 0
    pending: list[tuple[str, uuid.UUID, int, int]] = []  # kind, customer, mark, began
    served = 0
    for clock, step in enumerate(steps, start=1):
        match step:
            case ("mark", kind, c):
                assert isinstance(kind, str) and isinstance(c, uuid.UUID)
                pending.append((kind, c, cache.mark(), clock))
            case ("put", i, value) if pending:
                assert isinstance(i, int) and isinstance(value, bytes)
                kind, c, mark, began = pending.pop(i % len(pending))
                # The value carries when its read began.
                cache.put(kind, c, began.to_bytes(4, "big") + value, mark)
            case ("get", kind, c):
                assert isinstance(kind, str) and isinstance(c, uuid.UUID)
                got = cache.get(kind, c)
                if got is not None:
                    served += 1
                    began = int.from_bytes(got[:4], "big")
                    assert began > evicted.get(c, 0) and began > reset_at
                    assert cache.tracking
            case ("invalidate", c):
                assert isinstance(c, uuid.UUID)
                cache.invalidate(c)
                evicted[c] = clock
            case ("reset", on):
                assert isinstance(on, bool)
                cache.reset(tracking=on)
                reset_at = clock
        assert len(cache) <= entries and cache._bytes <= size
    event("served from memory" if served else "nothing served")
