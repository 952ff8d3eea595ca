"""Infrastructure failures as the service's errors: one answer for every edge.

PostgreSQL or Valkey cannot serve right now (`db/outage.py` has PostgreSQL's
rules; every Valkey error counts, since the client raises nothing else) is
`Unavailable`: retry later. A transaction lost to a concurrent writer and
rolled back is `Contention`: retry now, with the same idempotency key.
Anything else is left as it is: already a service error, or a bug.

The api aborts with what `as_service_error` says (rpc.abort); a worker that
pauses and retries asks `is_outage` / `is_contention`.
"""

from __future__ import annotations

from redis.exceptions import RedisError

from customer_core.db import outage
from customer_core.errors import Contention, Unavailable
from customer_core.usecases.contention import CONTENTION_ADVICE

# The text a caller gets: the failure's own (a host, a SQL state) stays in the log.
UNAVAILABLE_ADVICE = "a dependency is unavailable; retry"


def is_outage(exc: BaseException) -> bool:
    """PostgreSQL or Valkey (or the way to them) cannot serve now; the same call may
    succeed later."""
    return isinstance(exc, RedisError) or outage.is_outage(exc)


def is_contention(exc: BaseException) -> bool:
    """A deadlock or serialisation failure: the transaction lost to another writer."""
    return outage.is_contention(exc)


def as_service_error(exc: BaseException) -> Unavailable | Contention | None:
    """The service error an infrastructure failure is, caused by it; None for anything else."""
    error: Unavailable | Contention
    if is_contention(exc):
        error = Contention(CONTENTION_ADVICE)
    elif is_outage(exc):
        error = Unavailable(UNAVAILABLE_ADVICE)
    else:
        return None
    error.__cause__ = exc
    return error
