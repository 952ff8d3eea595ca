"""The tallies export what prometheus_client would for the same calls.

Dashboards, alerts and the telemetry tests read these series by name; a tally
that drifted from prometheus_client's text (a bucket boundary, `_total`, an
`le` label) would break them silently.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from customer_core.telemetry.tallies import FastCounter, FastGauge, FastHistogram

BUCKETS = (0.0005, 0.001, 0.0025, 0.01, 0.1, 1, 2.5, 10)
LABELS = st.sampled_from(["GetCustomer", "ValidateCustomer", "CreateFamily"])
CODES = st.sampled_from(["OK", "NOT_FOUND", "INTERNAL"])
# Values on the bucket bounds as well as between them: `le` is inclusive.
AMOUNTS = st.one_of(
    st.sampled_from(BUCKETS),
    st.floats(min_value=0, max_value=50, allow_nan=False),
)


def _text(registry: CollectorRegistry) -> str:
    # `_created` holds the time each child was made, which differs by microseconds.
    return re.sub(r"(_created\{[^}]*\}) \S+", r"\1 T", generate_latest(registry).decode())


@given(st.lists(st.tuples(LABELS, CODES, AMOUNTS, st.booleans()), max_size=60))
def test_the_exposition_is_prometheus_clients(calls: list[tuple[str, str, float, bool]]) -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    counters = (
        Counter("rpcs", "Calls.", ["method", "code"], registry=theirs),
        FastCounter("rpcs", "Calls.", ["method", "code"], registry=ours),
    )
    histograms = (
        Histogram("seconds", "Latency.", ["method"], buckets=BUCKETS, registry=theirs),
        FastHistogram("seconds", "Latency.", ["method"], buckets=BUCKETS, registry=ours),
    )
    gauges = (
        Gauge("in_flight", "Now.", ["method"], registry=theirs),
        FastGauge("in_flight", "Now.", ["method"], registry=ours),
    )
    for method, code, amount, up in calls:
        for counter in counters:
            counter.labels(method, code).inc()
        for histogram in histograms:
            histogram.labels(method).observe(amount)
        for gauge in gauges:
            (gauge.labels(method).inc if up else gauge.labels(method).dec)()
    assert _text(ours) == _text(theirs)


def test_an_unlabelled_gauge_and_counter_read_from_the_start() -> None:
    registry = CollectorRegistry()
    gauge = FastGauge("tracking", "1 while tracking.", registry=registry)
    counter = FastCounter("resets", "Resets.", registry=registry)
    assert registry.get_sample_value("tracking") == 0
    gauge.set(1)
    counter.inc(2)
    assert registry.get_sample_value("tracking") == 1
    assert registry.get_sample_value("resets_total") == 2


def test_a_counter_refuses_to_go_down_and_labels_must_match() -> None:
    counter = FastCounter("calls", "Calls.", ["method"], registry=None)
    with pytest.raises(ValueError, match="only go up"):
        counter.labels("GetCustomer").inc(-1)
    with pytest.raises(ValueError, match="takes labels"):
        counter.labels("GetCustomer", "OK")


def test_a_name_registered_twice_is_refused() -> None:
    registry = CollectorRegistry()
    FastCounter("calls", "Calls.", ["method"], registry=registry)
    with pytest.raises(ValueError, match="Duplicated"):
        Counter("calls", "Calls.", ["method"], registry=registry)


def test_histogram_buckets_must_increase() -> None:
    with pytest.raises(ValueError, match="increasing"):
        FastHistogram("h", "H.", [], buckets=(1, 0.5), registry=None)
