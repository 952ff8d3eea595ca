"""The activity streams read back: cursors, replay after a cursor, loss, erasure.

What notices.py writes (an `Activity` per stream entry, a stream per customer and
per family) is read here: the feed's replay and resume, and erasure.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError, ResponseError

from customer_core.notices import (
    START_CURSOR,
    Activity,
    Entry,
    customer_stream,
    family_stream,
    text_of,
)

log = logging.getLogger(__name__)

# ---- Cursors and replay ------------------------------------------------------------
# A cursor is the entry id Valkey gave the activity in the subscription's
# stream ("<milliseconds>-<sequence>"): increasing, and valid as an XRANGE bound.


_CURSOR = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")
_U64 = 2**64 - 1


def cursor_key(cursor: str) -> tuple[int, int]:
    """The cursor as a comparable pair; ValueError when it is not one."""
    # ASCII digits only (str.isdigit() and int() take other scripts' digits, which
    # Valkey refuses), each part an unsigned 64-bit number as in a stream id.
    match = _CURSOR.fullmatch(cursor)
    if match is None or int(match[1]) > _U64 or int(match[2]) > _U64:
        raise ValueError(f"not a cursor: {cursor[:50]!r}")
    return int(match[1]), int(match[2])


def _entries(rows: Sequence[Any]) -> list[Entry]:
    out = []
    for entry_id, fields in rows:
        try:
            out.append(Entry(text_of(entry_id), Activity.from_fields(fields)))
        except (KeyError, ValueError) as exc:
            # A malformed entry (written by hand, or an older writer) is skipped, not fatal.
            log.warning("skipping a malformed activity entry", extra={"error": str(exc)})
    return out


async def read_after(client: redis.Redis, stream: str, cursor: str, count: int) -> list[Entry]:
    """Up to `count` entries strictly after `cursor`, oldest first."""
    rows = await client.xrange(stream, min=f"({cursor}", max="+", count=count)
    return _entries(rows or [])


async def latest_cursor(client: redis.Redis, stream: str) -> str:
    """The newest entry's cursor, or START_CURSOR for an empty stream."""
    rows = await client.xrevrange(stream, max="+", min="-", count=1)
    return text_of(rows[0][0]) if rows else START_CURSOR


async def lost_after(client: redis.Redis, stream: str, cursor: str) -> bool:
    """Whether the cursor is older than the replay window: entries after it may be gone.

    Trimming keeps the newest entries, so when any were trimmed and the cursor
    is before the oldest one kept, what lay between them was lost to the
    client. (If the cursor was itself the last entry trimmed, nothing was; the
    stream cannot tell, so the answer errs on the side of "lost".)
    """
    try:
        info = await client.xinfo_stream(stream)
    except ResponseError:
        return False  # no such stream: nothing was ever trimmed from it
    if int(info.get("entries-added", 0)) <= int(info.get("length", 0)):
        return False
    first = info.get("first-entry")
    oldest = text_of(first[0]) if first else text_of(info.get("last-generated-id", START_CURSOR))
    return cursor_key(cursor) < cursor_key(oldest)


async def forget(
    client: redis.Redis,
    customers: Sequence[tuple[uuid.UUID, uuid.UUID | None]],
    emptied_families: Sequence[uuid.UUID] = (),
) -> None:
    """Erasure: drop each (customer, family)'s own activity stream and its entries in the
    family's stream, and the whole stream of a family with no members left."""
    try:
        gone = {cid for cid, _ in customers}
        for fid in {f for _, f in customers if f is not None} - set(emptied_families):
            stream = family_stream(fid)
            theirs = [
                e.cursor
                for e in _entries(await client.xrange(stream, min="-", max="+") or [])
                if e.activity.customer_id in gone
            ]
            if theirs:
                await client.xdel(stream, *theirs)
        keys = [customer_stream(c) for c in gone] + [family_stream(f) for f in emptied_families]
        if keys:
            await client.delete(*keys)
    except RedisError as exc:
        # The entries age out of the window, and the streams after REPLAY_TTL_SECONDS.
        log.error("erasing activity streams failed", extra={"error": str(exc)})
