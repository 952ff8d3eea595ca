"""`customer-service api`: serve the gRPC API until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging

import uvloop

from customer_api.security.settings import load_security_settings
from customer_api.server import build_server
from customer_core import telemetry
from customer_core.config import load_settings
from customer_core.context import Context
from customer_core.context.runtime import run_until_signalled

log = logging.getLogger("customer_api")
# Allocations (net of frees) between two young-generation collections.
GC_THRESHOLD = 50_000


async def serve(stop: asyncio.Event) -> int:
    settings = load_settings()
    # Before anything connects: an api without AUTH_MODE (or with a bad security
    # variable) exits 2 with one line naming it.
    security = load_security_settings()
    telemetry.setup(settings, "api")
    if settings.otlp_endpoint:
        # Server spans only when they go somewhere: unexported, they cost about a
        # quarter of a cached call's CPU (bench/api.py).
        from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorServer

        GrpcAioInstrumentorServer().instrument()  # type: ignore[no-untyped-call]
    metrics_port = telemetry.start_metrics_server(settings.metrics_port)
    ctx = await Context.create(settings, local_cache=True)
    tune_gc()
    try:
        api = build_server(ctx, settings.grpc_port, security=security)
        await api.start()
        if api.secure:
            log.info(
                "serving gRPC over TLS", extra={"grpc_port": api.port, "metrics_port": metrics_port}
            )
        else:
            # Plaintext is for development: say so loudly, every start.
            log.warning(
                "serving gRPC in PLAINTEXT (no TLS_CERT_FILE): for development only",
                extra={"grpc_port": api.port, "metrics_port": metrics_port},
            )
        await stop.wait()
        log.info("SIGTERM: draining", extra={"grace_seconds": settings.grpc_grace_seconds})
        await api.stop(settings.grpc_grace_seconds)
    finally:
        await ctx.aclose()
    return 0


def tune_gc() -> None:
    """Collect garbage rarely, and never walk what start-up built again: an import
    holds thousands of records in flight, and with the default thresholds the
    cyclic collector took a sixth of the api's CPU (bench/streams.py, py-spy)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 100)


def main(argv: list[str]) -> int:
    argparse.ArgumentParser(prog="customer-service api").parse_args(argv)
    # libuv's loop, as the consumer runs: grpc.aio hands every call to the loop,
    # and asyncio's own loop was a quarter of a cached call's CPU
    # (bench/api.py --profile); the bench's bare server runs on it too.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return run_until_signalled(serve)
