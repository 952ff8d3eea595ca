"""One pipelined Valkey connection for the cache's hot-path look-ups.

redis-py's asyncio client spends most of a cached call's Valkey time in
Python (connection pool, retries, stream reader, a task per command): about
70 µs of CPU for a lone look-up against about 15 µs here (bench/api.py). This
link writes packed commands straight to an asyncio transport and answers them
in order, in `data_received`, from hiredis's C parser, with no task per
command.

Failures are redis-py's exception types, so callers treat them like any other
Valkey error: a lost or timed-out connection fails every command in flight,
and the next command connects again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import hiredis
from redis.exceptions import ConnectionError as ValkeyConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as ValkeyTimeoutError

log = logging.getLogger(__name__)

# Called once with the reply, or with an exception (a RedisError) instead.
OnReply = Callable[[Any], None]


def pack(*args: str | int | bytes) -> bytes:
    """One command in Valkey's wire format."""
    # hiredis's stub declares a one-element tuple; any length is accepted.
    packed: bytes = hiredis.pack_command(cast(Any, args))
    return packed


def _call(on_reply: OnReply, reply: Any) -> None:
    # A failing callback must not leave the replies behind it unanswered.
    try:
        on_reply(reply)
    except Exception:
        log.exception("Valkey reply handler failed")


class _Protocol(asyncio.Protocol):
    def __init__(self, timeout: float) -> None:
        self._reader = hiredis.Reader(replyError=ResponseError)
        self._waiting: deque[tuple[float, OnReply]] = deque()
        self._timeout = timeout
        self._timer: asyncio.TimerHandle | None = None
        self.transport: asyncio.Transport | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def send(self, packed: bytes, on_reply: OnReply) -> None:
        assert self.transport is not None
        self._waiting.append((time.monotonic() + self._timeout, on_reply))
        self.transport.write(packed)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._timeout, self._expire)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        waiting = self._waiting
        while (reply := self._reader.gets()) is not False:
            if not waiting:  # a reply nobody asked for: the stream is out of step
                self._abort(ValkeyConnectionError("unexpected reply from Valkey"))
                return
            _call(waiting.popleft()[1], reply)

    def check_auth(self, reply: Any) -> None:
        if isinstance(reply, Exception):
            self._abort(ValkeyConnectionError(f"Valkey refused the password: {reply}"))

    def _expire(self) -> None:
        # One timer for the whole connection: it looks at the oldest command only.
        self._timer = None
        if not self._waiting:
            return
        left = self._waiting[0][0] - time.monotonic()
        if left <= 0:
            self._abort(ValkeyTimeoutError(f"no reply from Valkey in {self._timeout} s"))
            return
        self._timer = asyncio.get_running_loop().call_later(left, self._expire)

    def _abort(self, exc: Exception) -> None:
        self._fail(exc)
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ValkeyConnectionError(f"connection to Valkey lost: {exc or 'closed'}"))

    def _fail(self, exc: Exception) -> None:
        self.lost = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._waiting:
            _call(self._waiting.popleft()[1], exc)


class ValkeyLink:
    """Commands sent in order on one connection, opened on first use and after a loss."""

    def __init__(
        self, host: str, port: int, password: str | None, timeout: float, connect_timeout: float
    ) -> None:
        self._address = (host, port)
        self._password = password
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None

    def send(self, packed: bytes, on_reply: OnReply) -> None:
        """Send one packed command; `on_reply` gets its reply (or the error) later."""
        protocol = self._protocol
        if protocol is not None and not protocol.lost:
            protocol.send(packed, on_reply)
            return
        self._protocol = None
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        self._connecting.add_done_callback(lambda done: self._send_when(done, packed, on_reply))

    def _send_when(self, done: asyncio.Future[_Protocol], packed: bytes, on_reply: OnReply) -> None:
        if done.cancelled():
            on_reply(ValkeyConnectionError("connecting to Valkey was cancelled"))
        elif (exc := done.exception()) is not None:
            on_reply(exc)
        else:
            self.send(packed, on_reply)

    async def _connect(self) -> _Protocol:
        try:
            loop = asyncio.get_running_loop()
            try:
                async with asyncio.timeout(self._connect_timeout):
                    _, protocol = await loop.create_connection(
                        lambda: _Protocol(self._timeout), *self._address
                    )
            except (OSError, TimeoutError) as exc:
                raise ValkeyConnectionError(
                    f"cannot connect to Valkey at {self._address[0]}:{self._address[1]}: {exc!r}"
                ) from exc
            if self._password:
                # Pipelined ahead of every command; refused, it closes the connection
                # and the commands behind it fail.
                protocol.send(pack("AUTH", self._password), protocol.check_auth)
            self._protocol = protocol
            return protocol
        finally:
            self._connecting = None

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None
