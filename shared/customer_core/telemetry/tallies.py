"""Prometheus counters, gauges and histograms for code that runs on every call.

prometheus_client takes a lock per increment and checks the metric's state on
every call: about 14 µs of a cached hot-path RPC's ~300 µs went there
(bench/api.py --profile). These count in plain attributes instead and are
turned into metric families only when /metrics is scraped.

One writer: each metric is written only from the event loop's thread. The
scrape reads from the metrics server's thread without a lock; under the GIL it
sees each number whole, at worst a call behind, and a histogram's buckets,
sum and count may differ by a call in flight, as with prometheus_client's own.
The names, labels and samples are those prometheus_client would export
(`_total` and `_created` for counters, cumulative `le` buckets).
"""

from __future__ import annotations

import time
from abc import abstractmethod
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from typing import Generic, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

_Child = TypeVar("_Child")


class CounterChild:
    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("counters only go up")
        self.value += amount


class GaugeChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount

    def set(self, value: float) -> None:
        self.value = float(value)


class HistogramChild:
    __slots__ = ("bounds", "counts", "created", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last is +Inf
        self.sum = 0.0
        self.created = time.time()

    def observe(self, amount: float) -> None:
        # `le` is inclusive: a value equal to a bound is in that bound's bucket.
        self.counts[bisect_left(self.bounds, amount)] += 1
        self.sum += amount


class _Labelled(Collector, Generic[_Child]):
    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], _Child] = {}
        if not self.labelnames:
            self._children[()] = self._new_child()
        if registry is not None:
            registry.register(self)

    @abstractmethod
    def _new_child(self) -> _Child: ...

    def labels(self, *values: str) -> _Child:
        """The child for these label values (look it up once, then keep it)."""
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values}")
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._new_child()
        return child

    def _items(self) -> Iterable[tuple[tuple[str, ...], _Child]]:
        # A copy: the loop thread may add a child while the scrape iterates.
        return list(self._children.items())

    def describe(self) -> Iterator[Metric]:
        yield from self._families(())

    def collect(self) -> Iterator[Metric]:
        yield from self._families(self._items())

    @abstractmethod
    def _families(self, items: Iterable[tuple[tuple[str, ...], _Child]]) -> Iterator[Metric]: ...


class FastCounter(_Labelled[CounterChild]):
    type = "counter"

    def _new_child(self) -> CounterChild:
        return CounterChild()

    def inc(self, amount: float = 1.0) -> None:
        self.labels().inc(amount)

    def _families(self, items: Iterable[tuple[tuple[str, ...], CounterChild]]) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in items:
            family.add_metric(values, child.value, created=child.created)
        yield family


class FastGauge(_Labelled[GaugeChild]):
    type = "gauge"

    def _new_child(self) -> GaugeChild:
        return GaugeChild()

    def set(self, value: float) -> None:
        self.labels().set(value)

    def _families(self, items: Iterable[tuple[tuple[str, ...], GaugeChild]]) -> Iterator[Metric]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in items:
            family.add_metric(values, child.value)
        yield family


class FastHistogram(_Labelled[HistogramChild]):
    type = "histogram"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        bounds = tuple(float(b) for b in buckets if b != float("inf"))
        if list(bounds) != sorted(set(bounds)) or not bounds:
            raise ValueError(f"{name}: buckets must be increasing, got {buckets}")
        self.bounds = bounds
        super().__init__(name, documentation, labelnames, registry)

    def _new_child(self) -> HistogramChild:
        return HistogramChild(self.bounds)

    def _families(
        self, items: Iterable[tuple[tuple[str, ...], HistogramChild]]
    ) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in items:
            counts, total = list(child.counts), child.sum
            cumulative, running = [], 0
            for bound, count in zip((*self.bounds, float("inf")), counts, strict=True):
                running += count
                cumulative.append((floatToGoString(bound), float(running)))  # type: ignore[no-untyped-call]
            family.add_metric(values, cumulative, total)
            family.samples.append(
                Sample(
                    f"{self.name}_created",
                    dict(zip(self.labelnames, values, strict=True)),
                    child.created,
                )
            )
        yield family
