"""API benchmark: the hot path against a bare grpc.aio server, same load, same run.

    .venv/bin/python bench/api.py [--quick] [--seconds S] [--concurrency N]

Starts its own PostgreSQL and Valkey (customer_launcher.devstack.DevStack) in a
temporary folder, migrates, seeds customers with favorites, a usual order and
points, and starts the real api (`customer-service api`, as deployed: edge
interceptor, metrics, tracing hooks) in a child process. It warms the cache,
records one real GetCustomer and GetOrderContext response, and starts a bare
grpc.aio server in another child process that answers those very bytes as
constants (so the messages are the same size). One load generator then drives
both servers in alternating rounds (bare, api, bare, api, ...): a shared,
noisy machine hits both alike. It prints requests/s, p50 and p99 for each, the
CPU time per request of the server and of Valkey (which shares the cores), and
the ratios; the last line is one JSON object for bench/run_all.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parent / "lib"))
from children import stop_children
from cpu import cpu_seconds
from serving import wait_serving

TARGETS = {"GetCustomer": 0.7, "GetOrderContext": 0.5}
CUSTOMERS = 1000

SEED = """
WITH f AS (
    INSERT INTO families (id, display_name)
    SELECT gen_random_uuid(), 'Family ' || g FROM generate_series(1, $1) g RETURNING id
), c AS (
    INSERT INTO customers (id, family_id, username, display_name, email, preferences,
                           dietary_restrictions, allergies)
    SELECT gen_random_uuid(), id, 'u' || replace(id::text, '-', ''), 'Bench Customer',
           'bench@example.com', '{"milk": "oat", "size": "large", "extra_shots": 1}',
           '{vegan,nut_free}', '{peanuts}'
    FROM f RETURNING id
), a AS (
    INSERT INTO loyalty_accounts (id, customer_id, balance, lifetime_points, last_activity_at)
    SELECT gen_random_uuid(), id, 450, 450, now() FROM c RETURNING id, customer_id
), p AS (
    INSERT INTO loyalty_points (account_id, member_id, kind, points, reason, source,
                                idempotency_key)
    SELECT id, customer_id, 'earn', 450, 'seed', 'order', 'seed:' || id FROM a
)
INSERT INTO favorites (id, customer_id, drink_id, drink_name, customization,
                       customization_key, position, is_usual)
SELECT gen_random_uuid(), customer_id, 'latte-' || k, 'Oat latte ' || k,
       '{"size": "large", "milk": "oat", "shots": 2, "syrups": ["vanilla"], "notes": ""}',
       'k' || k, k, k = 0
FROM a, generate_series(0, 2) k
"""


# ---- The bare server (child process) ------------------------------------------------


class BareServicer(customer_pb2_grpc.CustomerServiceServicer):
    def __init__(self, customer: bytes, context: bytes) -> None:
        self.customer = pb.Customer.FromString(customer)
        self.context = pb.OrderContext.FromString(context)

    async def GetCustomer(self, request: Any, context: Any) -> pb.Customer:
        return self.customer

    async def GetOrderContext(self, request: Any, context: Any) -> pb.OrderContext:
        return self.context


async def serve_bare(port: int, data: dict[str, str]) -> None:
    server = grpc.aio.server()
    customer_pb2_grpc.add_CustomerServiceServicer_to_server(  # type: ignore[no-untyped-call]
        BareServicer(bytes.fromhex(data["customer"]), bytes.fromhex(data["context"])), server
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(0)


# ---- Load generation ----------------------------------------------------------------


async def drive(
    call: Callable[[int], Awaitable[Any]], concurrency: int, seconds: float
) -> tuple[float, list[float]]:
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


def stubs(port: int, channels: int) -> list[customer_pb2_grpc.CustomerServiceStub]:
    return [
        customer_pb2_grpc.CustomerServiceStub(grpc.aio.insecure_channel(f"127.0.0.1:{port}"))
        for _ in range(channels)
    ]


def callers(
    port: int, ids: list[uuid.UUID], channels: int
) -> dict[str, Callable[[int], Awaitable[Any]]]:
    pool = stubs(port, channels)
    get = [pb.GetCustomerRequest(name=f"customers/{i}") for i in ids]
    ctx = [pb.GetOrderContextRequest(customer=f"customers/{i}") for i in ids]

    def get_customer(i: int) -> Awaitable[Any]:
        return pool[i % channels].GetCustomer(get[i % len(get)])

    def get_context(i: int) -> Awaitable[Any]:
        return pool[i % channels].GetOrderContext(ctx[i % len(ctx)])

    return {"GetCustomer": get_customer, "GetOrderContext": get_context}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


# ---- Orchestration ---------------------------------------------------------------------


def spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A child process whose stderr goes to `log` (the child keeps its own handle)."""
    with log.open("wb") as err:
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err)


