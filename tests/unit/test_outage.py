"""Which database errors are an outage (UNAVAILABLE, retry) and which are not."""

from __future__ import annotations

import asyncpg
import pytest

from customer_core.db.outage import is_outage, is_retryable

OUTAGES = [
    ConnectionRefusedError(111, "Connect call failed"),
    TimeoutError(),
    asyncpg.InterfaceError("connection is closed"),
    # What a pooled connection raises when PostgreSQL dropped it mid-protocol.
    asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
    asyncpg.CannotConnectNowError("the database system is shutting down"),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection does not exist"),
    asyncpg.exceptions.TooManyConnectionsError("too many clients"),  # 53300
    asyncpg.exceptions.DiskFullError("no space"),  # 53100
    asyncpg.exceptions.PostgresIOError("could not read block"),  # 58030
]

NOT_OUTAGES = [
    asyncpg.exceptions.DataError("invalid input"),
    asyncpg.exceptions.CheckViolationError("balance would go negative"),
    asyncpg.exceptions.UndefinedTableError("relation does not exist"),
    ValueError("a bug"),
    KeyError("a bug"),
]


@pytest.mark.parametrize("exc", OUTAGES, ids=lambda e: type(e).__name__)
def test_outages_are_recognised(exc: BaseException) -> None:
    assert is_outage(exc)
    assert is_retryable(exc)


@pytest.mark.parametrize("exc", NOT_OUTAGES, ids=lambda e: type(e).__name__)
def test_errors_that_a_retry_cannot_fix_are_not_outages(exc: BaseException) -> None:
    assert not is_outage(exc)
    assert not is_retryable(exc)


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.DeadlockDetectedError("deadlock"),
        asyncpg.exceptions.SerializationError("could not serialize"),
        asyncpg.UniqueViolationError("duplicate key"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_contention_is_retryable_but_not_an_outage(exc: BaseException) -> None:
    assert not is_outage(exc)
    assert is_retryable(exc)
