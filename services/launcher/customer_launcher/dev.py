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
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from customer_core.config import load_settings
from customer_core.context import Context
from customer_core.usecases import schema
from customer_launcher.devstack import DevStack, free_port

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
    replica: int = 0
    env: dict[str, str] = field(default_factory=dict)
    restarts: int = 0
    args: tuple[str, ...] = ()


# Where `--state-file` tells tools (the e2e suite, bench/soak.py) each process's pid and ports.
STATE_FILE = "dev-state.json"


@dataclass
class Launcher:
    env: dict[str, str]
    children: list[Child] = field(default_factory=list)
    # Restart a process that exits, as Kubernetes would (`--restart`).
    restart: bool = False
    state_path: Path | None = None

    def spawn(self, name: str, *args: str, replica: int = 0) -> None:
        cmd = [sys.executable, "-m", "customer_launcher", name, *args]
        proc = subprocess.Popen(cmd, env=self.env, start_new_session=True)
        self.children.append(Child(name, proc, replica=replica, env=self.env, args=args))
        self.write_state()

    def watch(self) -> None:
        for child in self.children:
            code = child.proc.poll()
            if code is not None and not child.reported:
                child.reported = True
                print(f"[dev] {child.name} exited with status {code}", flush=True)
                if self.restart:
                    cmd = [sys.executable, "-m", "customer_launcher", child.name, *child.args]
                    child.proc = subprocess.Popen(cmd, env=child.env, start_new_session=True)
                    child.reported = False
                    child.restarts += 1
                    print(f"[dev] {child.name} restarted (pid {child.proc.pid})", flush=True)
                    self.write_state()

    def write_state(self) -> None:
        """Each process's pid and ports, as JSON, replaced atomically."""
        if self.state_path is None:
            return
        state = {
            "pid": os.getpid(),
            "processes": [
                {
                    "name": c.name,
                    "args": list(c.args),
                    "replica": c.replica,
                    "pid": c.proc.pid,
                    "restarts": c.restarts,
                    "grpc_port": int(c.env["GRPC_PORT"]) if c.name == "api" else None,
                    "metrics_port": int(c.env.get("METRICS_PORT", "0")),
                }
                for c in self.children
            ],
        }
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_path)

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
    # The api has no default AUTH_MODE; dev alone picks the open one (the banner says so).
    if not env.get("AUTH_MODE"):
        env["AUTH_MODE"] = "none"
    if "METRICS_PORT" not in os.environ:
        env["METRICS_PORT"] = str(METRICS_PORTS.get(name, 0))
    return env


async def prepare_database(seed: bool) -> str:
    settings = load_settings()
    applied = await schema.migrate(settings)
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
    auth = process_env({}, "api")["AUTH_MODE"]
    note = "  (set by dev: NO authentication; never deploy this)" if auth == "none" else ""
    lines.append(f"  {'AUTH_MODE':<15} {auth}{note}")
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
        "--no-demo-traffic", action="store_true", help="do not publish demo order events"
    )
    parser.add_argument(
        "--only", default=",".join(PROCESSES), help="comma-separated processes to run"
    )
    parser.add_argument(
        "--api-replicas", type=int, default=1, help="api processes, on consecutive gRPC ports"
    )
    parser.add_argument(
        "--restart", action="store_true", help="restart a process that exits, as Kubernetes would"
    )
    parser.add_argument(
        "--state-file", action="store_true", help=f"write pids and ports to DATA_DIR/{STATE_FILE}"
    )
    opts = parser.parse_args(argv)
    if opts.api_replicas < 1:
        parser.error("--api-replicas must be at least 1")
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
    launcher = Launcher(env={}, restart=opts.restart)
    if opts.state_file:
        launcher.state_path = stack.root / STATE_FILE
    try:
        os.environ.update(stack.env())
        print(f"[dev] {asyncio.run(prepare_database(seed=not opts.no_seed))}", flush=True)
        for name in only:
            replicas = opts.api_replicas if name == "api" else 1
            for replica in range(replicas):
                launcher.env = process_env(stack.env(), name)
                if replicas > 1 or opts.state_file:
                    _pick_ports(launcher.env, name, replica)
                launcher.spawn(name, replica=replica)
        if "consumer" in only and not opts.no_demo_traffic:
            # A few order events a second for the demo customers, so statistics,
            # points and streams visibly move (`customer-service consumer demo-traffic`).
            launcher.env = process_env(stack.env(), "demo-traffic")
            launcher.spawn("consumer", "demo-traffic", "--rate", "3")
        print(banner(stack, {**os.environ}), flush=True)
        stop = _wait_for_signal(launcher)
        print(f"[dev] {stop}: stopping processes, then servers ...", flush=True)
    finally:
        launcher.stop()
        stack.stop()
    return 0


def _pick_ports(env: dict[str, str], name: str, replica: int) -> None:
    # Replicas need ports of their own; a state file needs ports known before
    # the child binds them (a taken port falls back to any free one).
    metrics = int(env["METRICS_PORT"])
    env["METRICS_PORT"] = str(free_port(metrics + 10 * replica if metrics else 0))
    if name == "api":
        grpc_port = int(env.get("GRPC_PORT", "50052"))
        env["GRPC_PORT"] = str(free_port(grpc_port + replica if grpc_port else 0))


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
