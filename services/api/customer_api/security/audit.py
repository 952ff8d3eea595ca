"""What goes into the audit log for a call: ids found in its request and
response, the caller, the outcome.

Ids are taken from resource names (`customers/{id}`, `families/{id}`, also
inside `customers/{id}/favorites/{id}`) in the request, then in the response
(CreateCustomer's new customer, a redemption's customer). Nothing else of the
messages is kept, so no personal data reaches the log.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from google.protobuf.message import Message
from prometheus_client import Counter

from customer_api.security.tokens import Principal
from customer_core.context import Context
from customer_core.usecases.audit import AuditEntry, record_call

log = logging.getLogger(__name__)

AUDIT_FAILURES = Counter("customer_audit_write_failures", "Audit rows that could not be written.")

_MAX_DEPTH = 2


def _id_after(value: str, prefix: str) -> uuid.UUID | None:
    if not value.startswith(prefix):
        return None
    try:
        return uuid.UUID(value[len(prefix) :].split("/", 1)[0])
    except ValueError:
        return None


def find_id(message: Any, prefix: str, depth: int = 0) -> uuid.UUID | None:
    """The first `{prefix}{uuid}` in the message's set string fields, breadth first."""
    if not isinstance(message, Message):
        return None
    nested: list[Message] = []
    for _field, value in message.ListFields():
        if isinstance(value, str):
            found = _id_after(value, prefix)
            if found is not None:
                return found
        elif isinstance(value, Message):
            nested.append(value)
    if depth < _MAX_DEPTH:
        for inner in nested:
            found = find_id(inner, prefix, depth + 1)
            if found is not None:
                return found
    return None


class Auditor:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def record(
        self,
        principal: Principal,
        method: str,
        outcome: str,
        request: Any,
        response: Any,
        request_id: str,
        actor_field: str | None = None,
    ) -> None:
        """Write one row; a failure is logged and counted, never raised (the
        call's effect has already committed)."""
        customer = find_id(request, "customers/") or find_id(response, "customers/")
        family = find_id(request, "families/") or find_id(response, "families/")
        entry = AuditEntry(
            caller_kind=principal.kind,
            caller_subject=principal.subject,
            caller_family=principal.family_id,
            method=method,
            outcome=outcome,
            customer_id=customer,
            family_id=family,
            request_id=request_id,
            acting_for=_id_after(getattr(request, actor_field, ""), "customers/")
            if actor_field and request is not None
            else None,
        )
        try:
            await record_call(self._ctx, entry)
        except Exception as exc:
            AUDIT_FAILURES.inc()
            log.error(
                "audit row not written",
                extra={"method": method, "outcome": outcome, "error": type(exc).__name__},
            )
