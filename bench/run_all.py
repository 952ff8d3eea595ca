"""`make bench`: run every benchmark in bench/ and write docs/performance.md.

Each benchmark script prints, as its last line, one JSON object:

    {"bench": "api", "figures": [
        {"name": "GetCustomer req/s", "value": 2400.0, "unit": "req/s",
         "baseline": 3100.0, "baseline_name": "bare grpc.aio server",
         "ratio": 0.77, "target": ">= 0.7 of baseline", "pass": true}, ...]}

`baseline` and `ratio` are measured in the same run (these machines are noisy,
so absolute numbers from different runs are not comparable); a figure with an
absolute target (events/s, p99) has `pass` computed by the script itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The one page with current figures; how they came about is in docs/design/.
OUT = HERE.parent / "docs" / "performance.md"
SKIP = {"run_all.py", "soak.py"}  # soak runs for as long as it is told; not part of make bench
# Scripts run a second time with other arguments: the hot path as deployed, with
# an Order Service token on every call (token check, scope, rate limit).
AGAIN = {
    "api": (
        "api-auth",
        ["--auth", "order-service", "--only", "ValidateCustomer,GetCustomer,GetOrderContext"],
    )
}


def run_one(
    script: Path, quick: bool, timeout: float, args: list[str] | None = None
) -> tuple[dict[str, object] | None, str]:
    cmd = [sys.executable, str(script)] + (["--quick"] if quick else []) + (args or [])
    start = time.monotonic()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f}s"
    took = time.monotonic() - start
    for line in reversed(done.stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line), f"{took:.0f}s"
            except json.JSONDecodeError:
                break
    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
    return None, f"exit {done.returncode}, no JSON result: {' / '.join(tail)}"


def fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if value is None or value == "":
        return "–"
    return str(value)


def summary(
    results: list[tuple[str, dict[str, object] | None, str]],
    quick: bool,
    load: tuple[float, float],
) -> str:
    lines = [
        "# Performance",
        "",
        "The current figures, the whole page written by `make bench` (`bench/run_all.py`); "
        "edit the script, not this page. How each benchmark runs is in "
        "[development.md](development.md#benchmarks); earlier figures and what was tried are "
        "in the [design notes](design/index.md).",
        "",
        f"Written by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{'quick' if quick else 'full'} mode, load average {load[0]:.2f} at the start and "
        f"{load[1]:.2f} at the end (the machine is shared). Baselines are measured in the "
        "same run.",
        "",
        "| Benchmark | Figure | Value | Baseline | Ratio | Target | Result |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, result, note in results:
        if result is None:
            lines.append(f"| {name} | – | – | – | – | – | **failed to run** ({note}) |")
            continue
        for fig in result.get("figures", []):  # type: ignore[union-attr]
            assert isinstance(fig, dict)
            unit = f" {fig.get('unit')}" if fig.get("unit") else ""
            baseline = fmt(fig.get("baseline"))
            if fig.get("baseline_name"):
                baseline += f" ({fig['baseline_name']})"
            verdict = {True: "pass", False: "**FAIL**"}.get(fig.get("pass"), "–")  # type: ignore[call-overload]
            lines.append(
                f"| {name} | {fig.get('name')} | {fmt(fig.get('value'))}{unit} | {baseline} "
                f"| {fmt(fig.get('ratio'))} | {fig.get('target') or '–'} | {verdict} |"
            )
    return "\n".join(lines) + "\n"


def write(
    out: Path,
    results: list[tuple[str, dict[str, object] | None, str]],
    quick: bool,
    load: tuple[float, float],
) -> str:
    text = summary(results, quick, load)
    out.write_text(text)
    if out == OUT:
        show_in_readme()
    return text


def show_in_readme() -> None:
    """Rebuild the README, which shows the page's figures that have a target."""
    subprocess.run([sys.executable, str(HERE.parent / "scripts" / "build_readme.py")], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="full sizes instead of --quick")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per benchmark")
    parser.add_argument("--out", type=Path, default=OUT)
    opts = parser.parse_args()
    scripts = sorted(p for p in HERE.glob("*.py") if p.name not in SKIP)
    results = []
    load_start = os.getloadavg()[0]
    for script in scripts:
        print(f"running {script.name} ...", flush=True)
        result, note = run_one(script, quick=not opts.full, timeout=opts.timeout)
        print(f"  {script.stem}: {note}", flush=True)
        results.append((script.stem, result, note))
        if script.stem in AGAIN:
            name, args = AGAIN[script.stem]
            print(f"running {script.name} {' '.join(args)} ...", flush=True)
            result, note = run_one(script, not opts.full, opts.timeout, args)
            print(f"  {name}: {note}", flush=True)
            results.append((name, result, note))
    text = write(opts.out, results, quick=not opts.full, load=(load_start, os.getloadavg()[0]))
    print(text)
    return 0 if all(r is not None for _, r, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
