"""customer_consumer_ready reads the consumer's readiness at every scrape, probed or not.

It was set only when something asked /readyz: with no probe (`customer-service dev`, or a
pod without a readiness probe) it stayed 0, the "Ready consumers" panel read 0 and the
ConsumerNotReady alert fired for a healthy consumer.
"""

from __future__ import annotations

import time

from prometheus_client import REGISTRY

from customer_consumer.health import Health


def _ready_metric() -> float | None:
    return REGISTRY.get_sample_value("customer_consumer_ready")


def test_the_gauge_follows_readiness_without_a_probe() -> None:
    health = Health(stuck_seconds=5)
    assert _ready_metric() == 0  # not started yet
    health.started = True
    assert _ready_metric() == 1
    health.waiting("database: down")
    health.waiting_since = time.monotonic() - 60  # stuck past stuck_seconds
    assert _ready_metric() == 0
    health.progressed()
    assert _ready_metric() == 1
