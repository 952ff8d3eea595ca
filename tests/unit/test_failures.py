"""Infrastructure failures become the service's errors in one place (usecases.failures):
a lost database or Valkey is Unavailable, a lost race Contention, anything else stays."""

from __future__ import annotations

import asyncpg
import pytest
from redis.exceptions import ConnectionError as ValkeyConnectionError
from redis.exceptions import TimeoutError as ValkeyTimeoutError

from customer_core import errors
from customer_core.usecases.contention import CONTENTION_ADVICE
from customer_core.usecases.failures import (
    UNAVAILABLE_ADVICE,
    as_service_error,
    is_contention,
    is_outage,
)
from tests.unit.test_outage import NOT_OUTAGES, OUTAGES

VALKEY_OUTAGES = [ValkeyConnectionError("gone"), ValkeyTimeoutError("slow")]
CONTENTION = [
    asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
    asyncpg.exceptions.SerializationError("could not serialize access"),
]


@pytest.mark.parametrize("exc", OUTAGES + VALKEY_OUTAGES, ids=lambda e: type(e).__name__)
def test_a_lost_database_or_valkey_is_unavailable(exc: BaseException) -> None:
    assert is_outage(exc) and not is_contention(exc)
    error = as_service_error(exc)
    assert isinstance(error, errors.Unavailable)
    # The caller reads advice; the failure's own text (hosts, states) is only the cause.
    assert str(error) == UNAVAILABLE_ADVICE
    assert error.__cause__ is exc


@pytest.mark.parametrize("exc", CONTENTION, ids=lambda e: type(e).__name__)
def test_a_lost_race_is_contention(exc: BaseException) -> None:
    assert is_contention(exc) and not is_outage(exc)
    error = as_service_error(exc)
    assert isinstance(error, errors.Contention)
    assert str(error) == CONTENTION_ADVICE
    assert error.__cause__ is exc


@pytest.mark.parametrize(
    "exc",
    [*NOT_OUTAGES, asyncpg.UniqueViolationError("duplicate key"), errors.NotFound("customers/x")],
    ids=lambda e: type(e).__name__,
)
def test_anything_else_is_left_to_the_caller(exc: BaseException) -> None:
    assert as_service_error(exc) is None
