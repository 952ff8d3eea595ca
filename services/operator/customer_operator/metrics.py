"""The operator's Prometheus metrics (served on METRICS_PORT).

Per-campaign gauges are labelled `campaign="namespace/name"` (one label: a
`namespace` label of our own would collide with the one Prometheus gives every
scraped series). An operator manages a handful of campaigns, so the series
stay few, and a deleted campaign's series are removed.
"""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge

RECONCILES = Counter(
    "customer_campaign_reconciles",
    "RewardCampaign reconciliations by outcome (applied, invalid, unavailable).",
    ["outcome"],
)
ENDED = Counter("customer_campaign_ends", "RewardCampaigns ended because they were deleted.")
POINTS_AWARDED = Gauge(
    "customer_campaign_points_awarded",
    "Points a campaign has awarded, as of its last status refresh.",
    ["campaign"],
)
CUSTOMERS_REACHED = Gauge(
    "customer_campaign_customers_reached",
    "Customers a campaign has awarded points to, as of its last status refresh.",
    ["campaign"],
)
BUDGET_LEFT = Gauge(
    "customer_campaign_budget_left",
    "Points left in a campaign's budget (campaigns without a budget have no series).",
    ["campaign"],
)
PER_CAMPAIGN = (POINTS_AWARDED, CUSTOMERS_REACHED, BUDGET_LEFT)


def record_progress(
    namespace: str, name: str, points: int, customers: int, budget_left: int | None
) -> None:
    campaign = f"{namespace}/{name}"
    POINTS_AWARDED.labels(campaign).set(points)
    CUSTOMERS_REACHED.labels(campaign).set(customers)
    if budget_left is not None:
        BUDGET_LEFT.labels(campaign).set(budget_left)


def forget(namespace: str, name: str) -> None:
    """Drop a deleted campaign's series."""
    for gauge in PER_CAMPAIGN:
        with contextlib.suppress(KeyError):  # never refreshed: no series
            gauge.remove(f"{namespace}/{name}")
