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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import redis.asyncio as redis
from redis.exceptions import ConnectionError as ValkeyConnectionError
from redis.exceptions import RedisError, ResponseError

from customer_core.cache_keys import (
    GLOBAL_GEN,
    LOOKUP_MANY,
    LOOKUP_MANY_SHA,
    PUT,
    generation_key,
    slots_key,
)
from customer_core.local_cache import LocalCache
from customer_core.loop_load import SATURATED, ThreadLoad
from customer_core.telemetry import CACHE_REQUESTS, CACHE_RESULTS
from customer_core.valkey_link import ValkeyLink, pack

log = logging.getLogger(__name__)

_Pending = tuple[str, str, "asyncio.Future[tuple[Any, Any]]"]
# Round trips in flight at once; look-ups arriving meanwhile wait for the next.
_MAX_IN_FLIGHT = 2


def _link_for(client: redis.Redis) -> ValkeyLink:
    """A look-up link to the server `client` talks to, with the same timeouts."""
    kw = client.connection_pool.connection_kwargs
    return ValkeyLink(
        kw.get("host", "127.0.0.1"),
        int(kw.get("port", 6379)),
        kw.get("password"),
        timeout=kw.get("socket_timeout") or 5.0,
        connect_timeout=kw.get("socket_connect_timeout") or 2.0,
    )


@dataclass(frozen=True)
class Slot:
    """Where a value read from the database may be stored (None: do not store)."""

    key: str | None
    prefix: str = ""
    customer_id: UUID | None = None
    kind: str = ""
    mark: int = 0  # the local cache's mark before the look-up


_NO_SLOT = Slot(None)


