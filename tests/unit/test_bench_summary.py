"""`make bench` writes the current figures to docs/performance.md, the only page holding them."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import run_all  # noqa: E402


def test_make_bench_writes_docs_performance() -> None:
    assert run_all.OUT == ROOT / "docs" / "performance.md"


def test_the_page_holds_the_figures_and_the_machine(tmp_path: Path) -> None:
    figure = {
        "name": "GetCustomer req/s",
        "value": 2400.0,
        "unit": "req/s",
        "baseline": 3100.0,
        "baseline_name": "bare grpc.aio server",
        "ratio": 0.77,
        "target": ">= 0.7 of baseline",
        "pass": True,
    }
    results = [("api", {"bench": "api", "figures": [figure]}, "12s"), ("jobs", None, "timed out")]
    out = tmp_path / "performance.md"
    text = run_all.write(out, results, quick=True, load=(0.5, 1.25))
    assert out.read_text() == text
    assert text.startswith("# Performance\n")
    assert "load average 0.50 at the start and 1.25 at the end" in text
    assert "| api | GetCustomer req/s | 2,400 req/s | 3,100 (bare grpc.aio server) | 0.77 |" in text
    assert "| jobs | – | – | – | – | – | **failed to run** (timed out) |" in text


def test_the_checked_in_page_is_the_one_the_script_writes() -> None:
    """Same preamble, so an edit by hand shows up here rather than vanishing at the next run."""
    written = run_all.summary([], quick=True, load=(0.0, 0.0)).splitlines()
    page = (ROOT / "docs" / "performance.md").read_text().splitlines()
    assert page[:3] == written[:3]
    assert page[4].startswith("Written by `make bench` on ")
    assert page[6:8] == written[6:8]
