"""`customer-service consumer`: not built yet (issue #4)."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    print("customer-service consumer: not built yet (issue #4)", file=sys.stderr)
    return 2
