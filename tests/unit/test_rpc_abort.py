"""The api's one abort: every interceptor answers a failure the same way."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from redis.exceptions import ConnectionError as ValkeyConnectionError

from customer_api.rpc import abort
from customer_core import errors


class _Aborted(Exception):
    pass


class _Context:
    def __init__(self) -> None:
        self.status: tuple[grpc.StatusCode, str] | None = None

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-request-id", "req-42"),)

    async def abort(self, code: grpc.StatusCode, details: str) -> Any:
        self.status = (code, details)
        raise _Aborted


def _abort(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    context = _Context()
    with pytest.raises(_Aborted):
        asyncio.run(abort(context, "GetCustomer", exc))  # type: ignore[arg-type]
    assert context.status is not None
    return context.status


def test_a_service_error_is_mapped_with_its_message() -> None:
    assert _abort(errors.NotFound("customers/x")) == (
        grpc.StatusCode.NOT_FOUND,
        "customers/x not found",
    )


@pytest.mark.parametrize("exc", [ValkeyConnectionError("gone"), ConnectionRefusedError()])
def test_a_lost_valkey_or_database_is_unavailable(exc: BaseException) -> None:
    assert _abort(exc)[0] is grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    "exc", [errors.SchemaOutOfDate("schema 7, want 8 secret"), RuntimeError("secret")]
)
def test_internal_is_masked_but_names_the_request(exc: BaseException) -> None:
    code, details = _abort(exc)
    assert code is grpc.StatusCode.INTERNAL
    assert "secret" not in details
    assert "req-42" in details
