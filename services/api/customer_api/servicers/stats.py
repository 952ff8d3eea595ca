"""StatsRPCs: GetCustomerStats, and WatchCustomerStats fed by the process's hub."""

from __future__ import annotations

from collections.abc import AsyncIterator

from customer_api.convert.streams import stats_to_pb, stats_update_to_pb
from customer_api.flow import deliver
from customer_api.servicers.base import RpcContext
from customer_api.servicers.streaming import HubRPCs
from customer_core.domain import names
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.usecases import stats


class StatsRPCs(HubRPCs):
    async def GetCustomerStats(
        self, request: pb.GetCustomerStatsRequest, context: RpcContext
    ) -> pb.CustomerStats:
        customer_id = names.customer_id(request.customer, "customer")
        return stats_to_pb(await stats.get_stats(self.ctx, customer_id))

    async def WatchCustomerStats(
        self, request: pb.WatchCustomerStatsRequest, context: RpcContext
    ) -> AsyncIterator[pb.CustomerStatsUpdate]:
        customer_id = names.customer_id(request.customer, "customer")
        hub = self.hub
        # Watch before the first read, so a change made during it is not missed.
        watch = hub.watch_stats(customer_id)
        try:
            started = hub.now()
            first = await stats.get_stats(self.ctx, customer_id)
            watch.begin(first, started)
            await deliver(context, stats_update_to_pb(first), watch)
            while True:
                snapshot = await watch.next()
                await deliver(context, stats_update_to_pb(snapshot), watch)
        finally:
            hub.unwatch_stats(watch)
        # An async generator, as the tracing interceptor requires of stream
        # handlers, that writes with context.write (see flow.deliver).
        yield  # pragma: no cover - unreachable
