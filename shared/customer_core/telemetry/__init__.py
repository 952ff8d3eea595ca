"""Logs, metrics and traces, set up the same way in every process.

- Logs: one JSON object per line carrying `trace_id`, `span_id` and the request
  id (from `x-request-id` metadata, or generated) of the current call.
- Metrics: a Prometheus registry served on METRICS_PORT at /metrics. Metrics
  shared by several processes are declared here; a service declares its own.
- Traces: OpenTelemetry, exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is
  set; then asyncpg is instrumented here, the gRPC server by the api service.
  Without an endpoint nothing is instrumented: spans nobody receives cost CPU.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import Histogram, start_http_server

from customer_core import __version__
from customer_core.config import Settings
from customer_core.telemetry.tallies import FastCounter

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

# ---- Metrics shared across processes ------------------------------------------

DB_QUERY_SECONDS = Histogram(
    "customer_db_query_duration_seconds",
    "Time spent in one database use case step, by operation.",
    ["operation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
CACHE_RESULTS = ("hit", "miss", "error")
CACHE_REQUESTS = FastCounter(
    "customer_cache_requests",
    "Cache look-ups by cache and result (hit, miss, error).",
    ["cache", "result"],
)


@contextmanager
def timed_query(operation: str) -> Iterator[None]:
    """Record how long a database step took under `operation`."""
    start = time.perf_counter()
    try:
        yield
    finally:
        DB_QUERY_SECONDS.labels(operation).observe(time.perf_counter() - start)


# ---- Logs ---------------------------------------------------------------------------

_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with trace and request ids."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            out["trace_id"] = format(span.trace_id, "032x")
            out["span_id"] = format(span.span_id, "016x")
        request_id = request_id_var.get()
        if request_id:
            out["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Third-party chatter at INFO drowns our own lines.
    for noisy in ("aiokafka", "kopf", "taskiq", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


# ---- Traces --------------------------------------------------------------------------

_tracing_ready = False


def setup_tracing(settings: Settings, process: str) -> TracerProvider | None:
    """Install a tracer provider (once per process); export only when an endpoint is set."""
    global _tracing_ready
    if _tracing_ready:
        return None
    _tracing_ready = True
    resource = Resource.create(
        {
            "service.name": settings.service_name,
            "service.version": __version__,
            "service.component": process,
        }
    )
    provider = TracerProvider(resource=resource)
    if settings.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(settings.otlp_endpoint)))
    trace.set_tracer_provider(provider)
    if settings.otlp_endpoint:
        # Database spans only when they go somewhere: unexported, they cost about
        # 0.1 ms of CPU per statement (measured by the import benchmark).
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

        # Parameters may carry personal data: spans keep the statement only.
        AsyncPGInstrumentor(capture_parameters=False).instrument()  # type: ignore[no-untyped-call]
    return provider


def start_metrics_server(port: int) -> int:
    """Serve /metrics on `port` (0 picks one); returns the bound port."""
    server, _thread = start_http_server(port)
    return int(server.server_port)


def setup(settings: Settings, process: str) -> None:
    setup_logging(settings.log_level, settings.log_format)
    setup_tracing(settings, process)
