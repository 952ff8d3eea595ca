"""Soak: mixed gRPC and order-event load on every process for a configurable time (not in CI).

Starts the same processes as the e2e suite (`customer-service dev` with two api
replicas, consumer, scheduler and worker on embedded servers of its own, see
tests/support/e2e_stack.py) and drives them with the e2e Order Service simulator
(hot-path calls, redemptions, the four topics with duplicates and reordering)
plus a reader loop (statistics and balances). It reports:

- throughput: orders, events and RPCs per second;
- p50/p99 per RPC, as the client measured it;
- consumer lag over time (the group's committed offsets against the ends);
- RSS and open file descriptors of each process after warm-up and at the end,
  with a stated bound on growth;
- errors by status;
- and that the service still agrees exactly with the model at the end.

    .venv/bin/python bench/soak.py --seconds 600 --rate 20

The last stdout line is the JSON `make bench` understands (bench/run_all.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc
from tests.support.e2e_checks import converge, group_lag, wait_lag_zero
from tests.support.e2e_model import Model
from tests.support.e2e_simulator import Simulator, open_channel
from tests.support.e2e_stack import E2EStack, Proc

# Growth allowed between the sample after warm-up and the end.
RSS_GROWTH_FACTOR = 1.5
RSS_GROWTH_SLACK_MB = 30.0
FD_GROWTH = 25
HOT_PATH_P99_MS = 100.0
ENV = {
    "GRPC_PORT": "0",
    "METRICS_PORT": "0",
    "CONSUMER_HEALTH_PORT": "0",
    "LOG_FORMAT": "text",
    "LOG_LEVEL": "WARNING",
    "KAFKA_TOPIC_PARTITIONS": "3",
    "POINTS_PER_CURRENCY_UNIT": "10",
    "POINTS_ROUNDING": "floor",
}


def resources(p: Proc) -> tuple[float, int]:
    """(RSS in MB, open file descriptors) of one process."""
    rss_kb = 0
    for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
    return rss_kb / 1024, len(os.listdir(f"/proc/{p.pid}/fd"))


def sample(stack: E2EStack) -> dict[str, tuple[int, float, int]]:
    out = {}
    for p in stack.processes():
        rss, fds = resources(p)
        out[f"{p.name}{p.replica if p.name == 'api' else ''}"] = (p.pid, rss, fds)
    return out


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def reader(sim: Simulator, stub: customer_pb2_grpc.CustomerServiceStub, rate: float) -> None:
    """Statistics and balance reads, as the apps do, at `rate` calls per second."""
    members = list(sim.model.members)
    rng = random.Random(7)
    while True:
        name = rng.choice(members)
        await sim.call(
            "GetCustomerStats",
            lambda n=name: stub.GetCustomerStats(pb.GetCustomerStatsRequest(customer=n), timeout=5),
        )
        await sim.call(
            "GetLoyaltyAccount",
            lambda n=name: stub.GetLoyaltyAccount(
                pb.GetLoyaltyAccountRequest(customer=n), timeout=5
            ),
        )
        await asyncio.sleep(2 / rate)


async def lag_sampler(stack: E2EStack, timeline: list[tuple[float, int]], began: float) -> None:
    while True:
        try:
            timeline.append((round(time.monotonic() - began, 1), await group_lag(stack.brokers)))
        except Exception:
            timeline.append((round(time.monotonic() - began, 1), -1))
        await asyncio.sleep(5)


async def soak(opts: argparse.Namespace, stack: E2EStack) -> dict[str, object]:
    channel = open_channel(stack.api_ports)
    stub = customer_pb2_grpc.CustomerServiceStub(channel)
    sim = Simulator(stub, stack.brokers, Model(points_per_unit=10), seed=opts.seed)
    await sim.start()
    try:
        await sim.create_members(families=opts.families, per_family=4)
        # Warm-up: imports, pools and caches filled before the first resource sample.
        await sim.run(orders=max(20, int(opts.rate * 5)), concurrency=opts.concurrency)
        await wait_lag_zero(stack)
        start = sample(stack)
        calls_before, events_before = sum(sim.tally.calls.values()), sim.tally.events
        sim.tally.latencies.clear()
        timeline: list[tuple[float, int]] = []
        began = time.monotonic()
        background = [
            asyncio.create_task(reader(sim, stub, opts.read_rate)),
            asyncio.create_task(lag_sampler(stack, timeline, began)),
        ]
        orders = int(opts.rate * opts.seconds)
        await sim.run(orders=orders, seconds=opts.seconds, concurrency=opts.concurrency)
        took = time.monotonic() - began
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        drain_began = time.monotonic()
        await wait_lag_zero(stack, within=120)
        drained = time.monotonic() - drain_began
        await converge(stub, sim.model, within=120)
        end = sample(stack)
    finally:
        await sim.stop()
        await channel.close()
    calls = sum(sim.tally.calls.values()) - calls_before
    events = sim.tally.events - events_before
    return report(
        opts, sim, start, end, timeline, orders / took, events / took, calls / took, drained
    )


def report(
    opts: argparse.Namespace,
    sim: Simulator,
    start: dict[str, tuple[int, float, int]],
    end: dict[str, tuple[int, float, int]],
    timeline: list[tuple[float, int]],
    orders_s: float,
    events_s: float,
    calls_s: float,
    drained: float,
) -> dict[str, object]:
    figures: list[dict[str, object]] = [
        {
            "name": "orders/s (simulated Order Service)",
            "value": round(orders_s, 1),
            "unit": "orders/s",
            "target": f">= {0.9 * opts.rate:.1f}",
            "pass": orders_s >= 0.9 * opts.rate,
        },
        {"name": "order events/s produced", "value": round(events_s, 1), "unit": "events/s"},
        {"name": "RPCs/s", "value": round(calls_s, 1), "unit": "calls/s"},
        {
            "name": "max consumer lag",
            "value": max((lag for _t, lag in timeline), default=0),
            "unit": "records",
        },
        {
            "name": "lag drained after load",
            "value": round(drained, 1),
            "unit": "s",
            "target": "<= 60",
            "pass": drained <= 60,
        },
    ]
    print(f"soak: {opts.seconds:.0f}s at {opts.rate} orders/s, {len(sim.model.orders)} orders")
    print("  lag over time (s, records):", timeline)
    for method, values in sorted(sim.tally.latencies.items()):
        p50, p99 = pct(values, 0.5), pct(values, 0.99)
        print(f"  {method:<18} n={len(values):>6}  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms")
        hot = method in ("ValidateCustomer", "GetOrderContext")
        figure: dict[str, object] = {
            "name": f"{method} p50/p99",
            "value": round(p50, 2),
            "unit": "ms p50",
            "baseline": round(p99, 2),
            "baseline_name": "p99 ms",
        }
        if hot:
            figure.update(
                target=f"p99 <= {HOT_PATH_P99_MS:.0f} ms", **{"pass": p99 <= HOT_PATH_P99_MS}
            )
        figures.append(figure)
    for name, (pid, rss0, fd0) in sorted(start.items()):
        pid1, rss1, fd1 = end.get(name, (0, 0.0, 0))
        same = pid1 == pid  # a restarted process is not a growth measurement
        bound = rss0 * RSS_GROWTH_FACTOR + RSS_GROWTH_SLACK_MB
        print(
            f"  {name:<10} RSS {rss0:7.1f} -> {rss1:7.1f} MB   fds {fd0:4d} -> {fd1:4d}"
            f"{'' if same else '  (restarted)'}"
        )
        figures.append(
            {
                "name": f"{name} RSS end",
                "value": round(rss1, 1),
                "unit": "MB",
                "baseline": round(rss0, 1),
                "baseline_name": "after warm-up",
                "ratio": round(rss1 / rss0, 2) if rss0 else None,
                "target": f"<= x{RSS_GROWTH_FACTOR} + {RSS_GROWTH_SLACK_MB:.0f} MB",
                "pass": same and rss1 <= bound,
            }
        )
        figures.append(
            {
                "name": f"{name} open fds end",
                "value": fd1,
                "unit": "fds",
                "baseline": fd0,
                "baseline_name": "after warm-up",
                "target": f"<= +{FD_GROWTH}",
                "pass": same and fd1 <= fd0 + FD_GROWTH,
            }
        )
    errors = Counter({f"{m} {code}": n for (m, code), n in sim.tally.errors.items()})
    print("  errors by status:", dict(errors) or "none")
    figures.append(
        {
            "name": "errors",
            "value": sum(errors.values()),
            "unit": "calls",
            "target": "0",
            "pass": not errors,
        }
    )
    return {"bench": "soak", "figures": figures}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="length of the load phase")
    parser.add_argument("--quick", action="store_true", help="60 seconds")
    parser.add_argument("--rate", type=float, default=15.0, help="orders per second")
    parser.add_argument("--read-rate", type=float, default=20.0, help="read RPCs per second")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--families", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    opts = parser.parse_args()
    if opts.quick:
        opts.seconds = 60.0
    root = Path(tempfile.mkdtemp(prefix="customer-soak-"))
    root.chmod(0o755)  # PostgreSQL runs as another user when we are root
    stack = E2EStack(root, ENV)
    try:
        stack.start()
        result = asyncio.run(soak(opts, stack))
    finally:
        stack.stop()
        # Each run's servers hold hundreds of MB of data: leave nothing behind.
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result))
    return 0 if all(f.get("pass", True) for f in result["figures"]) else 1  # type: ignore[union-attr]


if __name__ == "__main__":
    sys.exit(main())
