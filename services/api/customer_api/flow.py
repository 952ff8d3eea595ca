"""Flow control for server-side streams: bounded queues, and writes that can be cut short.

A stream's producer (the hub, fanning out notices) must never wait for one
slow client, and a slow client must never grow the server's memory. So each
stream has a bounded queue; when it would overflow, the stream is closed with
an error (RESOURCE_EXHAUSTED, telling the client to resume from its cursor)
and its queued messages are dropped at once.

A client that stops reading leaves our write pending inside gRPC once its
HTTP/2 window is full. `deliver` waits for the write *or* the stream's closing,
so a close (overflow, shutdown) ends the RPC at once; the client still reads
what was already in flight, then the status.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Generic, TypeVar

from customer_api.rpc import RpcContext
from customer_core.errors import LimitExceeded

T = TypeVar("T")


class Closable:
    """Something a stream waits on that can be closed with the error the RPC ends with."""

    def __init__(self) -> None:
        # A service error (mapped by the edge), or a lost dependency (UNAVAILABLE).
        self.error: Exception | None = None
        self.closed = asyncio.Event()

    def close(self, error: Exception) -> None:
        if self.error is None:
            self.error = error
            self.closed.set()
            self.on_close()

    def on_close(self) -> None:
        """Drop what is buffered (subclasses)."""

    def raise_if_closed(self) -> None:
        if self.error is not None:
            raise self.error


class Outbox(Closable, Generic[T]):
    """A stream's bounded queue of outgoing messages."""

    def __init__(self, limit: int, behind: str) -> None:
        super().__init__()
        self.limit = limit
        self._behind = behind  # what the client is told when it falls too far behind
        self._items: deque[T] = deque()
        self._ready = asyncio.Event()
        self._space = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> None:
        """Queue without waiting; a full queue closes the stream (the reader is too slow)."""
        if self.error is not None:
            return
        if len(self._items) >= self.limit:
            self.close(LimitExceeded(self._behind))
            return
        self._items.append(item)
        self._ready.set()

    async def put_wait(self, item: T) -> None:
        """Queue, waiting for room: for producers that may wait (a replay)."""
        while len(self._items) >= self.limit:
            self.raise_if_closed()
            self._space.clear()
            await self._space.wait()
        self.raise_if_closed()
        self._items.append(item)
        self._ready.set()

    def has_room(self, n: int) -> bool:
        return self.error is not None or len(self._items) + n <= self.limit

    async def wait_room(self, n: int) -> None:
        """Until `n` more messages fit (or the stream is closed)."""
        while not self.has_room(n):
            self._space.clear()
            await self._space.wait()

    async def get(self) -> T:
        """The next message; raises the stream's error once closed."""
        while True:
            self.raise_if_closed()
            if self._items:
                item = self._items.popleft()
                self._space.set()
                return item
            self._ready.clear()
            await self._ready.wait()

    def on_close(self) -> None:
        self._items.clear()
        self._ready.set()
        self._space.set()


def _retrieve(write: asyncio.Future[Any]) -> None:
    # A write abandoned by a close fails with the RPC; nobody awaits it.
    if not write.cancelled():
        write.exception()


async def deliver(context: RpcContext, message: Any, stream: Closable) -> None:
    """Write one message, or raise the stream's error if it closes first."""
    stream.raise_if_closed()
    write: asyncio.Future[Any] = asyncio.ensure_future(context.write(message))
    closing = asyncio.ensure_future(stream.closed.wait())
    try:
        await asyncio.wait((write, closing), return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        write.cancel()
        raise
    finally:
        closing.cancel()
    if write.done():
        write.result()
        return
    write.add_done_callback(_retrieve)
    stream.raise_if_closed()
