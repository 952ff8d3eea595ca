"""bench/lib/profiling.py: py-spy's collapsed stacks summarised into where the CPU went."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench" / "lib"))
import profiling

LOOP = "run (asyncio/runners.py:190);BaseEventLoop._run_once (asyncio/base_events.py:1922)"
MAIN = "run_until_signalled (customer_core/context/runtime.py:20)"


def test_waits_and_imports_are_left_out_and_libc_is_billed_to_its_caller(tmp_path: Path) -> None:
    raw = tmp_path / "stacks.txt"
    raw.write_text(
        "\n".join(
            [
                f"{MAIN};{LOOP};epoll_wait (libc.so.6) 60",
                f"{MAIN};_find_and_load (<frozen importlib._bootstrap>:1176) 5",
                f"{MAIN};{LOOP};_handle (grpc/_cython/cygrpc.so);sendmsg (libc.so.6) 30",
                f"{MAIN};{LOOP};wrapped (customer_api/edge.py:9);write (libc.so.6) 10",
                "not a stack line",
            ]
        )
    )
    got = profiling.summarise(raw)
    assert (got.samples, got.waiting) == (40, 60)
    assert dict(got.by_area) == {"grpc": 0.75, "customer_api": 0.25}
    # main() is ours too, but only code above the loop's dispatch counts as ours.
    assert got.ours == 0.25
    assert got.by_function[0] == ("sendmsg (libc.so.6)", 0.75)
