"""Which errors mean "PostgreSQL cannot serve right now": one answer for every edge.

The api answers them UNAVAILABLE, the consumer pauses and retries its batch,
the operator retries the reconcile. Anything else is a bug or a bad request.
"""

from __future__ import annotations

import asyncpg

# The connection is gone or was never made. InternalClientError is asyncpg
# refusing to use a connection the server dropped mid-protocol ("cannot switch
# to state 12; another operation is in progress"), seen while PostgreSQL shuts
# down: nothing was sent, so a retry is safe. TimeoutError is an OSError.
_OUTAGE_TYPES: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
)

# SQLSTATE classes, whatever exception class asyncpg picks for them: connection
# exception, insufficient resources, operator intervention (shutting down,
# starting up), system error.
_OUTAGE_SQLSTATE_CLASSES = ("08", "53", "57", "58")


class WriteConflict(Exception):
    """A row this transaction meant to create was created meanwhile by another, for
    something else (found at the write, as an upsert that changed nothing). Like a
    concurrent insert of the same key: run again, the transaction sees that row."""


# Contention between concurrent writers: a deadlock or serialisation failure
# (class 40), a concurrent insert of the same key (the retry sees the row).
_CONTENTION_TYPES: tuple[type[BaseException], ...] = (
    asyncpg.TransactionRollbackError,
    asyncpg.UniqueViolationError,
    WriteConflict,
)


# The two a whole transaction can simply be run again after: it was rolled back
# and nothing of it is left. (40003, statement completion unknown, is not one.)
_CONTENTION_SQLSTATES = ("40001", "40P01")


def is_contention(exc: BaseException) -> bool:
    """A deadlock or serialisation failure: the transaction lost to another writer."""
    return (
        isinstance(exc, asyncpg.PostgresError)
        and getattr(exc, "sqlstate", None) in _CONTENTION_SQLSTATES
    )


def is_outage(exc: BaseException) -> bool:
    """The database (or the way to it) cannot serve now; the same call may succeed later."""
    if isinstance(exc, _OUTAGE_TYPES):
        return True
    state = getattr(exc, "sqlstate", None) if isinstance(exc, asyncpg.PostgresError) else None
    return isinstance(state, str) and state[:2] in _OUTAGE_SQLSTATE_CLASSES


def is_retryable(exc: BaseException) -> bool:
    """An outage, or contention with another writer: the same batch may well succeed."""
    return is_outage(exc) or isinstance(exc, _CONTENTION_TYPES)
