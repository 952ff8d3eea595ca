"""The one table from the service's errors to gRPC status codes."""

from __future__ import annotations

import grpc

from customer_core import errors

# First match wins: subclasses before their bases.
STATUS_BY_ERROR: tuple[tuple[type[errors.CustomerServiceError], grpc.StatusCode], ...] = (
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.IdempotencyConflict, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.InsufficientPoints, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.LimitExceeded, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.Contention, grpc.StatusCode.ABORTED),
    (errors.SchemaOutOfDate, grpc.StatusCode.INTERNAL),
    (errors.CustomerServiceError, grpc.StatusCode.INTERNAL),
)


def status_for(exc: errors.CustomerServiceError) -> grpc.StatusCode:
    for kind, code in STATUS_BY_ERROR:
        if isinstance(exc, kind):
            return code
    return grpc.StatusCode.INTERNAL
