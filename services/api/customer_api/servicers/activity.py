"""ActivityRPCs: the bidirectional ActivityFeed, fed by the process's hub."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from customer_api.feed import FeedSession
from customer_api.flow import deliver
from customer_api.servicers.base import RpcContext
from customer_api.servicers.streaming import HubRPCs
from customer_core.pb.customer.v1 import customer_pb2 as pb


class ActivityRPCs(HubRPCs):
    async def ActivityFeed(
        self, request_iterator: AsyncIterator[pb.ActivityFeedRequest], context: RpcContext
    ) -> AsyncIterator[pb.ActivityFeedResponse]:
        hub = self.hub
        session = FeedSession(hub)
        hub.open(session.outbox)
        reader = asyncio.create_task(session.serve_requests(request_iterator))
        try:
            while True:
                await deliver(context, await session.outbox.get(), session.outbox)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            session.close()
            hub.release(session.outbox)
        # An async generator, as the tracing interceptor requires of stream
        # handlers, that writes with context.write (see flow.deliver).
        yield  # pragma: no cover - unreachable
