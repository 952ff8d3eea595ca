"""bench/api.py --rate: at a fixed arrival rate the figure is CPU per call, and no
req/s target is judged (every server answers the same calls)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import api as bench_api  # noqa: E402
from k6load import K6Run  # noqa: E402


def _results(api_cpu: float, bare_cpu: float, api_rps: float) -> dict[str, object]:
    bare = [(K6Run(ok=4500, failed=0, seconds=3.0, p50_ms=0.6, p99_ms=9.0), bare_cpu, 1.0)]
    api = [
        (K6Run(ok=int(api_rps * 3), failed=0, seconds=3.0, p50_ms=0.7, p99_ms=12.0), api_cpu, 2.0)
    ]
    return {"ValidateCustomer": {"bare": bare, "api": api}}


def _opts(rate: int) -> argparse.Namespace:
    return argparse.Namespace(auth="order-service", rate=rate, vus=32, rounds=1, seconds=3.0)


def test_a_fixed_rate_run_reports_cpu_per_call_against_the_bare_server() -> None:
    figures = bench_api.summarise(_results(460, 400, 1490), _opts(1500), (1.0,) * 3, (1.0,) * 3)
    cpu = next(f for f in figures if "CPU per call" in f["name"])
    assert cpu["name"] == "ValidateCustomer CPU per call at 1500 calls/s (k6, Order Service token)"
    assert (cpu["value"], cpu["baseline"], cpu["ratio"]) == (460, 400, 1.15)
    # Throughput at a fixed rate is the rate: a req/s target would judge nothing.
    assert all("pass" not in f for f in figures)


def test_as_fast_as_the_callers_go_the_req_s_target_is_judged() -> None:
    figures = bench_api.summarise(_results(300, 220, 1200), _opts(0), (1.0,) * 3, (1.0,) * 3)
    assert not any("CPU per call" in f["name"] for f in figures)
    rps = next(f for f in figures if f["name"].startswith("ValidateCustomer req/s"))
    assert rps["ratio"] == round(1200 / 1500, 3)
    assert rps["pass"] is False
