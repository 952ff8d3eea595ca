"""`customer-service dev`: every process but the operator, on embedded servers.

Servers start only for the variables that are unset (DB_HOST, VALKEY_HOST,
KAFKA_BROKERS); their data lives in a git-ignored folder and is reused on the
next start. Then it migrates, seeds demo data, and runs api, consumer,
scheduler and worker as separate child processes until Ctrl-C, when it stops
them (SIGTERM, so they drain) and then the servers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from customer_core.config import load_settings
from customer_core.context import Context, connect_db
from customer_core.db.migrate import apply_migrations
from customer_launcher.devstack import DevStack

PROCESSES = ("api", "consumer", "scheduler", "worker")
# Stable ports on a developer's machine, so bookmarks and clients keep working;
# a taken one falls back to any free port.
PREFERRED_PORTS = (55432, 56379, 59092)
METRICS_PORTS = {"api": 9464, "consumer": 9465, "scheduler": 9466, "worker": 9467}


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    reported: bool = False


@dataclass
class Launcher:
    env: dict[str, str]
    children: list[Child] = field(default_factory=list)

    def spawn(self, name: str, *args: str) -> None:
        cmd = [sys.executable, "-m", "customer_launcher", name, *args]
        proc = subprocess.Popen(cmd, env=self.env, start_new_session=True)
        self.children.append(Child(name, proc))

    def watch(self) -> None:
        for child in self.children:
            code = child.proc.poll()
            if code is not None and not child.reported:
                child.reported = True
                print(f"[dev] {child.name} exited with status {code}", flush=True)

    def stop(self, grace: float = 15.0) -> None:
        for child in self.children:
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in self.children:
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()


def process_env(stack_env: dict[str, str], name: str) -> dict[str, str]:
    env = {**os.environ, **stack_env}
    env.setdefault("LOG_FORMAT", "text")
    if "METRICS_PORT" not in os.environ:
        env["METRICS_PORT"] = str(METRICS_PORTS.get(name, 0))
    return env


async def prepare_database(seed: bool) -> str:
    settings = load_settings()
    conn = await connect_db(settings)
    try:
        applied = await apply_migrations(conn)
    finally:
        await conn.close()
    summary = f"migrations applied: {len(applied)}"
    if seed:
        from customer_core.usecases.demo import seed_demo

        ctx = await Context.create(settings)
        try:
            summary += f"; demo data: {await seed_demo(ctx)}"
            # The example RewardCampaigns, as the operator would apply them.
            from customer_operator.campaigns_cli import apply_examples

            summary += f"; {await apply_examples(ctx)}"
        finally:
            await ctx.aclose()
    return summary


def banner(stack: DevStack, env: dict[str, str]) -> str:
    grpc_port = env.get("GRPC_PORT", "50052")
    lines = ["", "customer-service dev is running:"]
    lines.append(
        f"  gRPC API        127.0.0.1:{grpc_port}  (reflection on: grpcurl -plaintext ...)"
    )
    for name in PROCESSES:
        port = process_env({}, name)["METRICS_PORT"]
        lines.append(f"  {name + ' /metrics':<15} http://127.0.0.1:{port}/metrics")
    where = {
        "PostgreSQL": (stack.postgres, f"{env.get('DB_HOST')}:{env.get('DB_PORT')}"),
        "Valkey": (stack.valkey, f"{env.get('VALKEY_HOST')}:{env.get('VALKEY_PORT')}"),
        "Kafka": (stack.kafka, env.get("KAFKA_BROKERS", "")),
    }
    for label, (server, address) in where.items():
        kind = "embedded" if server is not None else "external"
        lines.append(f"  {label:<15} {address}  ({kind})")
    lines += [f"  data            {stack.root}", "Ctrl-C stops everything.", ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="customer-service dev")
    parser.add_argument("--data-dir", default=".dev-data", help="where embedded servers keep data")
    parser.add_argument("--no-seed", action="store_true", help="do not create demo data")
    parser.add_argument(
        "--only", default=",".join(PROCESSES), help="comma-separated processes to run"
    )
    opts = parser.parse_args(argv)
    only = [p for p in opts.only.split(",") if p]
    unknown = sorted(set(only) - set(PROCESSES))
    if unknown:
        parser.error(f"--only: unknown process {', '.join(unknown)}")

    load_settings()  # a bad variable stops us before any server starts
    stack = DevStack.create(
        Path(opts.data_dir),
        postgres=not os.environ.get("DB_HOST"),
        valkey=not os.environ.get("VALKEY_HOST"),
        kafka=not os.environ.get("KAFKA_BROKERS"),
        preferred_ports=PREFERRED_PORTS,
    )
    print("[dev] starting servers ...", flush=True)
    stack.start()
    launcher = Launcher(env={})
    try:
        os.environ.update(stack.env())
        print(f"[dev] {asyncio.run(prepare_database(seed=not opts.no_seed))}", flush=True)
        for name in only:
            launcher.env = process_env(stack.env(), name)
            launcher.spawn(name)
        print(banner(stack, {**os.environ}), flush=True)
        stop = _wait_for_signal(launcher)
        print(f"[dev] {stop}: stopping processes, then servers ...", flush=True)
    finally:
        launcher.stop()
        stack.stop()
    return 0


def _wait_for_signal(launcher: Launcher) -> str:
    received: list[str] = []

    def handler(signum: int, _frame: object) -> None:
        received.append(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    while not received:
        launcher.watch()
        time.sleep(0.2)
    return received[0]
