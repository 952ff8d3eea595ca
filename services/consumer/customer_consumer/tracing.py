"""The batch span and the producers' traces it continues."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context as TraceContext
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from customer_consumer.records import traceparents

tracer = trace.get_tracer("customer_consumer")
_propagator = TraceContextTextMapPropagator()


def trace_of(records: Sequence[Any]) -> tuple[TraceContext | None, list[Link]]:
    """Where the batch span belongs: under the producer's span when every record of
    the batch carries the same traceparent (the whole chain, database included, is
    then one trace); otherwise a root span linked to each record's producer span."""
    headers = traceparents(records)
    links = []
    for header in headers:
        span_context = trace.get_current_span(
            _propagator.extract({"traceparent": header})
        ).get_span_context()
        if span_context.is_valid:
            links.append(Link(span_context))
    if links and len(headers) == len(records) and len(set(headers)) == 1:
        return trace.set_span_in_context(NonRecordingSpan(links[0].context)), []
    return None, links


def continue_producer_traces(links: Sequence[Link], batch: Span, started: float) -> None:
    """A span in each producer's trace for its record, linked to the batch span that
    did the work, so every produced event's trace continues into the consumer (the
    messaging convention for batches)."""
    if not links or not batch.is_recording():
        return
    to_batch = [Link(batch.get_span_context())]
    start_ns = time.time_ns() - int((time.perf_counter() - started) * 1e9)
    for link in links:
        tracer.start_span(
            "order event applied",
            context=trace.set_span_in_context(NonRecordingSpan(link.context)),
            kind=SpanKind.CONSUMER,
            links=to_batch,
            start_time=start_ns,
        ).end()
