"""The rate limiter on the hot path: a replica takes tokens from the shared Valkey
bucket a lease at a time, so a fast caller's calls do not each cost a round trip,
and every replica together still admits no more than the one bucket holds."""

from __future__ import annotations

import asyncio

import pytest

from customer_api.security.ratelimit import RateLimiter
from customer_api.security.settings import SecuritySettings
from customer_api.security.tokens import OPERATOR, ORDER_SERVICE, Principal
from customer_core.config import Settings
from customer_core.context import Context

ORDERS = Principal(ORDER_SERVICE, "order-service")  # rate: order_service_rate_per_second
OPS = Principal(OPERATOR, "ops")  # rate: rate_per_second, burst: rate_burst


async def script_calls(ctx: Context) -> int:
    """How many scripts Valkey has run (the limiter's take is one per round trip)."""
    stats = await ctx.valkey.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("evalsha", "eval"))


def limits(rate: float, burst: int) -> SecuritySettings:
    return SecuritySettings(
        tls=None,
        auth_mode="jwt",
        rate_per_second=rate,
        rate_burst=burst,
        order_service_rate_per_second=rate,
    )


async def test_a_fast_caller_reaches_valkey_once_per_lease_not_once_per_call(ctx: Context) -> None:
    # 2,000/s (the Order Service's default): a lease is 50 ms of it, 100 tokens.
    limiter = RateLimiter(ctx.valkey, limits(2000, 200), lease_seconds=0.05)
    before = await script_calls(ctx)
    refused = [await limiter.retry_after_ms(ORDERS) for _ in range(300)]
    scripts = await script_calls(ctx) - before
    assert refused == [None] * 300
    # Three leases, or one more if one ran out of time on a slow machine.
    assert 3 <= scripts <= 4, scripts


async def test_concurrent_calls_on_an_empty_lease_share_one_round_trip(ctx: Context) -> None:
    limiter = RateLimiter(ctx.valkey, limits(2000, 200), lease_seconds=0.05)
    before = await script_calls(ctx)
    refused = await asyncio.gather(*(limiter.retry_after_ms(ORDERS) for _ in range(80)))
    assert list(refused) == [None] * 80
    assert await script_calls(ctx) - before == 1


async def test_two_replicas_with_leases_admit_no_more_than_the_shared_bucket(
    ctx: Context, settings: Settings
) -> None:
    # No refill to speak of (one token per 1000 s): only the burst of 12 is there.
    # Leases of 4 (a lease never exceeds a third of the burst).
    security = limits(0.001, 12)
    other = await Context.create(settings)
    try:
        a = RateLimiter(ctx.valkey, security, lease_seconds=1e6)
        b = RateLimiter(other.valkey, security, lease_seconds=1e6)
        calls = [r.retry_after_ms(OPS) for _ in range(20) for r in (a, b)]
        answers = await asyncio.gather(*calls)
    finally:
        await other.aclose()
    assert answers.count(None) == 12
    refusals = [ms for ms in answers if ms is not None]
    assert all(ms > 0 for ms in refusals)


async def test_a_lease_left_unspent_expires(ctx: Context) -> None:
    now = [100.0]
    limiter = RateLimiter(ctx.valkey, limits(2000, 200), lease_seconds=0.05, clock=lambda: now[0])
    assert await limiter.retry_after_ms(ORDERS) is None
    before = await script_calls(ctx)
    assert await limiter.retry_after_ms(ORDERS) is None  # from the lease
    assert await script_calls(ctx) == before
    now[0] += 0.06  # the lease is over: its tokens are not spent later in a burst
    assert await limiter.retry_after_ms(ORDERS) is None
    assert await script_calls(ctx) == before + 1


async def test_a_slow_caller_takes_one_token_at_a_time(ctx: Context) -> None:
    # 0.001/s with a burst of 1: a lease could only be one token, so every call asks.
    limiter = RateLimiter(ctx.valkey, limits(0.001, 1), lease_seconds=0.05)
    assert await limiter.retry_after_ms(OPS) is None
    retry = await limiter.retry_after_ms(OPS)
    assert retry is not None and retry > 0


@pytest.mark.parametrize("lease_seconds", [0.0, -1.0])
def test_a_lease_of_no_time_is_refused(ctx: Context, lease_seconds: float) -> None:
    with pytest.raises(ValueError, match="lease_seconds"):
        RateLimiter(ctx.valkey, limits(1, 1), lease_seconds=lease_seconds)


async def test_calls_waiting_on_a_cancelled_round_trip_still_get_an_answer(ctx: Context) -> None:
    limiter = RateLimiter(ctx.valkey, limits(2000, 200), lease_seconds=0.05)
    # Valkey holds back scripts for 300 ms: the first call's round trip is in flight
    # when it is cancelled (its caller gave up), with others waiting on it.
    await ctx.valkey.execute_command("CLIENT", "PAUSE", "300", "WRITE")
    first = asyncio.create_task(limiter.retry_after_ms(ORDERS))
    await asyncio.sleep(0.05)
    waiting = [asyncio.create_task(limiter.retry_after_ms(ORDERS)) for _ in range(5)]
    await asyncio.sleep(0.05)
    assert not first.done()
    first.cancel()
    answers = await asyncio.wait_for(asyncio.gather(*waiting), 5)
    assert list(answers) == [None] * 5
