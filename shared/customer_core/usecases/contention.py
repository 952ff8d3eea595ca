"""Contention inside a use case: retried once, then Contention (ABORTED at the gRPC edge).

A deadlock (40P01) or serialisation failure (40001) rolls the whole
transaction back, so a use case whose effects all live in one transaction,
with notices and cache bumps after the commit, can simply run again. Every
path takes its locks in one global order (the idempotency key, the customers'
event locks, the family row, loyalty accounts in id order, approval, redemption,
points_owed and campaign rows; docs/wallet.md, Concurrency), so these should
not happen; when they do, one retry hides them from the caller, and a second
reaches the caller as retryable (the same idempotency key makes it safe).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from prometheus_client import Counter

from customer_core.db.outage import is_contention
from customer_core.errors import Contention

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

CONTENTION_ADVICE = (
    "lost to a concurrent change and rolled back: retry with the same idempotency key"
)

CONTENTION_RETRIES = Counter(
    "customer_contention_retries",
    "Use cases run again after a deadlock or serialisation failure, by outcome.",
    ["outcome"],
)


def retried_once(use_case: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Run `use_case` again once after contention; a second one raises Contention.

    Only for use cases that do nothing outside their transaction before it commits."""

    @functools.wraps(use_case)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await use_case(*args, **kwargs)
        except Exception as exc:
            if not is_contention(exc):
                raise
            log.info("contention; running again", extra={"use_case": use_case.__name__})
        try:
            result = await use_case(*args, **kwargs)
        except Exception as exc:
            if not is_contention(exc):
                raise
            CONTENTION_RETRIES.labels("gave_up").inc()
            raise Contention(CONTENTION_ADVICE) from exc
        CONTENTION_RETRIES.labels("succeeded").inc()
        return result

    return run
