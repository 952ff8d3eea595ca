"""Per-caller limits: a token bucket in Valkey, and a cap on open streams.

The bucket lives in Valkey and one Lua script refills and takes from it
atomically using the server's clock, so every api replica draws from the same
bucket and replicas' clocks do not matter. When Valkey cannot be reached the
limiter lets calls through (and counts it): the hot path must not fail because
the limiter's store is down.

The open-streams cap is per replica (in memory): a crashed replica's streams
vanish with it, so nothing can leak.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, defaultdict
from collections.abc import Iterator
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

# KEYS[1] = the caller's bucket; ARGV = rate per second, burst.
# Returns {1, 0} when a token was taken, {0, ms until one is available} otherwise.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
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
local allowed = 0
local retry = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {allowed, retry}
"""


class RateLimiter:
    def __init__(self, client: redis.Redis, settings: SecuritySettings) -> None:
        self._take = client.register_script(_TAKE)
        self._settings = settings

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
        try:
            allowed, retry = await self._take(
                keys=[f"cs:rl:{{{principal.key}}}"], args=[rate, burst]
            )
        except RedisError as exc:
            LIMITER_ERRORS.inc()
            log.warning(
                "rate limiter unavailable; letting the call through", extra={"error": str(exc)}
            )
            return None
        return None if int(allowed) == 1 else max(1, int(retry))


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
