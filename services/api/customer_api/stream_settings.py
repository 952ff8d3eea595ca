"""The streaming RPCs' own variables (flow control, coalescing) and the import CLI's target."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from customer_core.config import EnvReader, Variable, register

VARIABLES = register(
    Variable(
        "STREAM_QUEUE_LIMIT",
        "500",
        "messages queued for one stream; a reader further behind is ended with "
        "RESOURCE_EXHAUSTED and resumes from its cursor",
    ),
    Variable(
        "STATS_COALESCE_MS",
        "200",
        "WatchCustomerStats sends at most one update per customer per this many ms",
    ),
    Variable("FEED_MAX_SUBSCRIPTIONS", "100", "subscriptions one ActivityFeed stream may hold"),
    Variable("GRPC_TARGET", "localhost:50052", "host:port `customer-service import` sends to"),
)


@dataclass(frozen=True)
class StreamSettings:
    queue_limit: int
    coalesce_seconds: float
    max_subscriptions: int


def load_stream_settings(env: Mapping[str, str] | None = None) -> StreamSettings:
    r = EnvReader(os.environ if env is None else env)
    return StreamSettings(
        queue_limit=r.integer("STREAM_QUEUE_LIMIT", 8, 1_000_000),
        coalesce_seconds=r.integer("STATS_COALESCE_MS", 0, 60_000) / 1000,
        max_subscriptions=r.integer("FEED_MAX_SUBSCRIPTIONS", 1, 10_000),
    )


def grpc_target(env: Mapping[str, str] | None = None) -> str:
    return EnvReader(os.environ if env is None else env).text("GRPC_TARGET")