class Cache:
    def __init__(
        self,
        client: redis.Redis,
        ttl_seconds: int,
        window_seconds: float = 0.0,
        saturation: float = SATURATED,
        local: LocalCache | None = None,
    ) -> None:
        self._client = client
        self.local = local
        self._ttl = ttl_seconds
        # While the event loop is saturated, a round trip leaves at most once
        # per window and carries every look-up that arrived meanwhile. grpc.aio
        # starts one new call per loop turn, so otherwise every look-up was a
        # round trip of its own: about 100 µs of CPU across the api and Valkey,
        # more than the bare server's whole call (bench/api.py). Below
        # saturation the saved CPU buys nothing and the wait would be pure
        # latency (4 callers lost a third of their throughput to a fixed
        # window), so look-ups go on the next loop turn.
        self._window = window_seconds
        self._saturation = saturation
        self._load = ThreadLoad()
        self._link = _link_for(client)
        self._batch: list[_Pending] = []
        self._in_flight = 0
        self._last_sent = float("-inf")
        self._scheduled: asyncio.Handle | None = None
        self._counters: dict[tuple[str, str], Any] = {}
        self._put = client.register_script(PUT)

    def held(self, kind: str, customer_id: UUID) -> bytes | None:
        """The value this process holds (no I/O, nothing awaited), or None: then `lookup`."""
        local = self.local
        return None if local is None else local.get(kind, customer_id)

    async def get(self, kind: str, customer_id: UUID) -> tuple[bytes | None, Slot]:
        """The cached value of `kind` for the customer, and the slot to fill on a miss."""
        value = self.held(kind, customer_id)
        if value is not None:
            return value, _NO_SLOT
        return await self.lookup(kind, customer_id)

    async def fetch(
        self, kind: str, customer_id: UUID, load: Callable[[], Awaitable[bytes]]
    ) -> bytes:
        """After `held` found nothing: what Valkey holds, else what `load` reads,
        which is then stored."""
        value, slot = await self.lookup(kind, customer_id)
        if value is not None:
            return value
        value = await load()
        await self.put(slot, value)
        return value

    async def lookup(self, kind: str, customer_id: UUID) -> tuple[bytes | None, Slot]:
        """`get` after `held` found nothing: the value in Valkey, else the slot to fill."""
        local = self.local
        # Taken before Valkey is read: a put refuses what an eviction overtook.
        mark = 0 if local is None else local.mark()
        prefix = f"cs:{{{customer_id}}}:{kind}:"
        try:
            key, value = await self._enqueue(generation_key(customer_id), prefix)
        except RedisError as exc:
            self._count(kind, "error")
            log.warning("cache lookup failed", extra={"cache": kind, "error": str(exc)})
            return None, _NO_SLOT
        if value is not None:
            self._count(kind, "hit")
            if local is not None:
                local.put(kind, customer_id, value, mark)
            return value, _NO_SLOT  # a hit stores nothing in Valkey
        self._count(kind, "miss")
        key = key.decode() if isinstance(key, bytes) else str(key)
        return None, Slot(key, prefix, customer_id, kind, mark)

    def _count(self, kind: str, result: str) -> None:
        # The labelled child is looked up once per (kind, result), not per call.
        counter = self._counters.get((kind, result))
        if counter is None:
            # Every result of the cache at once: its error series reads 0, not "No data".
            for each in CACHE_RESULTS:
                self._counters[kind, each] = CACHE_REQUESTS.labels(kind, each)
            counter = self._counters[kind, result]
        counter.inc()

    def _enqueue(self, gen_key: str, prefix: str) -> asyncio.Future[tuple[Any, Any]]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[Any, Any]] = loop.create_future()
        self._batch.append((gen_key, prefix, future))
        self._schedule(loop)
        return future

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._scheduled is not None or not self._batch or self._in_flight >= _MAX_IN_FLIGHT:
            return  # already due, nothing to send, or the next reply will send it
        wait = 0.0
        if self._window:
            now = loop.time()
            if self._load.busy(now) >= self._saturation:
                wait = self._last_sent + self._window - now
        if wait > 0:
            self._scheduled = loop.call_later(wait, self._send_batch)
        else:
            self._scheduled = loop.call_soon(self._send_batch)

    def _send_batch(self) -> None:
        self._scheduled = None
        if not self._batch or self._in_flight >= _MAX_IN_FLIGHT:
            return
        batch, self._batch = self._batch, []
        self._in_flight += 1
        self._last_sent = asyncio.get_running_loop().time()
        self._send(batch, "EVALSHA", LOOKUP_MANY_SHA)

    def _send(self, batch: list[_Pending], command: str, script: str) -> None:
        keys = [gen_key for gen_key, _, _ in batch]
        packed = pack(command, script, len(keys) + 1, GLOBAL_GEN, *keys, *(p for _, p, _ in batch))
        self._link.send(packed, lambda reply: self._answer(batch, reply))

    def _answer(self, batch: list[_Pending], reply: Any) -> None:
        if isinstance(reply, ResponseError) and str(reply).startswith("NOSCRIPT"):
            # Valkey restarted or flushed its scripts: send the script itself once.
            self._send(batch, "EVAL", LOOKUP_MANY)
            return
        self._in_flight -= 1
        if not isinstance(reply, Exception) and not (
            isinstance(reply, list) and len(reply) == 2 * len(batch)
        ):
            reply = ResponseError(f"unexpected look-up reply: {reply!r:.80}")
        if isinstance(reply, Exception):  # each waiting caller decides what an error means
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(reply)
        else:
            for i, (_, _, future) in enumerate(batch):
                if not future.done():  # a caller whose deadline passed has gone
                    future.set_result((reply[2 * i], reply[2 * i + 1]))
        # Look-ups that queued while the round trips were busy go out together.
        self._schedule(asyncio.get_running_loop())

    def close(self) -> None:
        """Close the look-up connection (the redis client is the context's to close)."""
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        batch, self._batch = self._batch, []
        for _, _, future in batch:  # waiting for a window that will not come
            if not future.done():
                future.set_exception(ValkeyConnectionError("the cache was closed"))
        self._link.close()

    async def put(self, slot: Slot, value: bytes) -> None:
        if slot.key is None or slot.customer_id is None:
            return
        keys = [slot.key, generation_key(slot.customer_id), GLOBAL_GEN, slots_key(slot.customer_id)]
        try:
            stored = await self._put(keys=keys, args=[slot.prefix, value, self._ttl])
        except RedisError as exc:
            log.warning("cache store failed", extra={"error": str(exc)})
            return
        if stored and self.local is not None:  # not stored: the generation moved on
            self.local.put(slot.kind, slot.customer_id, value, slot.mark)

    async def invalidate(self, *customer_ids: UUID) -> None:
        """Bump the generation of each customer (call after the write committed)."""
        if not customer_ids:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for customer_id in customer_ids:
                    pipe.incr(generation_key(customer_id))
                await pipe.execute()
        except RedisError as exc:
            # Values expire after the TTL; until then a replica may serve the old one.
            log.error(
                "cache invalidation failed",
                extra={"customers": len(customer_ids), "error": str(exc)},
            )
        finally:
            # After the bump: a look-up begun before it may not store its value here.
            if self.local is not None:
                self.local.invalidate(*customer_ids)

    async def forget(self, *customer_ids: UUID) -> None:
        """Erasure: bump each customer's generation, then delete every value stored for it."""
        await self.invalidate(*customer_ids)
        try:
            for customer_id in customer_ids:
                slots = slots_key(customer_id)
                stored = await self._client.zrange(slots, 0, -1)
                await self._client.delete(slots, *stored)
        except RedisError as exc:
            # The values are unreachable (new generation) and expire after the TTL.
            log.error("cache erasure failed", extra={"error": str(exc)})

    async def invalidate_all(self) -> None:
        """Bump the global generation (a change every cached value may depend on)."""
        try:
            await self._client.incr(GLOBAL_GEN)
        except RedisError as exc:
            log.error("global cache invalidation failed", extra={"error": str(exc)})
        finally:
            if self.local is not None:
                self.local.reset(tracking=self.local.tracking)
