"""Per-caller limits: a token bucket in Valkey, and a cap on open streams.

The bucket lives in Valkey and one Lua script refills and takes from it
atomically using the server's clock, so every api replica draws from the same
bucket and replicas' clocks do not matter. When Valkey cannot be reached the
limiter lets calls through (and counts it): the hot path must not fail because
the limiter's store is down.

A replica takes a caller's tokens a lease at a time (`Leases`): up to
`LEASE_SECONDS` of the caller's rate, at most a third of its burst, spent
locally until the lease is used up or its time is over. A fast caller (the
Order Service, 2,000 calls/s by default) then costs one Valkey round trip per
100 calls instead of one per call, and every cached read on the hot path is
served without any. Nothing is admitted that the shared bucket did not give
out, so all replicas together never exceed the limit; a lease a replica
leaves unspent is lost, which only ever admits less. A slow caller's lease is
one token: every call asks Valkey, as before.

The open-streams cap is per replica (in memory): a crashed replica's streams
vanish with it, so nothing can leak.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis.asyncio as redis
from prometheus_client import Counter
from redis.exceptions import RedisError

from customer_api.security.settings import SecuritySettings
from customer_api.security.tokens import ORDER_SERVICE, Principal
from customer_core.errors import LimitExceeded

log = logging.getLogger(__name__)

LIMITER_ERRORS = Counter(
    "customer_rate_limiter_errors", "Rate-limit checks let through because Valkey failed."
)
LIMITER_DECISIONS = Counter(
    "customer_rate_limiter_decisions",
    "Rate-limit decisions, by where they were made: 'lease' (this replica's leased "
    "tokens, no round trip) or 'valkey' (the shared bucket).",
    ["where"],
)
_BY_LEASE = LIMITER_DECISIONS.labels("lease")
_BY_VALKEY = LIMITER_DECISIONS.labels("valkey")

# How much of a caller's rate one replica leases at a time. Short, so that an
# unspent lease strands little and a lease spent late adds little to a burst.
LEASE_SECONDS = 0.05
_ASK_AGAIN = -1

# KEYS[1] = the caller's bucket; ARGV = rate per second, burst, tokens wanted.
# Returns {tokens granted, 0} when at least one was (as many as wanted and
# there are), {0, ms until one is available} otherwise.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
local granted = math.min(want, math.floor(tokens))
local retry = 0
if granted >= 1 then
  tokens = tokens - granted
else
  granted = 0
  retry = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {granted, retry}
"""


