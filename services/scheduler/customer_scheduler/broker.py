"""The Taskiq broker: a Valkey stream with a consumer group and acknowledgements.

Workers acknowledge a job after it ran (WHEN_EXECUTED), so a job whose worker
died stays pending in the group. taskiq-redis's RedisStreamBroker reclaims
pending jobs only after it has received a new message; ours also reclaims
while idle, on every read timeout, so a dead worker's job is taken over within
about JOBS_REDELIVER_SECONDS even when nothing else is sent.

taskiq acknowledges a job whose task raised, even one cancelled: a stopping
worker calls `leave_unacknowledged` before it cancels the jobs that outlasted
its grace period, so their messages stay pending and are taken over.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError
from taskiq import AckableMessage
from taskiq_redis import RedisStreamBroker

from customer_core.config import Settings
from customer_scheduler.settings import JobSettings

log = logging.getLogger("customer_scheduler")

GROUP = "customer-service-workers"
STREAM_MAXLEN = 10_000
READ_BLOCK_MS = 1000


class JobBroker(RedisStreamBroker):  # type: ignore[misc]
    abandoning = False

    def leave_unacknowledged(self) -> None:
        """From now on, jobs that end are not acknowledged (another worker reruns them)."""
        self.abandoning = True

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        async with Redis(connection_pool=self.connection_pool) as conn:
            while True:
                try:
                    claimed = await self._reclaim(conn)
                except ResponseError as exc:
                    await self._regroup_if_lost(exc)
                    continue
                for message in claimed:
                    yield message
                try:
                    fetched: Any = await conn.xreadgroup(
                        self.consumer_group_name,
                        self.consumer_name,
                        {self.queue_name: ">"},
                        block=self.block,
                        count=self.count,
                    )
                except ResponseError as exc:
                    await self._regroup_if_lost(exc)
                    continue
                for stream, entries in fetched or []:
                    for entry_id, fields in entries:
                        yield self._message(stream, entry_id, fields)

    async def _regroup_if_lost(self, exc: ResponseError) -> None:
        """Create the stream and group again if Valkey lost them; re-raise anything else.

        A restart without persistence, or a failover to an empty replica, loses
        both: without this the worker would fail every read until restarted."""
        if not str(exc).startswith("NOGROUP"):
            raise exc
        log.warning("job stream or its group gone; creating them again")
        await self._declare_consumer_group()

    async def _reclaim(self, conn: Redis) -> list[AckableMessage]:
        claimed: Any = await conn.xautoclaim(
            self.queue_name,
            self.consumer_group_name,
            self.consumer_name,
            min_idle_time=self.idle_timeout,
            count=self.unacknowledged_batch_size,
        )
        entries = claimed[1]
        return [
            self._message(self.queue_name, entry_id, fields)
            for entry_id, fields in entries
            if fields  # an entry trimmed from the stream has no fields left
        ]

    def _message(self, stream: Any, entry_id: Any, fields: Any) -> AckableMessage:
        ack = self._ack_generator(id=entry_id, queue_name=stream)

        async def ack_unless_abandoned() -> None:
            if self.abandoning:
                log.info(
                    "job left unacknowledged for another worker",
                    extra={
                        "entry": entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                    },
                )
                return
            await ack()

        return AckableMessage(data=fields[b"data"], ack=ack_unless_abandoned)


def build_broker(settings: Settings, jobs: JobSettings) -> JobBroker:
    return JobBroker(
        settings.valkey.url(),
        queue_name=jobs.queue,
        consumer_group_name=GROUP,
        # A new group starts at the beginning, so jobs sent before the first
        # worker started are not lost.
        consumer_id="0",
        maxlen=STREAM_MAXLEN,
        xread_block=READ_BLOCK_MS,
        # One at a time: a worker must not hold jobs it has not started.
        xread_count=1,
        idle_timeout=jobs.redeliver_seconds * 1000,
        unacknowledged_batch_size=1,
        max_connection_pool_size=jobs.concurrency + 4,
    )
