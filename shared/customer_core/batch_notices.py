"""A committed batch's cache bumps, activities and notices, written by one Lua script.

`cache.Cache.invalidate` then `notices.publish` is the definition; this copy is
kept for speed; tests/integration/consumer/test_batch_notices_agree.py proves they agree.

It writes what they write (the same generation bumps, stream entries, TTLs and
merged notices, built by the same functions: `generation_key`, the stream
names, `Activity.entry_text`, `notices.doorbells`, `Notice.encode`) but as one
script call per chunk of activities, so the INCRs, XADDs and PUBLISHes run
inside Valkey: through redis-py commands a batch of thousands of activities
cost the consumer about as much CPU, in building and parsing commands, as the
batch's whole database transaction. One difference: with `RecentTtls`, a
stream's TTL is refreshed at most once per TTL_REFRESH_SECONDS by this process
(and always when the script creates the stream).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence

import orjson
import redis.asyncio as redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from customer_core import notices
from customer_core.cache_keys import generation_key
from customer_core.notices import Activity, Notice

log = logging.getLogger(__name__)

# KEYS: the streams the chunk writes, then the cache generations to bump. ARGV:
# the replay window, the TTL, the notice channel, the entry's field name
# (notices.ENTRY_FIELD), JSON [[[key index, ...], entry text], ...], JSON
# [encoded notice, ...], JSON [key index, ...] of the streams whose TTL to
# refresh, and how many KEYS are streams. Generations are bumped first, so a
# replica that hears a doorbell and reads again misses what it cached before.
# EXPIRE once per key after the chunk's XADDs leaves the same TTL as EXPIRE after
# each one (a script runs at one instant). A stream the chunk creates (NOMKSTREAM
# finds none: new, or lost with a Valkey restart) always gets its TTL, refreshed
# or not. PUBLISH comes last, so entries exist before any replica hears the
# doorbell for them.
PUBLISH_SCRIPT = """
local streams = tonumber(ARGV[8])
for i = streams + 1, #KEYS do
    redis.call('INCR', KEYS[i])
end
local window = ARGV[1]
local expire = {}
for _, k in ipairs(cjson.decode(ARGV[7])) do
    expire[k] = true
end
local field = ARGV[4]
for _, entry in ipairs(cjson.decode(ARGV[5])) do
    local text = entry[2]
    for _, k in ipairs(entry[1]) do
        if not redis.call('XADD', KEYS[k], 'NOMKSTREAM', 'MAXLEN', '~', window, '*',
                          field, text) then
            redis.call('XADD', KEYS[k], 'MAXLEN', '~', window, '*', field, text)
            expire[k] = true
        end
    end
end
for k in pairs(expire) do
    redis.call('EXPIRE', KEYS[k], ARGV[2])
end
for _, n in ipairs(cjson.decode(ARGV[6])) do
    redis.call('PUBLISH', ARGV[3], n)
end
return 1
"""

# How often this process refreshes one stream's TTL. EXPIRE per stream per chunk
# was about two Valkey commands per event (bench/consumer.py); once an hour per
# stream a hot customer's writes cost one. A stream is then dropped between
# REPLAY_TTL_SECONDS less this and REPLAY_TTL_SECONDS after its last write.
TTL_REFRESH_SECONDS = 3600.0


class RecentTtls:
    """The streams whose TTL this process set within the last `every` seconds."""

    def __init__(
        self,
        every: float = TTL_REFRESH_SECONDS,
        limit: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.every, self.limit, self.clock = every, limit, clock
        self._at: dict[str, float] = {}

    def due(self, key: str) -> bool:
        at = self._at.get(key)
        return at is None or self.clock() - at >= self.every

    def refreshed(self, keys: Sequence[str]) -> None:
        if len(self._at) + len(keys) > self.limit:
            self._at.clear()  # everything is due again: one EXPIRE more each
        now = self.clock()
        for key in keys:
            self._at[key] = now


def _always_due(key: str) -> bool:
    return True


# Activities per script call. Each call is built just before it is sent, so
# the batch in the database waits for at most one chunk's building, and Valkey,
# which serves nobody else while a script runs, stays busy for a millisecond
# or two at a time.
CHUNK = 250


def script_calls(
    batch_notices: Sequence[Notice],
    activities: Sequence[Activity],
    bump: Sequence[uuid.UUID] = (),
    chunk: int = CHUNK,
    due: Callable[[str], bool] = _always_due,
) -> Iterator[tuple[list[str], list[str | bytes], list[str]]]:
    """(keys, args, streams whose TTL it refreshes) of each script call that bumps
    the generations of `bump` (in the first) and publishes these (notices in the
    last), in order. Streams not `due` keep their TTL unless the call creates them."""
    rung = notices.doorbells(batch_notices, activities)
    head = [str(notices.REPLAY_WINDOW), str(notices.REPLAY_TTL_SECONDS), notices.NOTICE_CHANNEL]
    generations = [generation_key(c) for c in bump]
    last = max(len(activities) - 1, 0) // chunk * chunk
    for start in range(0, last + 1, chunk):
        keys: dict[str, int] = {}
        # A few regulars make most activities: their streams are looked up once.
        indexes_of: dict[tuple[object, object], list[int]] = {}
        entries = []
        for a in activities[start : start + chunk]:
            indexes = indexes_of.get((a.customer_id, a.family_id))
            if indexes is None:
                streams = [notices.customer_stream(a.customer_id)]
                if a.family_id:
                    streams.append(notices.family_stream(a.family_id))
                # Lua indexes from 1.
                indexes = [keys.setdefault(s, len(keys) + 1) for s in streams]
                indexes_of[(a.customer_id, a.family_id)] = indexes
            entries.append([indexes, a.entry_text()])
        doorbells = orjson.dumps([n.encode() for n in rung]) if start == last else b"[]"
        bumped = generations if start == 0 else []
        refresh = [key for key in keys if due(key)]
        expire = orjson.dumps([keys[key] for key in refresh])
        args: list[str | bytes] = [
            *head,
            notices.ENTRY_FIELD,
            orjson.dumps(entries),
            doorbells,
            expire,
            str(len(keys)),
        ]
        yield [*keys, *bumped], args, refresh


def publisher(client: redis.Redis) -> AsyncScript:
    """The script, sent by digest (EVALSHA) and loaded again when Valkey lost it."""
    return client.register_script(PUBLISH_SCRIPT)


async def publish(
    script: AsyncScript,
    batch_notices: Sequence[Notice],
    activities: Sequence[Activity],
    bump: Sequence[uuid.UUID] = (),
    ttls: RecentTtls | None = None,
    chunk: int = CHUNK,
) -> None:
    """Bump the generations of `bump`, append activities to their replay streams,
    then publish merged notices (best effort). With `ttls`, a stream's TTL is
    refreshed only when due there."""
    if not batch_notices and not activities and not bump:
        return
    due = ttls.due if ttls is not None else _always_due
    try:
        for keys, args, refresh in script_calls(batch_notices, activities, bump, chunk, due):
            await script(keys=keys, args=args)
            if ttls is not None:
                ttls.refreshed(refresh)
    except RedisError as exc:
        log.warning("publishing change notices failed", extra={"error": str(exc)})
