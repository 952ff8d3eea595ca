"""Stream clients that behave as the contract asks: reconnect on UNAVAILABLE, resume from a cursor.

`StatsWatcher` keeps WatchCustomerStats open for one customer and remembers
the newest snapshot. `FeedWatcher` keeps one ActivityFeed open with a
subscription per customer, resuming each from the last cursor it received
(from "0-0", the start of the replay window, before the first). Both count
how their streams ended, by status; any status but UNAVAILABLE is an error the
tests fail on.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator

import grpc

from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc

START_CURSOR = "0-0"


class _Watcher(abc.ABC):
    def __init__(self, first: grpc.aio.Channel, after: grpc.aio.Channel) -> None:
        # The first stream may be pinned to one replica; reconnects go through `after`.
        self.channels = [first, after]
        self.ended: Counter[str] = Counter()
        self.task: asyncio.Task[None] | None = None

    def stub(self) -> customer_pb2_grpc.CustomerServiceStub:
        channel = self.channels[0] if not self.ended else self.channels[1]
        return customer_pb2_grpc.CustomerServiceStub(channel)

    def start(self) -> None:
        self.task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _loop(self) -> None:
        while True:
            try:
                await self.once()
                self.ended["OK"] += 1  # the server ended the stream without a status
            except grpc.aio.AioRpcError as exc:
                self.ended[exc.code().name] += 1
            await asyncio.sleep(0.2)

    @abc.abstractmethod
    async def once(self) -> None:
        """Run one stream until it ends."""

    @property
    def unexpected(self) -> dict[str, int]:
        return {k: v for k, v in self.ended.items() if k != "UNAVAILABLE"}


class StatsWatcher(_Watcher):
    def __init__(self, first: grpc.aio.Channel, after: grpc.aio.Channel, customer: str) -> None:
        super().__init__(first, after)
        self.customer = customer
        self.latest: pb.CustomerStats | None = None

    async def once(self) -> None:
        call = self.stub().WatchCustomerStats(pb.WatchCustomerStatsRequest(customer=self.customer))
        async for update in call:
            self.latest = update.stats


class FeedWatcher(_Watcher):
    def __init__(
        self, first: grpc.aio.Channel, after: grpc.aio.Channel, customers: list[str]
    ) -> None:
        super().__init__(first, after)
        self.customers = customers
        self.cursors: dict[str, str] = {c: START_CURSOR for c in customers}
        self.events: list[pb.ActivityEvent] = []
        self.out_of_order = 0
        self.truncated = 0

    async def _requests(self) -> AsyncIterator[pb.ActivityFeedRequest]:
        for c in self.customers:
            yield pb.ActivityFeedRequest(
                subscribe=pb.Subscribe(subscription_id=c, customer=c, resume_cursor=self.cursors[c])
            )
        await asyncio.Event().wait()  # keep our side open

    async def once(self) -> None:
        call = self.stub().ActivityFeed(self._requests())
        async for response in call:
            kind = response.WhichOneof("payload")
            if kind == "ack" and response.ack.replay_truncated:
                self.truncated += 1
            if kind != "event":
                continue
            e = response.event
            if _cursor_key(e.cursor) <= _cursor_key(self.cursors[e.subscription_id]):
                self.out_of_order += 1  # a repeat or a step back: never allowed
            self.cursors[e.subscription_id] = e.cursor
            self.events.append(e)

    def placed(self) -> Counter[str]:
        """How many ORDER_PLACED events arrived per order id."""
        return Counter(e.order_id for e in self.events if e.kind == pb.ACTIVITY_KIND_ORDER_PLACED)


def _cursor_key(cursor: str) -> tuple[int, int]:
    ms, _, seq = cursor.partition("-")
    return int(ms), int(seq or 0)
