"""Local cache benchmark: how long an invalidation takes to reach another replica.

    .venv/bin/python bench/local_cache.py [--quick]

Starts its own Valkey (customer_launcher.devstack) in a temporary folder. Replica
B is a LocalCache with its Tracker (CLIENT TRACKING BCAST, as in the api) on an
event loop of its own thread; the writer, on the main thread's loop, bumps a
customer's generation with INCR as `Cache.invalidate` and the consumer do. The
delivery time is from just before the INCR is sent to the moment B's local
cache evicts the customer: the window in which replica B may still serve the
old value after the write's bump (its own replica evicts synchronously). The
writer waits for each delivery before the next bump, so these are idle-system
figures; the run's load average is printed with them.

The last line is one JSON object for bench/run_all.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import redis.asyncio as redis

from customer_core.cache import GLOBAL_GEN, generation_key
from customer_core.local_cache import LocalCache
from customer_core.tracking import Tracker
from customer_launcher.devstack import Valkey, free_port

P99_TARGET_MS = 5.0


class Timed(LocalCache):
    """Records when each customer's invalidation arrived."""

    def __init__(self) -> None:
        super().__init__(10_000, 1 << 24, 300)
        self.arrived: dict[uuid.UUID, float] = {}
        self.signal = threading.Event()

    def invalidate(self, *customer_ids: uuid.UUID) -> None:
        now = time.perf_counter()
        super().invalidate(*customer_ids)
        for c in customer_ids:
            self.arrived[c] = now
        self.signal.set()


def replica_b(port: int, local: Timed, stop: threading.Event) -> None:
    async def run() -> None:
        tracker = Tracker(local, "127.0.0.1", port, None, GLOBAL_GEN)
        tracker.start()
        await asyncio.to_thread(stop.wait)
        await tracker.close()

    asyncio.run(run())


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(port: int, local: Timed, n: int) -> list[float]:
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    while not local.tracking:
        if time.monotonic() > deadline:
            raise SystemExit("replica B never started tracking")
        await asyncio.sleep(0.01)
    delays = []
    for _ in range(n):
        cid = uuid.uuid4()
        local.signal.clear()
        t0 = time.perf_counter()
        await client.incr(generation_key(cid))
        while cid not in local.arrived:
            if not await asyncio.to_thread(local.signal.wait, 2.0):
                raise SystemExit("an invalidation did not arrive within 2 s")
            local.signal.clear()
        delays.append(local.arrived.pop(cid) - t0)
    await client.aclose()
    return delays


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--bumps", type=int, default=0)
    args = parser.parse_args()
    n = args.bumps or (500 if args.quick else 3000)
    root = Path(tempfile.mkdtemp(prefix="bench-local-cache-"))
    server = Valkey(root, free_port())
    server.prepare()
    server.start()
    local, stop = Timed(), threading.Event()
    thread = threading.Thread(target=replica_b, args=(server.port, local, stop))
    thread.start()
    try:
        delays = asyncio.run(measure(server.port, local, n))
    finally:
        stop.set()
        thread.join()
        server.stop()
    p50, p99 = pct(delays, 0.5) * 1000, pct(delays, 0.99) * 1000
    load = os.getloadavg()[0]
    print(f"invalidation delivery to another replica over {n} bumps (load average {load:.2f}):")
    print(f"  p50 {p50:.3f} ms   p99 {p99:.3f} ms   max {max(delays) * 1000:.3f} ms")
    figures = [
        {"name": "local cache invalidation p50", "value": round(p50, 3), "unit": "ms"},
        {
            "name": "local cache invalidation p99",
            "value": round(p99, 3),
            "unit": "ms",
            "target": f"<= {P99_TARGET_MS} ms",
            "pass": p99 <= P99_TARGET_MS,
        },
    ]
    print(json.dumps({"bench": "local_cache", "figures": figures}))
    sys.exit(0)


if __name__ == "__main__":
    main()
