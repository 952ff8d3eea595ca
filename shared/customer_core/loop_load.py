"""How busy the event loop's thread is: the cache batches look-ups only when it is saturated."""

from __future__ import annotations

import time

# The loop's thread counts as saturated when it was runnable this share of the
# last sample period. Measured in bench/api.py: 4 callers keep it at 0.59
# (median; 0.90 at the 90th percentile), 32 callers at 0.94 (0.99).
SATURATED = 0.95
_SAMPLE_SECONDS = 0.05


_SCHEDSTAT = "/proc/thread-self/schedstat"


def _runnable_seconds() -> float:
    """Time the calling thread spent running or waiting for a CPU (Linux), or running."""
    try:
        with open(_SCHEDSTAT, "rb") as f:
            running_ns, waiting_ns, _ = f.read().split()
        return (int(running_ns) + int(waiting_ns)) / 1e9
    except (OSError, ValueError):
        return time.thread_time()


class ThreadLoad:
    """The share of wall time the calling thread was runnable, resampled every 50 ms.

    Runnable (on a CPU or queued for one), not only running: on a crowded node
    a CPU-bound loop spends much of its time waiting for a core, and that is
    when a saved round trip matters most. The loop's thread, not the process:
    gRPC's poller threads would count double on a multi-core node.
    """

    def __init__(self) -> None:
        self._at = float("-inf")
        self._runnable = 0.0
        self._busy = 0.0

    def busy(self, now: float) -> float:
        if now - self._at >= _SAMPLE_SECONDS:
            runnable = _runnable_seconds()
            if self._at != float("-inf"):
                self._busy = (runnable - self._runnable) / (now - self._at)
            self._at, self._runnable = now, runnable
        return self._busy
