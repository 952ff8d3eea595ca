"""How many tokens a replica leases from a caller's shared bucket at once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from customer_api.security.ratelimit import Leases, lease_size


@given(
    st.floats(0.001, 1_000_000),
    st.integers(1, 10_000_000),
    st.floats(0.001, 10),
)
def test_a_lease_is_at_least_one_token_and_at_most_a_third_of_the_burst(
    rate: float, burst: int, seconds: float
) -> None:
    n = lease_size(rate, burst, seconds)
    assert 1 <= n <= max(1, burst // 3)
    assert n <= max(1, -(-rate * seconds // 1))


def test_the_order_services_default_rate_leases_a_hundred_tokens() -> None:
    assert lease_size(2000, 4000, 0.05) == 100


def test_leased_tokens_are_spent_once_and_not_after_their_time() -> None:
    now = [0.0]
    leases = Leases(lambda: now[0])
    leases.keep("a", 2, 1.0)
    assert [leases.take("a"), leases.take("a"), leases.take("a")] == [True, True, False]
    leases.keep("a", 5, 1.0)
    now[0] = 1.0
    assert not leases.take("a")
    assert not leases.take("b")


def test_the_callers_held_are_bounded() -> None:
    leases = Leases(lambda: 0.0, limit=2)
    for key in "abc":
        leases.keep(key, 3, 1.0)
    assert not leases.take("a")  # the oldest was dropped
    assert leases.take("b") and leases.take("c")
