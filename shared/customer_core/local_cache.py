"""Encoded responses kept in this process, in front of the Valkey cache.

A cached read served from here costs no network round trip. An entry is valid
only while Valkey's server-assisted client-side caching is watching for us:
`tracking.Tracker` holds a connection with `CLIENT TRACKING ... BCAST` on the
generation keys and evicts a customer's entries when any process bumps the
customer's generation (a write on another replica, the consumer, a job).
While that connection is down every look-up bypasses this cache, and the cache
is emptied whenever tracking starts again: invalidations sent while nobody
listened are lost, so nothing stored before them may survive.

The writer's own process evicts synchronously (`Cache.invalidate` calls
`invalidate` here after its bump), so it never serves its own stale value.

A reader that began before an invalidation must not store what it read (the
value may be the old one, and the eviction has already passed): `mark()` is
taken before the Valkey look-up and `put` refuses a value whose mark is older
than the customer's last invalidation or the last reset.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from uuid import UUID

from customer_core.telemetry.tallies import CounterChild, FastCounter, FastGauge

LOCAL_RESULTS = ("hit", "miss", "bypass")
LOCAL_REQUESTS = FastCounter(
    "customer_local_cache_requests",
    "In-process cache look-ups by cache and result (hit, miss, bypass: tracking is down).",
    ["cache", "result"],
)
EVICTION_REASONS = ("capacity", "invalidation", "expired", "reset")
LOCAL_EVICTIONS = FastCounter(
    "customer_local_cache_evictions",
    "Entries dropped from the in-process cache, by reason.",
    ["reason"],
)
LOCAL_TRACKING = FastGauge(
    "customer_local_cache_tracking",
    "1 while Valkey invalidations reach this process (the in-process cache is in use).",
)
# Every series reads 0 from the start, not "No data".
for _reason in EVICTION_REASONS:
    LOCAL_EVICTIONS.labels(_reason)

_Key = tuple[str, UUID]


class LocalCache:
    """An LRU bounded by entries and by bytes of values; usable only while tracking."""

    def __init__(self, max_entries: int, max_bytes: int, ttl_seconds: float) -> None:
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._ttl = ttl_seconds
        self._entries: OrderedDict[_Key, tuple[bytes, float]] = OrderedDict()
        self._kinds: dict[UUID, set[str]] = {}
        self._bytes = 0
        # Bumped by every invalidation; a put carries the value it saw first.
        self._seq = 0
        self._floor = 0  # puts marked before this are refused
        # Customers' last invalidations, bounded: a forgotten one raises the floor.
        self._invalidated: OrderedDict[UUID, int] = OrderedDict()
        self._remembered = max(1024, max_entries)
        self._tracking = False
        self._counters: dict[tuple[str, str], CounterChild] = {}
        self._evicted = {r: LOCAL_EVICTIONS.labels(r) for r in EVICTION_REASONS}
        LOCAL_TRACKING.set(0)

    @property
    def tracking(self) -> bool:
        return self._tracking

    def __len__(self) -> int:
        return len(self._entries)

    def mark(self) -> int:
        """Take before reading from Valkey or the database; pass to `put`."""
        return self._seq

    def get(self, kind: str, customer_id: UUID) -> bytes | None:
        if not self._tracking:
            self._count(kind, "bypass")
            return None
        key = (kind, customer_id)
        entry = self._entries.get(key)
        if entry is None:
            self._count(kind, "miss")
            return None
        value, expires = entry
        if time.monotonic() >= expires:
            # A lost bump (Valkey failed mid-write) lives no longer than in Valkey.
            self._drop(key, "expired")
            self._count(kind, "miss")
            return None
        self._entries.move_to_end(key)
        self._count(kind, "hit")
        return value

    def put(self, kind: str, customer_id: UUID, value: bytes, mark: int) -> None:
        if (
            not self._tracking
            or mark < self._floor
            or self._invalidated.get(customer_id, -1) > mark
            or len(value) > self._max_bytes
        ):
            return
        key = (kind, customer_id)
        if key in self._entries:
            self._bytes -= len(self._entries.pop(key)[0])
        self._entries[key] = (value, time.monotonic() + self._ttl)
        self._kinds.setdefault(customer_id, set()).add(kind)
        self._bytes += len(value)
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            self._drop(next(iter(self._entries)), "capacity")

    def invalidate(self, *customer_ids: UUID) -> None:
        """Evict every entry of these customers, and refuse puts begun before now."""
        self._seq += 1
        for customer_id in customer_ids:
            self._invalidated[customer_id] = self._seq
            self._invalidated.move_to_end(customer_id)
            for kind in self._kinds.pop(customer_id, ()):
                self._drop((kind, customer_id), "invalidation", index=False)
        while len(self._invalidated) > self._remembered:
            _, seq = self._invalidated.popitem(last=False)
            self._floor = max(self._floor, seq)

    def reset(self, *, tracking: bool) -> None:
        """Empty the cache (a flush, a global bump, tracking lost or regained)."""
        self._seq += 1
        self._floor = self._seq
        self._invalidated.clear()
        if self._entries:
            self._evicted["reset"].inc(len(self._entries))
        self._entries.clear()
        self._kinds.clear()
        self._bytes = 0
        self._tracking = tracking
        LOCAL_TRACKING.set(1 if tracking else 0)

    def _drop(self, key: _Key, reason: str, *, index: bool = True) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self._bytes -= len(entry[0])
        self._evicted[reason].inc()
        if index:
            kinds = self._kinds.get(key[1])
            if kinds is not None:
                kinds.discard(key[0])
                if not kinds:
                    del self._kinds[key[1]]

    def _count(self, kind: str, result: str) -> None:
        counter = self._counters.get((kind, result))
        if counter is None:
            for each in LOCAL_RESULTS:
                self._counters[kind, each] = LOCAL_REQUESTS.labels(kind, each)
            counter = self._counters[kind, result]
        counter.inc()
