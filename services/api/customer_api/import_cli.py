"""`customer-service import`: not built yet (issue #5)."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    print("customer-service import: not built yet (issue #5)", file=sys.stderr)
    return 2
