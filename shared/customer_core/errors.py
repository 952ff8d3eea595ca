"""One error hierarchy for the whole service, free of transport codes.

Each edge (gRPC, the consumer, kopf, the CLI) maps these to its own transport in
one table; nothing below the edges knows about status codes.
"""

from __future__ import annotations


class CustomerServiceError(Exception):
    """Base of every error the service raises on purpose."""


class InvalidArgument(CustomerServiceError):
    """A request field is malformed; `field` names it (dotted path)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class NotFound(CustomerServiceError):
    """The named resource does not exist (or was deleted)."""

    def __init__(self, resource: str) -> None:
        super().__init__(f"{resource} not found")
        self.resource = resource


class AlreadyExists(CustomerServiceError):
    """A unique thing (username, favorite, external id) is taken."""


class FailedPrecondition(CustomerServiceError):
    """The request is well-formed but the current state refuses it."""


class IdempotencyConflict(FailedPrecondition):
    """An idempotency key was reused with a different request."""

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency_key {key!r} was already used with a different request")
        self.key = key


class InsufficientPoints(FailedPrecondition):
    """A redemption or negative adjustment would take a balance below zero."""


class LimitExceeded(CustomerServiceError):
    """A per-customer or per-caller limit would be exceeded."""


class PermissionDenied(CustomerServiceError):
    """The caller may not act on this resource."""


class Unauthenticated(CustomerServiceError):
    """No valid credentials were presented."""


class Unavailable(CustomerServiceError):
    """A dependency (database, cache, broker) cannot be reached right now; retry."""


class Contention(CustomerServiceError):
    """A concurrent writer won (a deadlock or serialisation failure) and this call's
    transaction was rolled back: nothing happened, so retrying it (with the same
    idempotency key) is safe."""


class ConfigError(CustomerServiceError):
    """A configuration variable is missing or malformed; the message names it."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


class BrokenInstall(CustomerServiceError):
    """The installation lacks a library the process needs; the message names it."""


class SchemaOutOfDate(CustomerServiceError):
    """The database schema is older (or newer) than this code expects."""