def lease_size(rate: float, burst: int, lease_seconds: float) -> int:
    """Tokens a replica takes at once: `lease_seconds` of the rate, at most a third of
    the burst (so a few replicas' leases cannot hold the whole burst), at least one."""
    return max(1, min(burst // 3, math.ceil(rate * lease_seconds)))


class Leases:
    """Tokens this replica holds per caller, each lot until its time is over."""

    def __init__(self, clock: Callable[[], float], limit: int = 10_000) -> None:
        self._clock = clock
        self._limit = limit
        self._held: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def take(self, key: str) -> bool:
        """One of the caller's leased tokens, if it has one still in time."""
        held = self._held.get(key)
        if held is None:
            return False
        tokens, until = held
        if tokens < 1 or self._clock() >= until:
            del self._held[key]
            return False
        self._held[key] = (tokens - 1, until)
        return True

    def keep(self, key: str, tokens: int, seconds: float) -> None:
        """Hold `tokens` for the caller for `seconds` (what it held before is dropped)."""
        if tokens < 1:
            self._held.pop(key, None)
            return
        self._held[key] = (tokens, self._clock() + seconds)
        self._held.move_to_end(key)
        if len(self._held) > self._limit:
            self._held.popitem(last=False)


class RateLimiter:
    def __init__(
        self,
        client: redis.Redis,
        settings: SecuritySettings,
        *,
        lease_seconds: float = LEASE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not lease_seconds > 0:
            raise ValueError(f"lease_seconds must be above 0, not {lease_seconds}")
        self._take = client.register_script(_TAKE)
        self._settings = settings
        self._lease_seconds = lease_seconds
        self._leases = Leases(clock)
        # One round trip per caller at a time: calls arriving meanwhile wait for
        # its lease instead of each leasing (and stranding) one of their own.
        self._asking: dict[str, asyncio.Future[int | None]] = {}

    def _limits(self, principal: Principal) -> tuple[float, int]:
        s = self._settings
        if principal.kind == ORDER_SERVICE:
            rate = s.order_service_rate_per_second
            return rate, max(1, int(rate * 2))
        return s.rate_per_second, s.rate_burst

    async def retry_after_ms(self, principal: Principal) -> int | None:
        """None when the call may go ahead; otherwise how long to wait, in ms."""
        rate, burst = self._limits(principal)
        if rate <= 0:
            return None
        key, want = principal.key, lease_size(rate, burst, self._lease_seconds)
        if want == 1:  # nothing to share: calls ask side by side, as they arrive
            return await self._ask(key, rate, burst, want)
        while True:
            if self._leases.take(key):
                _BY_LEASE.inc()
                return None
            asking = self._asking.get(key)
            if asking is None:
                break
            retry = await asyncio.shield(asking)
            if retry is not None and retry != _ASK_AGAIN:
                return retry  # the bucket is empty; else look in the new lease
        done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._asking[key] = done
        try:
            retry = await self._ask(key, rate, burst, want)
        except BaseException:
            done.set_result(_ASK_AGAIN)  # cancelled: whoever waited asks for itself
            raise
        finally:
            del self._asking[key]
        done.set_result(retry)
        return retry

    async def _ask(self, key: str, rate: float, burst: int, want: int) -> int | None:
        _BY_VALKEY.inc()
        try:
            granted, retry = await self._take(keys=[f"cs:rl:{{{key}}}"], args=[rate, burst, want])
        except RedisError as exc:
            LIMITER_ERRORS.inc()
            log.warning(
                "rate limiter unavailable; letting the call through", extra={"error": str(exc)}
            )
            return None
        if int(granted) < 1:
            return max(1, int(retry))
        self._leases.keep(key, int(granted) - 1, self._lease_seconds)
        return None


class StreamSlots:
    """How many streams each caller has open on this replica."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._open: defaultdict[str, int] = defaultdict(int)

    def open_count(self, principal: Principal) -> int:
        return self._open.get(principal.key, 0)

    @contextmanager
    def hold(self, principal: Principal) -> Iterator[None]:
        key = principal.key
        if self._open[key] >= self._limit:
            raise LimitExceeded(f"at most {self._limit} open streams per caller")
        self._open[key] += 1
        try:
            yield
        finally:
            self._open[key] -= 1
            if not self._open[key]:
                del self._open[key]


class PeerFailures:
    """Failed authentications per peer address, on this replica: a token bucket
    (rate per second, burst twice that) that only failures draw from. While a
    peer's is empty, its calls that would need a token check are refused
    before the check, so forged tokens buy no signature checks or key fetches.
    A caller whose token was verified before is never held back by it."""

    def __init__(self, rate: float, max_peers: int = 10_000) -> None:
        self._rate = rate
        self._burst = max(1.0, rate * 2)
        self._max = max_peers
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @staticmethod
    def _host(peer: str) -> str:
        return peer.rsplit(":", 1)[0]  # ipv4:1.2.3.4:port, ipv6:[::1]:port

    def _tokens(self, host: str, now: float) -> float:
        tokens, at = self._buckets.get(host, (self._burst, now))
        return min(self._burst, tokens + (now - at) * self._rate)

    def retry_after_ms(self, peer: str) -> int | None:
        if self._rate <= 0:
            return None
        tokens = self._tokens(self._host(peer), time.monotonic())
        return None if tokens >= 1 else max(1, int((1 - tokens) * 1000 / self._rate) + 1)

    def charge(self, peer: str) -> None:
        if self._rate <= 0:
            return
        host, now = self._host(peer), time.monotonic()
        self._buckets[host] = (self._tokens(host, now) - 1, now)
        self._buckets.move_to_end(host)
        if len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
