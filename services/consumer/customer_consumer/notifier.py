"""Cache invalidation and change notices, off the batch's critical path.

The database is the truth and notices are best effort (customer_core.notices),
so the poll loop hands each committed batch's changes to this one task and
goes on with the next batch; the task, in commit order and merging whatever
queued up meanwhile, bumps the customers' cache generations, then appends
activities and publishes notices. A bounded queue makes the loop wait rather
than fall arbitrarily far behind when Valkey is slow. (Until the bump, an api
replica may serve a value cached before the commit, as it could between the
commit and the bump before; now the window is one queue turn longer.)

It writes exactly what `cache.invalidate` and `notices.publish` write (the same
generation bumps, stream entries, TTLs and merged notices, built with the same
helpers) but as one Lua script call per chunk of activities, so the INCRs,
XADDs and PUBLISHes run inside Valkey: through redis-py commands a batch of
thousands of activities cost the consumer about as much CPU, in building and
parsing commands, as the batch's whole database transaction. The script's
arguments are JSON written by orjson, which writes UUIDs and UTC datetimes
itself, as the text `Activity.to_fields` gives them (a test compares). One
difference: a stream's TTL is refreshed at most once per TTL_REFRESH_SECONDS
by this process (and always when the script creates the stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC

import orjson
import redis.asyncio as redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from customer_core import notices
from customer_core.cache import generation_key
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


def entry_text(a: Activity) -> str:
    """`a.to_entry()`'s text, by orjson from the activity's own values."""
    return _json(field_values(a)).decode()


def field_values(a: Activity) -> list[object]:
    """`a.to_fields()`'s values, UTC times left for orjson to write. Ids go as `str()`:
    the consumer's are asyncpg's UUIDs, which orjson would hand back to Python."""
    at, family, reward = a.occurred_at, a.family_id, a.reward_id
    return [
        a.kind,
        str(a.customer_id),
        str(family) if family else "",
        a.order_id,
        str(a.points),
        str(reward) if reward else "",
        a.tier,
        a.campaign,
        at if at.tzinfo is UTC else at.isoformat(),
    ]


def doorbell(n: Notice) -> str:
    """`n.encode()`, by orjson."""
    return _json({"c": n.customer_id, "f": n.family_id, "ch": sorted(n.changed)}).decode()


def _json(value: object) -> bytes:
    # Text passes through unescaped, so Valkey stores the very bytes redis-py would.
    return orjson.dumps(value, default=_uuid_text)


def _uuid_text(value: object) -> str:
    # orjson writes uuid.UUID itself, not asyncpg's subclass (ids read from the database).
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


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
    # The same notices, merged the same way, as notices.publish sends (one doorbell
    # per customer and family is enough: merging more copies changes nothing).
    ringing = list({(a.customer_id, a.family_id): a for a in activities}.values())
    merged = notices.merge([*notices._activity_notices(ringing), *batch_notices])
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
            entries.append([indexes, entry_text(a)])
        doorbells = _json([doorbell(n) for n in merged]) if start == last else b"[]"
        bumped = generations if start == 0 else []
        refresh = [key for key in keys if due(key)]
        expire = _json([keys[key] for key in refresh])
        args: list[str | bytes] = [
            *head,
            notices.ENTRY_FIELD,
            _json(entries),
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
) -> None:
    """Bump the generations of `bump`, append activities to their replay streams,
    then publish merged notices (best effort). With `ttls`, a stream's TTL is
    refreshed only when due there."""
    if not batch_notices and not activities and not bump:
        return
    due = ttls.due if ttls is not None else _always_due
    try:
        for keys, args, refresh in script_calls(batch_notices, activities, bump, due=due):
            await script(keys=keys, args=args)
            if ttls is not None:
                ttls.refreshed(refresh)
    except RedisError as exc:
        log.warning("publishing change notices failed", extra={"error": str(exc)})


class Notifier:
    """Per committed batch, in commit order: bump the customers' cache generations,
    then append activities and publish notices (so a replica that hears a notice
    and reads again misses the old cached value)."""

    def __init__(self, client: redis.Redis, depth: int = 8) -> None:
        self.script = publisher(client)
        self.ttls = RecentTtls()
        self.queue: asyncio.Queue[tuple[Sequence[Notice], Sequence[Activity]]] = asyncio.Queue(
            depth
        )
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._drain())

    async def put(self, batch_notices: Sequence[Notice], activities: Sequence[Activity]) -> None:
        if batch_notices or activities:
            await self.queue.put((batch_notices, activities))

    async def _drain(self) -> None:
        while True:
            first = await self.queue.get()
            all_notices, all_activities = list(first[0]), list(first[1])
            taken = 1
            while not self.queue.empty():
                more = self.queue.get_nowait()
                all_notices += more[0]
                all_activities += more[1]
                taken += 1
            try:
                bump = sorted({n.customer_id for n in all_notices})
                await publish(self.script, all_notices, all_activities, bump, self.ttls)
            except Exception:  # a notice must never stop the consumer
                log.exception("publishing notices failed")
            for _ in range(taken):
                self.queue.task_done()

    async def close(self, grace: float = 5.0) -> None:
        """Publish what is queued (for at most `grace` seconds), then stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), grace)
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
