"""`customer-service operator`: not built yet (issue #7)."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    print("customer-service operator: not built yet (issue #7)", file=sys.stderr)
    return 2
