"""The consumer's own configuration variables (the core ones are in customer_core.config)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from customer_core.config import EnvReader, Settings, Variable, load_settings, register
from customer_core.domain.order_events import Topic

register(
    Variable(
        "KAFKA_TOPIC_PREFIX",
        "",
        "prefix of the four order topics (e.g. `staging.`); the DLQ topic is set on its own",
    ),
    Variable("KAFKA_TOPIC_PARTITIONS", "6", "partitions of order topics the service creates"),
    Variable("CONSUMER_MAX_BATCH", "2000", "most records applied in one database transaction"),
    Variable("CONSUMER_POLL_MS", "500", "how long one fetch waits for records, in ms"),
    Variable("CONSUMER_HEALTH_PORT", "8081", "HTTP port of /livez and /readyz (0: pick one)"),
    Variable(
        "CONSUMER_STUCK_SECONDS",
        "120",
        "readiness fails when work waits this long without progress",
    ),
    Variable("CONSUMER_RETRY_MAX_SECONDS", "30", "longest wait between retries of a failed batch"),
    Variable(
        "CONSUMER_SESSION_TIMEOUT_MS",
        "10000",
        "how long the group waits for a silent member before moving its partitions",
    ),
)


@dataclass(frozen=True)
class ConsumerSettings:
    core: Settings
    topic_prefix: str
    partitions: int
    max_batch: int
    poll_ms: int
    health_port: int
    stuck_seconds: float
    retry_max_seconds: float
    session_timeout_ms: int

    def topic(self, kind: Topic) -> str:
        return f"{self.topic_prefix}{kind.value}"

    @property
    def topics(self) -> dict[str, Topic]:
        """Topic name -> the event type it carries."""
        return {self.topic(kind): kind for kind in Topic}


def load(env: Mapping[str, str] | None = None) -> ConsumerSettings:
    source = os.environ if env is None else env
    r = EnvReader(source)
    return ConsumerSettings(
        core=load_settings(source),
        topic_prefix=r.text("KAFKA_TOPIC_PREFIX"),
        partitions=r.integer("KAFKA_TOPIC_PARTITIONS", 1, 1000),
        max_batch=r.integer("CONSUMER_MAX_BATCH", 1, 100_000),
        poll_ms=r.integer("CONSUMER_POLL_MS", 10, 60_000),
        health_port=r.integer("CONSUMER_HEALTH_PORT", 0, 65535),
        stuck_seconds=r.number("CONSUMER_STUCK_SECONDS", 1, 86400),
        retry_max_seconds=r.number("CONSUMER_RETRY_MAX_SECONDS", 0.1, 3600),
        session_timeout_ms=r.integer("CONSUMER_SESSION_TIMEOUT_MS", 1000, 3_600_000),
    )
