"""The older view: our own grpc.aio load generator, alternating rounds bare/api.

Kept as a second opinion on the k6 figures (`bench/api.py --python-view`): the same
calls measured by a Python client that shares the interpreter's costs.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc

Call = Callable[[int], Awaitable[Any]]
TARGETS = {"GetCustomer": 0.7, "GetOrderContext": 0.5}


async def drive(call: Call, concurrency: int, seconds: float) -> tuple[float, list[float]]:
    """`concurrency` workers calling back to back for `seconds`; (req/s, latencies)."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(n: int) -> None:
        i = n
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - start)
            i += concurrency

    start = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return len(latencies) / (time.perf_counter() - start), latencies


class _Bearer(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Sends `authorization: Bearer <token>` with every call."""

    def __init__(self, token: str) -> None:
        self.metadata = (("authorization", f"Bearer {token}"),)

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        details = details._replace(metadata=(*(details.metadata or ()), *self.metadata))
        return await continuation(details, request)


def stubs(
    port: int, channels: int, token: str | None = None
) -> list[customer_pb2_grpc.CustomerServiceStub]:
    interceptors = [_Bearer(token)] if token else None
    return [
        customer_pb2_grpc.CustomerServiceStub(
            grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=interceptors)
        )
        for _ in range(channels)
    ]


def callers(
    port: int, ids: list[uuid.UUID], channels: int, token: str | None = None
) -> dict[str, Call]:
    pool = stubs(port, channels, token)
    get = [pb.GetCustomerRequest(name=f"customers/{i}") for i in ids]
    ctx = [pb.GetOrderContextRequest(customer=f"customers/{i}") for i in ids]
    check = [pb.ValidateCustomerRequest(customer=f"customers/{i}") for i in ids]
    usual = [pb.GetUsualOrderRequest(customer=f"customers/{i}") for i in ids]

    def get_customer(i: int) -> Awaitable[Any]:
        return pool[i % channels].GetCustomer(get[i % len(get)])

    def get_context(i: int) -> Awaitable[Any]:
        return pool[i % channels].GetOrderContext(ctx[i % len(ctx)])

    def validate(i: int) -> Awaitable[Any]:
        return pool[i % channels].ValidateCustomer(check[i % len(check)])

    def get_usual(i: int) -> Awaitable[Any]:
        return pool[i % channels].GetUsualOrder(usual[i % len(usual)])

    return {
        "GetCustomer": get_customer,
        "GetOrderContext": get_context,
        "ValidateCustomer": validate,
        "GetUsualOrder": get_usual,
    }


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def python_view(
    api: dict[str, Call], bare: dict[str, Call], concurrency: int, seconds: float, rounds: int
) -> list[dict[str, Any]]:
    """Alternating rounds (bare, api, ...) per method; prints a table, returns figures."""
    figures: list[dict[str, Any]] = []
    print(
        f"python client: {concurrency} concurrent callers, {rounds} alternating rounds "
        f"of {seconds:.0f}s each side"
    )
    print(f"{'call':<18}{'server':<8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}")
    for method, target in TARGETS.items():
        rps: dict[str, list[float]] = {"bare": [], "api": []}
        lat: dict[str, list[float]] = {"bare": [], "api": []}
        await drive(bare[method], concurrency, 1.0)  # warm both paths
        await drive(api[method], concurrency, 1.0)
        for _ in range(rounds):
            for side, call in (("bare", bare[method]), ("api", api[method])):
                r, took = await drive(call, concurrency, seconds)
                rps[side].append(r)
                lat[side].extend(took)
        med = {side: statistics.median(v) for side, v in rps.items()}
        for side in ("bare", "api"):
            print(
                f"{method:<18}{side:<8}{med[side]:>9.0f}{pct(lat[side], 0.5):>9.2f}"
                f"{pct(lat[side], 0.99):>9.2f}"
            )
        ratio = med["api"] / med["bare"]
        print(f"{method:<18}ratio {ratio:.2f} (python client, target >= {target})")
        figures.append(
            {
                "name": f"{method} req/s (python client)",
                "value": round(med["api"], 1),
                "unit": "req/s",
                "baseline": round(med["bare"], 1),
                "baseline_name": "bare grpc.aio server",
                "ratio": round(ratio, 3),
                "target": f">= {target} of baseline",
                "pass": ratio >= target,
            }
        )
    return figures
