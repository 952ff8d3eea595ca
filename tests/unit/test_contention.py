"""Contention (deadlock 40P01, serialisation failure 40001) is ABORTED, retried once first."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import grpc
import pytest

from customer_api.errors import status_for
from customer_api.rpc import abort
from customer_core import errors
from customer_core.db.outage import is_contention
from customer_core.usecases.contention import retried_once

CONTENTION = [
    asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
    asyncpg.exceptions.SerializationError("could not serialize access"),
]
NOT_CONTENTION = [
    asyncpg.UniqueViolationError("duplicate key"),
    # 40003: the statement may or may not have run; a blind retry is not safe.
    asyncpg.exceptions.StatementCompletionUnknownError("unknown"),
    asyncpg.exceptions.CheckViolationError("balance"),
    ValueError("a bug"),
]


@pytest.mark.parametrize("exc", CONTENTION, ids=lambda e: type(e).__name__)
def test_deadlocks_and_serialisation_failures_are_contention(exc: Exception) -> None:
    assert is_contention(exc)


@pytest.mark.parametrize("exc", NOT_CONTENTION, ids=lambda e: type(e).__name__)
def test_other_errors_are_not_contention(exc: Exception) -> None:
    assert not is_contention(exc)


def test_the_error_table_answers_contention_aborted() -> None:
    assert status_for(errors.Contention("deadlock")) is grpc.StatusCode.ABORTED


class FakeContext:
    """What `rpc.abort` uses of a grpc.aio context: abort records and raises."""

    def __init__(self) -> None:
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.aborted = (code, details)
        raise grpc.aio.AbortError()


@pytest.mark.parametrize("exc", CONTENTION, ids=lambda e: type(e).__name__)
def test_contention_reaching_the_edge_is_aborted_not_internal(exc: Exception) -> None:
    context = FakeContext()
    with pytest.raises(grpc.aio.AbortError):
        asyncio.run(abort(context, "SetFamilyWallet", exc))  # type: ignore[arg-type]
    assert context.aborted is not None
    code, details = context.aborted
    assert code is grpc.StatusCode.ABORTED
    assert "idempotency key" in details


def counting(failures: list[Exception]) -> Any:
    calls: list[int] = []

    @retried_once
    async def use_case(x: int) -> int:
        calls.append(x)
        if failures:
            raise failures.pop(0)
        return x * 2

    return use_case, calls


def test_one_contention_is_retried_inside_the_use_case() -> None:
    use_case, calls = counting([asyncpg.exceptions.DeadlockDetectedError("deadlock")])
    assert asyncio.run(use_case(21)) == 42
    assert calls == [21, 21]


def test_a_second_contention_is_raised_as_contention() -> None:
    use_case, calls = counting([asyncpg.exceptions.SerializationError("x")] * 2)
    with pytest.raises(errors.Contention):
        asyncio.run(use_case(1))
    assert calls == [1, 1]


def test_other_errors_are_not_retried() -> None:
    use_case, calls = counting([errors.FailedPrecondition("no")])
    with pytest.raises(errors.FailedPrecondition):
        asyncio.run(use_case(1))
    assert calls == [1]


def test_the_operator_retries_contention_soon_instead_of_giving_up() -> None:
    import kopf

    from customer_operator.handlers import _kopf_error

    assert isinstance(_kopf_error(errors.Contention("deadlock"), 2.0), kopf.TemporaryError)
