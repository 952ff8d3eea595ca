"""`customer-service api`: serve the gRPC API until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging

from customer_api.security.settings import load_security_settings
from customer_api.server import build_server
from customer_core import telemetry
from customer_core.config import load_settings
from customer_core.context import Context
from customer_core.context.runtime import run_until_signalled, tune_gc, use_uvloop

log = logging.getLogger("customer_api")


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


def main(argv: list[str]) -> int:
    argparse.ArgumentParser(prog="customer-service api").parse_args(argv)
    use_uvloop()  # the bench's bare server runs on it too (bench/lib/bare_server.py)
    return run_until_signalled(serve)
