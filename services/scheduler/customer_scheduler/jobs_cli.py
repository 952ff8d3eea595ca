"""`customer-service jobs`: not built yet (issue #6)."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    print("customer-service jobs: not built yet (issue #6)", file=sys.stderr)
    return 2
