"""Cache-aside on Valkey with generation keys, so a write is never followed by a stale read.

Each customer has a generation counter; every write that touches the customer
(profile, favorites, points) bumps it after its transaction commits. A cached
value is stored under a key that embeds the generation seen *before* the
database read, so a reader racing a writer can only store its (possibly old)
value under a generation nobody will ask for again. One script reads the
generation and the value in a single round trip.

The cache is an optimisation: when Valkey fails, reads fall through to the
database and the failure is counted, never raised.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import redis.asyncio as redis
from redis.exceptions import RedisError

from customer_core.telemetry import CACHE_REQUESTS

log = logging.getLogger(__name__)

GLOBAL_GEN = "cs:gen:global"

# KEYS[1] = customer generation, KEYS[2] = global generation, ARGV[1] = key prefix.
# Returns {versioned key, value or false}.
_LOOKUP = """
local g = redis.call('GET', KEYS[1]) or '0'
local gg = redis.call('GET', KEYS[2]) or '0'
local key = ARGV[1] .. g .. '.' .. gg
return {key, redis.call('GET', key)}
"""


# The same for every look-up that arrives in one event-loop turn: one round
# trip serves them all (at load, the client's per-command cost dominated a
# cached call). KEYS[1] = global generation, KEYS[i + 1] = customer
# generations, ARGV[i] = key prefixes; returns {key, value or false, ...}.
_LOOKUP_MANY = """
local gg = redis.call('GET', KEYS[1]) or '0'
local out = {}
for i = 2, #KEYS do
    local key = ARGV[i - 1] .. (redis.call('GET', KEYS[i]) or '0') .. '.' .. gg
    out[#out + 1] = key
    out[#out + 1] = redis.call('GET', key)
end
return out
"""

_Pending = tuple[str, str, "asyncio.Future[tuple[Any, Any]]"]
# Round trips in flight at once; look-ups arriving meanwhile wait for the next.
_MAX_IN_FLIGHT = 2


def _gen_key(customer_id: UUID) -> str:
    # The hash tag keeps a customer's keys in one slot on a Valkey cluster.
    return f"cs:{{{customer_id}}}:gen"


@dataclass(frozen=True)
class Slot:
    """Where a value read from the database may be stored (None: do not store)."""

    key: str | None


class Cache:
    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._lookup = client.register_script(_LOOKUP)
        self._lookup_many = client.register_script(_LOOKUP_MANY)
        self._batch: list[_Pending] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def get(self, kind: str, customer_id: UUID) -> tuple[bytes | None, Slot]:
        """The cached value of `kind` for the customer, and the slot to fill on a miss."""
        prefix = f"cs:{{{customer_id}}}:{kind}:"
        try:
            key, value = await self._enqueue(_gen_key(customer_id), prefix)
        except RedisError as exc:
            CACHE_REQUESTS.labels(kind, "error").inc()
            log.warning("cache lookup failed", extra={"cache": kind, "error": str(exc)})
            return None, Slot(None)
        CACHE_REQUESTS.labels(kind, "hit" if value is not None else "miss").inc()
        return value, Slot(key.decode() if isinstance(key, bytes) else str(key))

    def _enqueue(self, gen_key: str, prefix: str) -> asyncio.Future[tuple[Any, Any]]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[Any, Any]] = loop.create_future()
        self._batch.append((gen_key, prefix, future))
        if len(self._batch) == 1 and len(self._sending) < _MAX_IN_FLIGHT:
            loop.call_soon(self._send_batch)
        return future

    def _send_batch(self) -> None:
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        task = asyncio.ensure_future(self._look_up(batch))
        self._sending.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        # Look-ups that queued while the round trips were busy go out together now.
        self._sending.discard(task)
        self._send_batch()

    async def _look_up(self, batch: list[_Pending]) -> None:
        keys = [GLOBAL_GEN, *(gen_key for gen_key, _, _ in batch)]
        try:
            flat = await self._lookup_many(keys=keys, args=[prefix for _, prefix, _ in batch])
        except Exception as exc:  # each waiting caller decides what an error means
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for i, (_, _, future) in enumerate(batch):
            if not future.done():  # a caller whose deadline passed has gone
                future.set_result((flat[2 * i], flat[2 * i + 1]))

    async def put(self, slot: Slot, value: bytes) -> None:
        if slot.key is None:
            return
        try:
            await self._client.set(slot.key, value, ex=self._ttl)
        except RedisError as exc:
            log.warning("cache store failed", extra={"error": str(exc)})

    async def invalidate(self, *customer_ids: UUID) -> None:
        """Bump the generation of each customer (call after the write committed)."""
        if not customer_ids:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for customer_id in customer_ids:
                    pipe.incr(_gen_key(customer_id))
                await pipe.execute()
        except RedisError as exc:
            # Values expire after the TTL; until then a replica may serve the old one.
            log.error(
                "cache invalidation failed",
                extra={"customers": len(customer_ids), "error": str(exc)},
            )

    async def invalidate_all(self) -> None:
        """Bump the global generation (a change every cached value may depend on)."""
        try:
            await self._client.incr(GLOBAL_GEN)
        except RedisError as exc:
            log.error("global cache invalidation failed", extra={"error": str(exc)})
