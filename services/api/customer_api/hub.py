"""One hub per api process: a single Valkey pub/sub subscription fanned out to open streams.

Every replica hears every notice (`customer_core.usecases.activity`) and
serves its own streams:

- Statistics: a notice for a watched customer schedules one re-read of its
  statistics for all its watchers (`watch.StatsWatchers`; latest value wins,
  so a slow watcher holds one snapshot, never a backlog).
- Activity: a notice rings the doorbell of the customer's and family's
  streams; the hub reads each rung stream once after the last entry it
  fanned out and hands the entries to the subscriptions on it, which filter
  by their own cursor.

Pub/sub is at-most-once, so after a (re)subscribe and every few seconds the
hub sweeps: each stream it follows is read again (cheap when nothing is new).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from customer_api.flow import Closable, Outbox
from customer_api.stream_settings import StreamSettings
from customer_api.watch import StatsWatch, StatsWatchers
from customer_core.context import Context
from customer_core.errors import Unavailable
from customer_core.usecases import activity
from customer_core.usecases.failures import is_outage

log = logging.getLogger(__name__)

SWEEP_SECONDS = 5.0
FETCH_COUNT = 500
# Between two chunks of one activity stream, the hub gives its readers this long
# to make room; a reader that has not by then overflows and is cut off, so a
# stalled client delays the others on its stream once, briefly.
ROOM_WAIT_SECONDS = 1.0
SHUTDOWN = "the server is shutting down; reconnect (ActivityFeed: resume from your last cursor)"


class Subscription(Protocol):
    """What the hub needs of an ActivityFeed subscription (feed.py)."""

    stream: str

    @property
    def outbox(self) -> Outbox[Any]: ...

    def deliver(self, entries: Sequence[activity.Entry]) -> None: ...


@dataclass(eq=False)
class _Target:
    """An activity stream some subscription on this replica follows."""

    key: str
    subs: set[Subscription] = field(default_factory=set)
    last: str | None = None  # the newest entry fanned out; None until initialised
    busy: bool = False
    dirty: bool = False


class Hub:
    def __init__(self, ctx: Context, settings: StreamSettings) -> None:
        self.ctx = ctx
        self.settings = settings
        self._stats = StatsWatchers(ctx, settings.coalesce_seconds)
        self._targets: dict[str, _Target] = {}
        self._streams: set[Closable] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._subscribed = asyncio.Event()
        self._closing = False

    # ---- Life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        self._spawn(self._listen())
        self._spawn(self._stats.run())
        # Streams opened right after start must not miss a notice; but a Valkey
        # outage must not stop the server from starting (health reports it).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), 5)

    async def stop(self) -> None:
        """End every open stream with UNAVAILABLE, then stop listening."""
        self._closing = True
        for stream in list(self._streams):
            stream.close(Unavailable(SHUTDOWN))
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def open(self, stream: Closable) -> None:
        """Track a stream so shutdown can end it; refuse new streams while stopping."""
        if self._closing:
            raise Unavailable(SHUTDOWN)
        self._streams.add(stream)

    def release(self, stream: Closable) -> None:
        self._streams.discard(stream)

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    @property
    def followed(self) -> int:
        """Customers watched plus activity streams followed (zero when all streams closed)."""
        return len(self._stats) + len(self._targets)

    # ---- Statistics -----------------------------------------------------------------

    def watch_stats(self, customer_id: uuid.UUID) -> StatsWatch:
        watch = StatsWatch(customer_id)
        self.open(watch)
        self._stats.add(watch)
        return watch

    def unwatch_stats(self, watch: StatsWatch) -> None:
        self.release(watch)
        self._stats.remove(watch)

    def now(self) -> float:
        return self._stats.now()

    # ---- Activity ---------------------------------------------------------------------

    async def follow(self, sub: Subscription) -> None:
        """Fan the stream's new entries out to `sub` from now on."""
        target = self._targets.get(sub.stream)
        if target is None:
            target = self._targets[sub.stream] = _Target(sub.stream)
        target.subs.add(sub)
        if target.last is None:
            await self._initialise(target)

    def unfollow(self, sub: Subscription) -> None:
        target = self._targets.get(sub.stream)
        if target is not None:
            target.subs.discard(sub)
            if not target.subs:
                del self._targets[sub.stream]

    async def _initialise(self, target: _Target) -> None:
        latest = await activity.latest_cursor(self.ctx, target.key)
        if target.last is None:
            target.last = latest
        if target.dirty:
            self._ring(target.key)

    def _ring(self, key: str) -> None:
        target = self._targets.get(key)
        if target is None:
            return
        target.dirty = True
        if not target.busy and target.last is not None:
            target.busy = True
            self._spawn(self._fetch(target))

    async def _fetch(self, target: _Target) -> None:
        # Chunks of a quarter of a queue: a reader keeping up absorbs a burst.
        chunk = max(1, min(FETCH_COUNT, self.settings.queue_limit // 4))
        try:
            while target.dirty and target.subs:
                target.dirty = False
                while target.last is not None:
                    await self._wait_for_room(target, chunk)
                    entries = await activity.read_after(self.ctx, target.key, target.last, chunk)
                    if not entries:
                        break
                    target.last = entries[-1].cursor
                    for sub in list(target.subs):
                        sub.deliver(entries)
                    if len(entries) < chunk:
                        break
        except Exception as exc:
            if not is_outage(exc):
                raise
            log.warning("reading an activity stream failed", extra={"error": str(exc)})
        finally:
            target.busy = False

    @staticmethod
    async def _wait_for_room(target: _Target, n: int) -> None:
        full = [s.outbox for s in target.subs if not s.outbox.has_room(n)]
        if not full:
            return
        waits = [asyncio.ensure_future(o.wait_room(n)) for o in full]
        try:
            await asyncio.wait(waits, timeout=ROOM_WAIT_SECONDS)
        finally:
            for w in waits:
                w.cancel()

    # ---- Notices ----------------------------------------------------------------------

    def dispatch(self, notice: activity.Notice) -> None:
        if activity.stats_changed(notice):
            self._stats.changed(notice.customer_id)
        for stream in activity.streams_rung(notice):
            self._ring(stream)

    def sweep(self, *, stats: bool = False) -> None:
        """Re-read everything followed: notices may have been lost (reconnect, outage)."""
        for target in list(self._targets.values()):
            if target.last is None:
                self._spawn(self._initialise(target))
            else:
                self._ring(target.key)
        if stats:
            self._stats.all_changed()

    async def _listen(self) -> None:
        backoff = 0.1
        loop = asyncio.get_running_loop()
        while True:
            try:
                async with activity.notice_channel(self.ctx) as channel:
                    last_sweep = loop.time()
                    while True:
                        heard = await channel.hear(wait=1.0)
                        if heard is not None and heard.notice is not None:
                            self.dispatch(heard.notice)
                        elif heard is not None:
                            # (Re)subscribed: whatever was published meanwhile is unheard.
                            self._subscribed.set()
                            self.sweep(stats=True)
                            backoff = 0.1
                        if loop.time() - last_sweep >= SWEEP_SECONDS:
                            last_sweep = loop.time()
                            self.sweep()
            except Exception as exc:
                if not is_outage(exc):
                    raise
                log.warning("notice subscription lost; retrying", extra={"error": str(exc)})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
