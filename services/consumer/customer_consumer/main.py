"""`customer-service consumer`: order events from Kafka into CustomerDB.

customer-service consumer                 consume until SIGTERM
customer-service consumer demo-traffic    publish demo order events (dev)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from datetime import UTC, datetime

from customer_consumer import demo_traffic, kafka, metrics, settings
from customer_consumer.health import Health, serve
from customer_consumer.runner import Runner
from customer_core import telemetry
from customer_core.context import Context
from customer_core.context.runtime import run_until_signalled, tune_gc, use_uvloop
from customer_core.usecases.events import customers_for_demo

log = logging.getLogger("customer_consumer")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="customer-service consumer", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo-traffic", help="publish realistic demo order events")
    demo.add_argument("--rate", type=float, default=3.0, help="events per second (default 3)")
    demo.add_argument("--count", type=int, default=0, help="stop after this many (0: never)")
    opts = parser.parse_args(argv)
    if opts.rate <= 0 if opts.command else False:
        parser.error("--rate must be positive")
    if opts.command is None:
        kafka.check_codecs()  # before anything else: it is the image, not the settings
    config = settings.load()
    telemetry.setup(config.core, "consumer")
    use_uvloop()
    if opts.command == "demo-traffic":
        return run_until_signalled(lambda stop: _demo(config, opts.rate, opts.count, stop))
    return run_until_signalled(lambda stop: _consume(config, stop))


async def _consume(config: settings.ConsumerSettings, stop: asyncio.Event) -> int:
    ctx = await Context.create(config.core)
    tune_gc()
    health = Health(config.stuck_seconds)
    server = await serve(health, config.health_port)
    try:
        metrics.start_at_zero(config.topics)
        metrics_port = telemetry.start_metrics_server(config.core.metrics_port)
        health_port = server.sockets[0].getsockname()[1]
        log.info("consumer health on :%s, metrics on :%s", health_port, metrics_port)
        await Runner(config, ctx, health).run(stop)
    finally:
        server.close()
        await ctx.aclose()
    return 0


async def _demo(
    config: settings.ConsumerSettings, rate: float, count: int, stop: asyncio.Event
) -> int:
    ctx = await Context.create(config.core)
    try:
        customers = await customers_for_demo(ctx)
        while not customers and not stop.is_set():
            log.info("demo traffic: no customers yet; waiting")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 5)
            customers = await customers_for_demo(ctx)
    finally:
        await ctx.aclose()
    if stop.is_set():
        return 0
    topics = list(config.topics)
    await kafka.ensure_topics(config.core.kafka, topics, config.partitions)
    producer = kafka.producer(config.core.kafka)
    await producer.start()
    rng = random.Random()
    sent, began = 0, time.monotonic()
    log.info("demo traffic: %.1f events/s for %d customers", rate, len(customers))
    try:
        for due, event in demo_traffic.live_schedule(rng, customers, rate):
            wait = began + due - time.monotonic()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
            if stop.is_set():
                break
            event = dataclasses.replace(event, occurred_at=datetime.now(UTC))
            await demo_traffic.publish(
                producer, config.topic_prefix, [demo_traffic.outgoing(event)], rng
            )
            sent += 1
            if count and sent >= count:
                break
    finally:
        await producer.stop()
    log.info("demo traffic: sent %d events", sent)
    return 0
