"""Stopping the processes a benchmark started."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Sequence


def stop_children(procs: Sequence[subprocess.Popen[bytes]], wait: float) -> None:
    """SIGTERM every one first (they drain in parallel), then wait for each; kill what
    has not exited after `wait` seconds."""
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(wait)
        except subprocess.TimeoutExpired:
            p.kill()