async def seed(env: dict[str, str]) -> list[uuid.UUID]:
    from customer_core.config import load_settings
    from customer_core.context import connect_db
    from customer_core.db.migrate import apply_migrations

    conn = await connect_db(load_settings(env))
    try:
        await apply_migrations(conn)
        await conn.execute(SEED, CUSTOMERS)
        return [r["id"] for r in await conn.fetch("SELECT id FROM customers ORDER BY id")]
    finally:
        await conn.close()


async def wait_port(port: int, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def run(opts: argparse.Namespace, root: Path) -> dict[str, Any]:
    from customer_launcher.devstack import DevStack, free_port

    stack = DevStack.create(root, kafka=False)
    stack.start()
    children: list[subprocess.Popen[bytes]] = []
    try:
        # AUTH_MODE=none: this measures the unauthenticated path (it has no default).
        env = {**os.environ, **stack.env(), "LOG_LEVEL": "WARNING", "METRICS_PORT": "0",
               "DB_POOL_MAX": "10", "AUTH_MODE": "none"}  # fmt: skip
        ids = await seed(env)
        api_port, bare_port = free_port(), free_port()
        cli = Path(sys.executable).with_name("customer-service")
        children.append(
            spawn([str(cli), "api"], {**env, "GRPC_PORT": str(api_port)}, root / "api.log")
        )
        await wait_serving(api_port)
        api = callers(api_port, ids, opts.channels)
        for i in range(len(ids)):  # warm the cache for every customer
            await api["GetCustomer"](i)
            await api["GetOrderContext"](i)
        real = stubs(api_port, 1)[0]
        payloads = root / "payloads.json"
        payloads.write_text(json.dumps({
            "customer": (await real.GetCustomer(
                pb.GetCustomerRequest(name=f"customers/{ids[0]}"))).SerializeToString().hex(),
            "context": (await real.GetOrderContext(
                pb.GetOrderContextRequest(customer=f"customers/{ids[0]}"))).SerializeToString().hex(),
        }))  # fmt: skip
        children.append(spawn(
            [sys.executable, __file__, "--bare-server", str(bare_port), str(payloads)],
            dict(os.environ), root / "bare.log",
        ))  # fmt: skip
        await wait_port(bare_port)
        bare = callers(bare_port, ids, opts.channels)
        # Valkey shares the machine's cores: its CPU per request is part of the cost.
        assert stack.valkey is not None
        assert stack.valkey.proc is not None
        valkey_pid = stack.valkey.proc.pid
        results: dict[str, dict[str, list[float]]] = {}
        for method in TARGETS:
            rounds: dict[str, list[float]] = {
                "bare_rps": [], "api_rps": [], "bare": [], "api": [], "bare_cpu": [], "api_cpu": [],
                "bare_valkey": [], "api_valkey": [],
            }  # fmt: skip
            await drive(bare[method], opts.concurrency, 1.0)  # warm both paths
            await drive(api[method], opts.concurrency, 1.0)
            for _ in range(opts.rounds):
                for side, call, pid in (
                    ("bare", bare[method], children[1].pid), ("api", api[method], children[0].pid)
                ):  # fmt: skip
                    cpu, valkey_cpu = cpu_seconds(pid), cpu_seconds(valkey_pid)
                    rps, lat = await drive(call, opts.concurrency, opts.seconds)
                    rounds[f"{side}_rps"].append(rps)
                    rounds[f"{side}_cpu"].append((cpu_seconds(pid) - cpu) / len(lat) * 1e6)
                    rounds[f"{side}_valkey"].append(
                        (cpu_seconds(valkey_pid) - valkey_cpu) / len(lat) * 1e6
                    )
                    rounds[side].extend(lat)
            # One caller alone, back to back: the latency a lightly loaded
            # replica adds (the cache's batching window must not show here).
            for side, call in (("bare", bare[method]), ("api", api[method])):
                _, lat = await drive(call, 1, max(2.0, opts.seconds / 2))
                rounds[f"{side}_lone"] = lat
            results[method] = rounds
        return summarise(results, opts)
    finally:
        stop_children(children, 15)
        stack.stop()


def summarise(
    results: dict[str, dict[str, list[float]]], opts: argparse.Namespace
) -> dict[str, Any]:
    figures: list[dict[str, Any]] = []
    print(f"{opts.concurrency} concurrent callers on {opts.channels} channels, "
          f"{opts.rounds} alternating rounds of {opts.seconds:.0f}s each side")  # fmt: skip
    print(f"{'call':<18}{'server':<8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>12}"
          f"{'Valkey us/req':>15}")  # fmt: skip
    for method, r in results.items():
        # Median over rounds: a neighbour's burst in one round does not decide it.
        api_rps, bare_rps = statistics.median(r["api_rps"]), statistics.median(r["bare_rps"])
        ratio = api_rps / bare_rps
        for side, rps in (("bare", bare_rps), ("api", api_rps)):
            cpu = statistics.median(r[f"{side}_cpu"])
            valkey = statistics.median(r[f"{side}_valkey"])
            print(f"{method:<18}{side:<8}{rps:>9.0f}{pct(r[side], 0.5):>9.2f}"
                  f"{pct(r[side], 0.99):>9.2f}{cpu:>12.0f}{valkey:>15.0f}")  # fmt: skip
        print(f"{method:<18}ratio {ratio:.2f} (target >= {TARGETS[method]})")
        lone_api, lone_bare = pct(r["api_lone"], 0.5), pct(r["bare_lone"], 0.5)
        print(f"{method:<18}one caller alone: p50 {lone_api:.2f} ms (bare {lone_bare:.2f} ms)")
        figures.append({
            "name": f"{method} one caller alone p50", "value": round(lone_api, 3),
            "unit": "ms", "baseline": round(lone_bare, 3), "baseline_name": "bare p50 ms",
        })  # fmt: skip
        figures.append({
            "name": f"{method} req/s", "value": round(api_rps, 1), "unit": "req/s",
            "baseline": round(bare_rps, 1), "baseline_name": "bare grpc.aio server",
            "ratio": round(ratio, 3), "target": f">= {TARGETS[method]} of baseline",
            "pass": ratio >= TARGETS[method],
        })  # fmt: skip
        for side in ("api", "bare"):
            figures.append({
                "name": f"{method} {side} p50/p99", "value": round(pct(r[side], 0.5), 3),
                "unit": "ms p50", "baseline": round(pct(r[side], 0.99), 3),
                "baseline_name": "p99 ms",
            })  # fmt: skip
    return {"bench": "api", "figures": figures}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short rounds (about a minute)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per round and side")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument(
        "--bare-server", nargs=2, metavar=("PORT", "PAYLOADS"), help=argparse.SUPPRESS
    )
    opts = parser.parse_args()
    if opts.bare_server:
        payloads = json.loads(Path(opts.bare_server[1]).read_text())
        asyncio.run(serve_bare(int(opts.bare_server[0]), payloads))
        return 0
    opts.seconds = opts.seconds or (3.0 if opts.quick else 8.0)
    opts.rounds = opts.rounds or (3 if opts.quick else 5)
    with tempfile.TemporaryDirectory(prefix="customer-bench-api-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # PostgreSQL runs as another user when we are root
        result = asyncio.run(run(opts, root))
    print(json.dumps(result))
    return 0 if all(f.get("pass", True) for f in result["figures"]) else 1


if __name__ == "__main__":
    sys.exit(main())
