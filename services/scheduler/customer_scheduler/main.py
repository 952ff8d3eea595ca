"""`customer-service scheduler` and `customer-service worker`: not built yet (issue #6)."""

from __future__ import annotations

import sys


def scheduler_main(argv: list[str]) -> int:
    print("customer-service scheduler: not built yet (issue #6)", file=sys.stderr)
    return 2


def worker_main(argv: list[str]) -> int:
    print("customer-service worker: not built yet (issue #6)", file=sys.stderr)
    return 2
