"""Running a process's main coroutine until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Awaitable, Callable

import uvloop

# Allocations (net of frees) between two young-generation collections.
GC_THRESHOLD = 50_000


def use_uvloop() -> None:
    """Run the process's event loop on libuv. The api and the consumer hand the
    loop thousands of socket reads, futures and callbacks a second: asyncio's own
    loop was a quarter of a cached call's CPU (bench/api.py --profile) and a
    seventh of the consumer's (bench/consumer.py)."""
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def tune_gc() -> None:
    """Collect garbage rarely, and never look at what start-up built again.

    Call once start-up is done. A consumer batch or an import allocates hundreds
    of thousands of short-lived objects, nearly all freed by reference counting;
    with the default thresholds the cyclic collector ran hundreds of times per
    20,000 events, each pass walking the batch still in hand (up to a third of
    the consumer's CPU, a sixth of the api's during an import).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 100)


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[int]]) -> int:
    """Run `main(stop)`; `stop` is set on SIGTERM or SIGINT, and `main` shuts down cleanly."""

    async def runner() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await main(stop)

    return asyncio.run(runner())
