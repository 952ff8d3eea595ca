"""Valkey's invalidation messages, feeding the in-process cache.

One connection does both halves of RESP2 client-side caching: it turns on
`CLIENT TRACKING ... REDIRECT <its own id> BCAST` for the cache's key prefixes,
then subscribes to `__redis__:invalidate`. Being one connection, tracking and
the subscription live and die together: when it drops (a restart, a failover,
`CLIENT KILL`, a missed keep-alive), the local cache is emptied and bypassed,
and only a new connection that is tracking and subscribed again turns it back
on (emptying it once more: what was sent meanwhile was lost).

`BCAST` on a prefix reports every key written under it. The customer prefix
`cs:{` also covers the value slots the cache itself writes on a miss; those
keys are ignored here, only generation keys evict.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any
from uuid import UUID

import hiredis
from redis.exceptions import ResponseError

from customer_core.local_cache import LocalCache

log = logging.getLogger(__name__)

CHANNEL = b"__redis__:invalidate"
CUSTOMER_PREFIX = "cs:{"
_GEN = re.compile(rb"^cs:\{([0-9a-fA-F-]{36})\}:gen$")
# Without traffic for this long the connection is pinged; a second silence drops it.
KEEPALIVE_SECONDS = 5.0
_RETRY_SECONDS = (0.05, 0.2, 0.5, 1.0, 2.0)


class TrackingLost(Exception):
    """The invalidation connection failed or said something unexpected."""


class Tracker:
    """Keeps `local` in step with Valkey for as long as it runs (`start`, `close`)."""

    def __init__(
        self,
        local: LocalCache,
        host: str,
        port: int,
        password: str | None,
        global_key: str,
        connect_timeout: float = 2.0,
        keepalive: float = KEEPALIVE_SECONDS,
    ) -> None:
        self._local = local
        self._address = (host, port)
        self._password = password
        self._global = global_key.encode()
        self._prefixes = (CUSTOMER_PREFIX, global_key)
        self._connect_timeout = connect_timeout
        self._keepalive = keepalive
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.client_id: int | None = None  # of the live tracking connection
        self.sessions = 0  # tracking sessions established so far

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="valkey-tracking")

    @property
    def transport(self) -> asyncio.WriteTransport | None:
        """The live tracking connection's transport (tests delay its invalidations)."""
        return self._writer.transport if self._writer is not None else None

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._local.reset(tracking=False)

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._session()
                failures = 0
            except (OSError, TimeoutError, TrackingLost, ResponseError, hiredis.ProtocolError) as e:
                log.warning("Valkey tracking lost; local cache bypassed", extra={"error": repr(e)})
            except Exception:
                # The subscriber must keep running; the local cache stays off meanwhile.
                log.exception("Valkey tracking failed; local cache bypassed")
            finally:
                self._local.reset(tracking=False)
                self.client_id = None
                if self._writer is not None:
                    self._writer.close()
                    self._writer = None
            await asyncio.sleep(_RETRY_SECONDS[min(failures, len(_RETRY_SECONDS) - 1)])
            failures += 1

    async def _session(self) -> None:
        async with asyncio.timeout(self._connect_timeout):
            reader, writer = await asyncio.open_connection(*self._address)
        self._writer = writer
        parser = hiredis.Reader(replyError=ResponseError)

        async def reply(wait: float | None) -> Any:
            while (item := parser.gets()) is False:
                async with asyncio.timeout(wait):
                    data = await reader.read(65536)
                if not data:
                    raise TrackingLost("Valkey closed the tracking connection")
                parser.feed(data)
            if isinstance(item, ResponseError):
                raise item
            return item

        def send(*args: str | int) -> None:
            writer.write(hiredis.pack_command(args))  # type: ignore[arg-type]

        timeout = self._connect_timeout
        if self._password:
            send("AUTH", self._password)
            await reply(timeout)
        send("CLIENT", "ID")
        client_id = int(await reply(timeout))
        prefixes: list[str] = []
        for prefix in self._prefixes:
            prefixes += ["PREFIX", prefix]
        send("CLIENT", "TRACKING", "on", "REDIRECT", client_id, "BCAST", *prefixes)
        await reply(timeout)
        send("SUBSCRIBE", CHANNEL.decode())
        confirmed = await reply(timeout)
        if not (isinstance(confirmed, list) and confirmed[:2] == [b"subscribe", CHANNEL]):
            raise TrackingLost(f"unexpected subscribe reply: {confirmed!r:.80}")
        # From here every write under the prefixes reaches us; start from empty.
        self.client_id = client_id
        self.sessions += 1
        self._local.reset(tracking=True)
        log.info("Valkey tracking on; local cache in use", extra={"client_id": client_id})
        pinged = False
        while True:
            try:
                message = await reply(self._keepalive)
            except TimeoutError:
                if pinged:
                    raise TrackingLost("no answer to a keep-alive ping") from None
                send("PING")
                pinged = True
                continue
            pinged = False
            self._handle(message)

    def _handle(self, message: Any) -> None:
        if not isinstance(message, list) or len(message) != 3 or message[0] != b"message":
            return  # the keep-alive's pong
        keys = message[2]
        if keys is None:
            # FLUSHALL / FLUSHDB: Valkey sends a null invalidation, meaning everything.
            self._local.reset(tracking=True)
            return
        if not isinstance(keys, list):
            # Not Valkey's: anyone may publish here. Start over rather than guess.
            raise TrackingLost(f"unexpected invalidation message: {keys!r:.80}")
        customers: list[UUID] = []
        for key in keys:
            if key == self._global:
                self._local.reset(tracking=True)
                return
            match = _GEN.match(key)
            if match is not None:
                customers.append(UUID(match.group(1).decode()))
        if customers:
            self._local.invalidate(*customers)
