"""The e2e process harness: embedded servers of its own, and `customer-service dev` on them.

The servers are started here (not by `dev`), with the variables that make
`dev` start none of its own (DB_HOST, VALKEY_HOST, KAFKA_BROKERS), so a test
can stop and restart them on their ports while the processes run. `dev` is
the same launcher as `make run`: it migrates, then runs two api replicas, the
consumer, the scheduler and the worker as separate processes, restarts any
that exits (`--restart`, as Kubernetes would) and writes their pids and ports
to a state file (`--state-file`).

Every process is cleaned up on teardown, even when a test failed or `dev`
itself died: `dev` gets SIGTERM (it drains its children), then anything in the
state file still running is killed.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from customer_launcher import dev as dev_launcher
from customer_launcher.devstack import DevStack, die_with_parent

STATE_FILE = "dev-state.json"


@dataclass(frozen=True)
class Proc:
    name: str
    args: tuple[str, ...]
    replica: int
    pid: int
    restarts: int
    grpc_port: int | None
    metrics_port: int


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by `dev`) counts as gone.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    return False


class E2EStack:
    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.extra_env = env
        self.servers = DevStack.create(root / "servers")
        self.dev: subprocess.Popen[bytes] | None = None
        self.log_path = root / "dev.log"
        # Servers are (re)started from this one long-lived thread: a child's
        # PDEATHSIG fires when the thread that forked it ends.
        self.spawner = ThreadPoolExecutor(1, thread_name_prefix="e2e-spawner")
        self.env: dict[str, str] = {}

    # ---- Lifecycle ----------------------------------------------------------------------------

    def start(self, timeout: float = 120.0) -> None:
        self.spawner.submit(self.servers.start).result()
        # AUTH_MODE explicitly (dev would pick none too): the e2e tests call unauthenticated.
        self.env = {**os.environ, **self.servers.env(), "AUTH_MODE": "none", **self.extra_env}
        cmd = [
            sys.executable,
            "-m",
            "customer_launcher",
            "dev",
            "--data-dir",
            str(self.root / "dev"),
            "--no-seed",
            "--api-replicas",
            "2",
            "--restart",
            "--state-file",
        ]
        if "--no-demo-traffic" in inspect.getsource(dev_launcher):
            cmd.append("--no-demo-traffic")  # demo traffic would order for our customers
        with open(self.log_path, "ab") as log:
            # A killed test run takes `dev` (and so its children) along.
            self.dev = subprocess.Popen(
                die_with_parent(cmd),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.wait_ready(timeout)

    def stop(self, keep_data: bool = False) -> None:
        try:
            if self.dev is not None and self.dev.poll() is None:
                self.dev.send_signal(signal.SIGTERM)
                try:
                    self.dev.wait(40)
                except subprocess.TimeoutExpired:
                    self.dev.kill()
                    self.dev.wait(10)
            for p in self._read_state():
                if alive(p.pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p.pid, signal.SIGKILL)
        finally:
            self.spawner.submit(self.servers.stop).result()
            self.spawner.shutdown()
            if not keep_data:
                shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def log_errors(self, limit: int = 12) -> str:
        """Errors with their tracebacks from the whole log: the tail alone often misses them."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        starts = [
            i
            for i, line in enumerate(lines)
            if " ERROR " in line or '"ERROR"' in line or line.startswith("Traceback")
        ]
        shown: list[str] = []
        end = -1
        for i in starts[:limit]:
            if i > end:
                end = i + 30
                shown.extend([*lines[max(i - 2, 0) : end], "..."])
        return "\n".join(shown)

    # ---- Processes ----------------------------------------------------------------------------

    def _read_state(self) -> list[Proc]:
        try:
            state = json.loads((self.root / "dev" / STATE_FILE).read_text())
        except (OSError, ValueError):
            return []
        # Helpers `dev` may run beside the processes (demo traffic) are not ours.
        procs = [Proc(**{**p, "args": tuple(p.get("args", ()))}) for p in state["processes"]]
        return [p for p in procs if not p.args]

    def processes(self) -> list[Proc]:
        return self._read_state()

    def proc(self, name: str, replica: int = 0) -> Proc:
        for p in self._read_state():
            if p.name == name and p.replica == replica:
                return p
        raise LookupError(f"no {name} replica {replica} in the state file")

    @property
    def api_ports(self) -> list[int]:
        return [p.grpc_port for p in self._read_state() if p.name == "api" and p.grpc_port]

    @property
    def brokers(self) -> str:
        return self.servers.env()["KAFKA_BROKERS"]

    def signal(self, name: str, sig: signal.Signals, replica: int = 0) -> int:
        """Send `sig` to the process; returns its pid."""
        pid = self.proc(name, replica).pid
        os.kill(pid, sig)
        return pid

    def wait_replaced(self, name: str, old_pid: int, replica: int = 0, timeout: float = 90) -> Proc:
        """Until `dev` restarted the process (a new pid) and the new one is ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            p = self.proc(name, replica)
            if p.pid != old_pid and alive(p.pid) and self._ready(p):
                return p
            time.sleep(0.2)
        raise AssertionError(f"{name} was not restarted within {timeout}s\n{self.log_tail()}")

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.dev is not None and self.dev.poll() is not None:
                raise AssertionError(f"`customer-service dev` exited\n{self.log_tail()}")
            procs = self._read_state()
            names = sorted(p.name for p in procs)
            expected = ["api", "api", "consumer", "scheduler", "worker"]
            if names == expected and all(self._ready(p) for p in procs):
                return
            time.sleep(0.3)
        raise AssertionError(f"processes not ready within {timeout}s\n{self.log_tail()}")

    def _ready(self, p: Proc) -> bool:
        if p.name == "api":
            assert p.grpc_port is not None
            return _serving(p.grpc_port)
        text = self.scrape(p)
        if text is None:
            return False
        # The consumer sets a lag gauge per partition once it joined the group and fetched.
        return p.name != "consumer" or "customer_consumer_lag{" in text

    def scrape(self, p: Proc) -> str | None:
        """The process's /metrics text, or None when it does not answer."""
        try:
            url = f"http://127.0.0.1:{p.metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=3) as response:
                return str(response.read().decode())
        except OSError:
            return None

    # ---- Servers ------------------------------------------------------------------------------

    def run_on_spawner(self, fn: object) -> None:
        assert callable(fn)
        self.spawner.submit(fn).result()


def _serving(port: int) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=2
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def metric_samples(text: str, name: str) -> dict[str, float]:
    """`labels -> value` of every sample of metric `name` in a Prometheus text page."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, labels = head.partition("{")
        if metric == name:
            out["{" + labels if labels else ""] = float(value)
    return out


def dsn(stack: E2EStack) -> str:
    env = stack.servers.env()
    return (
        f"postgresql://{env['DB_USER']}:{env['DB_PASSWORD']}@{env['DB_HOST']}:{env['DB_PORT']}"
        f"/{env['DB_NAME']}"
    )
