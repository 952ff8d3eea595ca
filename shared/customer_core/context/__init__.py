"""The per-process context: built once at start-up, closed once at shutdown.

Every process (api, consumer, worker, operator, CLI commands) makes one
`Context` from its `Settings`; use cases take it (or a connection from its
pool) instead of reaching for globals.

The package is everything a service needs to run a process on the core's
backing servers, so that services never reach below it: `kafka` (how every
Kafka client connects: brokers, TLS, SASL) and `runtime` (a main coroutine run
until SIGTERM or Ctrl-C).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import asyncpg
import redis.asyncio as redis

from customer_core.cache import Cache
from customer_core.cache_keys import GLOBAL_GEN
from customer_core.config import Settings
from customer_core.db.migrate import check_schema
from customer_core.db.sessions import reset_if_marked
from customer_core.errors import Unavailable
from customer_core.local_cache import LocalCache
from customer_core.tracking import Tracker

log = logging.getLogger(__name__)

POOL_CLOSE_GRACE_SECONDS = 10.0


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb columns come back as Python values rather than text.
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def connect_db(settings: Settings, **overrides: Any) -> asyncpg.Connection:
    """One plain connection (migrations, CLI commands)."""
    db = settings.db
    try:
        conn: asyncpg.Connection = await asyncpg.connect(
            host=db.host or "127.0.0.1",
            port=db.port,
            user=db.user,
            password=db.password or None,
            database=overrides.pop("database", db.name),
            **overrides,
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise Unavailable(f"cannot connect to PostgreSQL at {db.host}:{db.port}: {exc}") from exc
    await _init_connection(conn)
    return conn


async def create_pool(settings: Settings) -> asyncpg.Pool:
    db = settings.db
    try:
        pool = await asyncpg.create_pool(
            host=db.host or "127.0.0.1",
            port=db.port,
            user=db.user,
            password=db.password or None,
            database=db.name,
            min_size=db.pool_min,
            max_size=db.pool_max,
            init=_init_connection,
            # Only a connection that took session-level state is reset (db/sessions.py).
            reset=reset_if_marked,
            # Statements are few and fixed; a larger cache buys nothing.
            statement_cache_size=256,
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise Unavailable(f"cannot connect to PostgreSQL at {db.host}:{db.port}: {exc}") from exc
    assert pool is not None
    return pool


@dataclass
class Context:
    settings: Settings
    pool: asyncpg.Pool
    valkey: redis.Redis
    cache: Cache
    tracker: Tracker | None = None

    @classmethod
    async def create(
        cls, settings: Settings, *, require_schema: bool = True, local_cache: bool = False
    ) -> Context:
        """`local_cache`: keep responses in memory too (the api; LOCAL_CACHE_ENTRIES > 0)."""
        pool = await create_pool(settings)
        try:
            if require_schema:
                async with pool.acquire() as conn:
                    await check_schema(conn)
            client = redis.Redis.from_url(
                settings.valkey.url(),
                socket_connect_timeout=2,
                socket_timeout=5,
                health_check_interval=15,
            )
        except BaseException:
            await pool.close()
            raise
        local, tracker = None, None
        if local_cache and settings.local_cache_entries > 0:
            local = LocalCache(
                settings.local_cache_entries,
                settings.local_cache_bytes,
                settings.cache_ttl_seconds,
            )
            vk = settings.valkey
            tracker = Tracker(
                local, vk.host or "127.0.0.1", vk.port, vk.password or None, GLOBAL_GEN
            )
            tracker.start()  # until it is tracking, look-ups bypass the local cache
        return cls(
            settings=settings,
            pool=pool,
            valkey=client,
            cache=Cache(
                client,
                ttl_seconds=settings.cache_ttl_seconds,
                window_seconds=settings.cache_batch_window_ms / 1000,
                local=local,
            ),
            tracker=tracker,
        )

    async def aclose(self) -> None:
        if self.tracker is not None:
            await self.tracker.close()
        self.cache.close()
        await self.valkey.aclose()
        try:
            # close() waits for every acquired connection to come back: one task
            # that never releases its connection would hold shutdown forever.
            await asyncio.wait_for(self.pool.close(), POOL_CLOSE_GRACE_SECONDS)
        except TimeoutError:
            log.warning(
                "database connections still in use after %.0f s at shutdown; terminating them",
                POOL_CLOSE_GRACE_SECONDS,
            )
            self.pool.terminate()
