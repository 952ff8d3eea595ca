"""The consumer's Prometheus metrics (served on METRICS_PORT)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter(
    "customer_consumer_events",
    "Order events by topic and outcome (applied, duplicate, dead_lettered).",
    ["topic", "outcome"],
)
DEAD_LETTERS = Counter(
    "customer_consumer_dead_letters",
    "Events sent to the dead-letter topic, by source topic and the field at fault.",
    ["topic", "field"],
)
BATCH_SIZE = Histogram(
    "customer_consumer_batch_size",
    "Records per applied batch.",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000),
)
BATCH_SECONDS = Histogram(
    "customer_consumer_batch_duration_seconds",
    "From records fetched to offsets committed, per batch.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
LAG = Gauge(
    "customer_consumer_lag",
    "Records behind the end of each assigned partition.",
    ["topic", "partition"],
)
RETRIES = Counter(
    "customer_consumer_retries",
    "Batch retries: a dependency (database, kafka) was unavailable, or the apply failed (apply).",
    ["dependency"],
)
LAST_COMMIT = Gauge(
    "customer_consumer_last_commit_timestamp_seconds",
    "Unix time of the last offset commit.",
)
READY = Gauge("customer_consumer_ready", "1 when the consumer reports ready, else 0.")


OUTCOMES = ("applied", "duplicate", "dead_lettered")
DEPENDENCIES = ("database", "kafka")


def start_at_zero(topics: Iterable[str]) -> None:
    """Every known series at 0, so a panel of failures reads 0 rather than "No data" and
    rate() sees the first one (a series that appears at 1 has no increase)."""
    for topic in topics:
        for outcome in OUTCOMES:
            EVENTS.labels(topic, outcome)
    for dependency in DEPENDENCIES:
        RETRIES.labels(dependency)
