"""The live feeds' reads of Valkey: what ActivityFeed and the api's hub ask of it.

Writers append each activity to a bounded stream per customer and per family
and ring that customer's doorbell on the notice channel (`notices.publish`).
A subscription names its stream once (`customer_feed`, `family_feed`), replays
after a cursor (`lost_after`, `replay`) or starts at the newest entry
(`latest_cursor`); the hub hears the doorbells (`notice_channel`), reads each
rung stream after what it last fanned out (`read_after`) and re-reads the
statistics of customers whose notice says they changed.

Valkey's errors pass through unchanged: the edge answers them as outages
(`usecases.failures`), the hub retries.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from redis.asyncio.client import PubSub

from customer_core import activity_streams, notices
from customer_core.activity_streams import cursor_key
from customer_core.context import Context
from customer_core.notices import Entry, Notice
from customer_core.usecases.stats import ensure_feed_target

__all__ = [
    "Entry",
    "Heard",
    "Notice",
    "NoticeChannel",
    "cursor_key",
    "customer_feed",
    "family_feed",
    "latest_cursor",
    "lost_after",
    "notice_channel",
    "read_after",
    "replay",
    "stats_changed",
    "streams_rung",
]

log = logging.getLogger(__name__)

# What a notice may say changed that a statistics watcher shows.
STATS_CHANGES = frozenset({notices.STATS, notices.POINTS, notices.TIER})


# ---- Streams and cursors -----------------------------------------------------------


async def customer_feed(ctx: Context, customer_id: uuid.UUID) -> str:
    """The customer's activity stream; NotFound for a customer that never was (a deleted
    one's history stays)."""
    await ensure_feed_target(ctx, customer_id=customer_id)
    return notices.customer_stream(customer_id)


async def family_feed(ctx: Context, family_id: uuid.UUID) -> str:
    """The family's activity stream; NotFound for an unknown family."""
    await ensure_feed_target(ctx, family_id=family_id)
    return notices.family_stream(family_id)


async def read_after(ctx: Context, stream: str, cursor: str, count: int) -> list[Entry]:
    """Up to `count` entries strictly after `cursor`, oldest first."""
    return await activity_streams.read_after(ctx.valkey, stream, cursor, count)


async def replay(ctx: Context, stream: str, cursor: str, chunk: int) -> AsyncIterator[list[Entry]]:
    """Every entry after `cursor` up to the newest, oldest first, `chunk` at a time
    (each chunk non-empty)."""
    while True:
        entries = await activity_streams.read_after(ctx.valkey, stream, cursor, chunk)
        if entries:
            yield entries
            cursor = entries[-1].cursor
        if len(entries) < chunk:
            return


async def latest_cursor(ctx: Context, stream: str) -> str:
    """The newest entry's cursor, or START_CURSOR for an empty stream."""
    return await activity_streams.latest_cursor(ctx.valkey, stream)


async def lost_after(ctx: Context, stream: str, cursor: str) -> bool:
    """Whether entries after `cursor` may have been trimmed from the replay window."""
    return await activity_streams.lost_after(ctx.valkey, stream, cursor)


# ---- Doorbells ---------------------------------------------------------------------


def stats_changed(notice: Notice) -> bool:
    """Whether the notice's customer's statistics (balance, tier) may read differently."""
    return bool(notice.changed & STATS_CHANGES)


def streams_rung(notice: Notice) -> tuple[str, ...]:
    """The activity streams with new entries the notice rings for (none, or the customer's
    and, for a family member, the family's)."""
    if notices.ACTIVITY not in notice.changed:
        return ()
    if notice.family_id is None:
        return (notices.customer_stream(notice.customer_id),)
    return notices.customer_stream(notice.customer_id), notices.family_stream(notice.family_id)


@dataclass(frozen=True)
class Heard:
    """One message on the notice channel: a doorbell, or (notice None) word that the
    subscription is (again) in place, so whatever was published before it went unheard."""

    notice: Notice | None


class NoticeChannel:
    """The notice channel as one subscriber hears it (`notice_channel` opens it)."""

    def __init__(self, pubsub: PubSub) -> None:
        self._pubsub = pubsub

    async def hear(self, wait: float) -> Heard | None:
        """The next message within `wait` seconds, or None (also for one to skip)."""
        message = await self._pubsub.get_message(timeout=wait)
        if message is None:
            return None
        kind = message.get("type")
        if kind in (b"subscribe", "subscribe"):
            return Heard(None)
        if kind not in (b"message", "message"):
            return None
        try:
            return Heard(Notice.decode(message["data"]))
        except (ValueError, KeyError, TypeError) as exc:
            # Anyone with access to Valkey can publish there: skipped, never fatal.
            log.warning("ignoring a malformed notice", extra={"error": str(exc)})
            return None


@contextlib.asynccontextmanager
async def notice_channel(ctx: Context) -> AsyncIterator[NoticeChannel]:
    """Subscribed to the notice channel until the block ends (Valkey errors pass through)."""
    pubsub = ctx.valkey.pubsub()
    try:
        await pubsub.subscribe(notices.NOTICE_CHANNEL)
        yield NoticeChannel(pubsub)
    finally:
        with contextlib.suppress(Exception):
            await pubsub.aclose()  # type: ignore[no-untyped-call]
