"""The general reader of order events: every spelling protobuf JSON allows, and clear errors.

Like any protobuf JSON parser it accepts lowerCamelCase and original field
names, 64-bit integers as strings or numbers, enum names or numbers, and
ignores unknown fields. Every problem raises `InvalidArgument` naming the
field (dotted path). customer_core.events.decode tries a faster reader of the
canonical form first and comes here for everything else.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from customer_core.domain.order_events import (
    SCHEMA_VERSIONS,
    Body,
    Cancelled,
    Completed,
    Item,
    OrderEvent,
    Payment,
    Placed,
    Topic,
)
from customer_core.errors import InvalidArgument

MAX_ID_LENGTH = 200
MAX_ITEMS = 200
MAX_QUANTITY = 10_000
MAX_MINOR = 10**13  # far above any coffee order; keeps sums well inside bigint
INT64 = 2**63
PAYMENT_METHODS = {
    "PAYMENT_METHOD_UNSPECIFIED": "unspecified",
    "PAYMENT_METHOD_CARD": "card",
    "PAYMENT_METHOD_WALLET": "wallet",
    "PAYMENT_METHOD_CASH": "cash",
    "PAYMENT_METHOD_GIFT_CARD": "gift_card",
}
_METHOD_BY_NUMBER = dict(enumerate(PAYMENT_METHODS.values()))
# A 64-bit integer as protobuf JSON writes it in a string: ASCII decimal. (Python's
# int() would also take " 12", "1_000" and other scripts' digits.)
_INT_TEXT = re.compile(r"-?[0-9]{1,30}")
BODY_KEYS = {
    "placed": Topic.PLACED,
    "completed": Topic.COMPLETED,
    "cancelled": Topic.CANCELLED,
    "payment": Topic.PAYMENT,
}
KEY_FOR_TOPIC = {t: k for k, t in BODY_KEYS.items()}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


class _Obj:
    """A JSON object read under both protobuf field-name spellings."""

    __slots__ = ("data", "path")

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, Mapping):
            raise InvalidArgument(path or "event", "must be a JSON object")
        self.data = data
        self.path = path

    def where(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str) -> Any:
        value = self.data.get(_camel(name))
        if value is None:
            value = self.data.get(name)
        return value

    def text(self, name: str, *, required: bool = False, limit: int = MAX_ID_LENGTH) -> str:
        value = self.get(name)
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise InvalidArgument(self.where(name), "must be a string")
        if required and not value.strip():
            raise InvalidArgument(self.where(name), "required")
        if len(value) > limit:
            raise InvalidArgument(self.where(name), f"at most {limit} characters")
        return value

    def integer(self, name: str, low: int, high: int) -> int:
        value = self.get(name)
        if value is None:
            return 0
        if isinstance(value, bool):
            raise InvalidArgument(self.where(name), "must be an integer")
        if isinstance(value, str):
            parsed = int_text(value)
            if parsed is None:
                raise InvalidArgument(self.where(name), "must be an integer")
            value = parsed
        elif isinstance(value, float):
            if not value.is_integer():
                raise InvalidArgument(self.where(name), "must be an integer")
            value = int(value)
        elif not isinstance(value, int):
            raise InvalidArgument(self.where(name), "must be an integer")
        if not -INT64 <= value < INT64:
            raise InvalidArgument(self.where(name), "out of the 64-bit range")
        if not low <= value <= high:
            raise InvalidArgument(self.where(name), f"must be from {low} to {high}, got {value}")
        return value

    def amount(self, name: str) -> int:
        value = self.integer(name, -INT64, INT64 - 1)
        if value < 0:
            raise InvalidArgument(self.where(name), f"must not be negative, got {value}")
        if value > MAX_MINOR:
            raise InvalidArgument(self.where(name), f"implausibly large, got {value}")
        return value

    def currency(self, name: str, *, required: bool) -> str:
        value = self.text(name, limit=3)
        if not value and not required:
            return ""
        if len(value) != 3 or not value.isascii() or not value.isalpha() or not value.isupper():
            raise InvalidArgument(self.where(name), "must be an ISO 4217 code like EUR")
        return value


def int_text(value: str) -> int | None:
    """The integer an int64 string holds, or None when it is not ASCII decimal."""
    return int(value) if _INT_TEXT.fullmatch(value) else None


def timestamp(value: object, field: str) -> datetime:
    if not isinstance(value, str) or not value:
        raise InvalidArgument(field, "required RFC 3339 timestamp")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if "." in text:
        # Python reads at most 6 fractional digits; protobuf writes up to 9.
        head, _, tail = text.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        text = f"{head}.{tail[:digits][:6].ljust(6, '0')}{tail[digits:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(field, f"not an RFC 3339 timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        raise InvalidArgument(field, "needs a UTC offset (e.g. Z)")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        # Year 1 with a positive offset, or 9999 with a negative one, is outside
        # what a datetime holds once in UTC.
        raise InvalidArgument(field, f"out of range in UTC (years 1-9999): {value!r}") from None


def _items(obj: _Obj, name: str) -> tuple[Item, ...]:
    raw = obj.get(name)
    if raw is None:
        return ()
    where = obj.where(name)
    if not isinstance(raw, list):
        raise InvalidArgument(where, "must be a list")
    if len(raw) > MAX_ITEMS:
        raise InvalidArgument(where, f"at most {MAX_ITEMS} items")
    items = []
    for i, entry in enumerate(raw):
        it = _Obj(entry, f"{where}[{i}]")
        items.append(
            Item(
                drink_id=it.text("drink_id", required=True, limit=64),
                drink_name=it.text("drink_name", limit=200),
                size=it.text("size", limit=40),
                quantity=it.integer("quantity", 1, MAX_QUANTITY),
                unit_price_minor=it.amount("unit_price_minor"),
            )
        )
    return tuple(items)


def _body(obj: _Obj, topic: Topic) -> Body:
    present = [key for key in BODY_KEYS if obj.data.get(key) is not None]
    if len(present) > 1:
        raise InvalidArgument("body", f"only one of {', '.join(present)} may be set")
    key = next((k for k, t in BODY_KEYS.items() if t is topic), "")
    if present != [key]:
        raise InvalidArgument(key, f"required for event_type {topic.value}")
    body = _Obj(obj.data[key], key)
    if topic is Topic.PLACED:
        items = _items(body, "items")
        if not items:
            raise InvalidArgument("placed.items", "an order has at least one item")
        return Placed(
            items=items,
            currency_code=body.currency("currency_code", required=True),
            subtotal_minor=body.amount("subtotal_minor"),
            total_minor=body.amount("total_minor"),
        )
    if topic is Topic.COMPLETED:
        return Completed(
            total_minor=body.amount("total_minor"),
            currency_code=body.currency("currency_code", required=True),
            items=_items(body, "items"),
        )
    if topic is Topic.CANCELLED:
        return Cancelled(reason=body.text("reason", limit=500))
    return Payment(
        payment_id=body.text("payment_id", required=True),
        amount_minor=body.amount("amount_minor"),
        currency_code=body.currency("currency_code", required=True),
        method=_method(body.get("method")),
    )


def _method(value: object) -> str:
    if value is None:
        return "unspecified"
    if isinstance(value, int) and not isinstance(value, bool) and value in _METHOD_BY_NUMBER:
        return _METHOD_BY_NUMBER[value]
    if isinstance(value, str) and value in PAYMENT_METHODS:
        return PAYMENT_METHODS[value]
    raise InvalidArgument("payment.method", f"unknown payment method {value!r}")


def walk(data: object, topic: Topic) -> OrderEvent:
    """The general reader: every spelling the mapping allows, and the error for anything else."""
    obj = _Obj(data, "")
    version = obj.integer("schema_version", 0, 2**31 - 1)
    if version not in SCHEMA_VERSIONS:
        known = ", ".join(str(v) for v in sorted(SCHEMA_VERSIONS))
        raise InvalidArgument("schema_version", f"unknown version {version} (known: {known})")
    event_type = obj.text("event_type", required=True)
    if event_type != topic.value:
        raise InvalidArgument("event_type", f"{event_type!r} arrived on topic {topic.value}")
    raw_customer = obj.text("customer_id", required=True)
    try:
        customer_id = uuid.UUID(raw_customer)
    except ValueError:
        raise InvalidArgument("customer_id", f"not a UUID: {raw_customer!r}") from None
    return OrderEvent(
        event_id=obj.text("event_id", required=True),
        topic=topic,
        occurred_at=timestamp(obj.get("occurred_at"), "occurred_at"),
        customer_id=customer_id,
        order_id=obj.text("order_id", required=True),
        schema_version=version,
        body=_body(obj, topic),
    )
