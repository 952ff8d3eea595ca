"""Order events as protobuf JSON: decoding and validating them.

The contract is `customer.v1.OrderEvent` (proto/customer/v1/events.proto) in
the canonical protobuf JSON mapping. We read it with orjson and a hand-written
walk rather than `google.protobuf.json_format`, which costs several times more
per event on the consumer's hot path; a property test checks that both agree
on everything `json_format` produces. The canonical form (what producers send
nearly always) is read here with direct look-ups; anything else goes through
the general walk (customer_core.events.walk), which accepts every spelling
the mapping allows. Encoding is in customer_core.events.encode.

Every problem raises `InvalidArgument` naming the field (dotted path): the
consumer dead-letters the event with that as the reason.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import orjson
from asyncpg.pgproto.pgproto import UUID as PgUUID

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
from customer_core.events.walk import (
    BODY_KEYS,
    KEY_FOR_TOPIC,
    MAX_ID_LENGTH,
    MAX_ITEMS,
    MAX_MINOR,
    MAX_QUANTITY,
    PAYMENT_METHODS,
    int_text,
    timestamp,
    walk,
)


def decode_event(raw: bytes | str | None, topic: Topic) -> OrderEvent:
    """Decode and validate one event that arrived on `topic`'s topic."""
    if raw is None:
        raise InvalidArgument("value", "empty record (no value)")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        # What orjson refuses but `json` reads (integers beyond 64 bits, NaN, lone
        # surrogates), `json` reads, so its walk names the field at fault; the rest
        # gets `json`'s message.
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidArgument("value", f"not JSON: {exc}") from None
        except RecursionError:
            # orjson stops at 1024 levels; `json` at Python's recursion limit.
            raise InvalidArgument("value", "not JSON: nested too deeply") from None
        try:
            json.dumps(data, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            # Text no database column can hold: refused here, with a reason.
            raise InvalidArgument("value", "not Unicode text (an unpaired surrogate)") from None
    return _canonical(data, topic) or walk(data, topic)


# ---- The canonical form, read fast -----------------------------------------------------
# `walk` is the definition; this copy is kept for speed; tests/unit/test_events_fast.py
# proves they agree.
# What producers send nearly always: lowerCamelCase names, every field present,
# well-typed. Read with direct look-ups; at the first thing out of the ordinary
# (a missing or original-name field, a number as a float, any invalid value)
# give up and let `_walk` decide, so both readers always agree (a property test
# checks it) and every error comes from `_walk`.


OTHER_BODY_KEYS = {t: [k for k in BODY_KEYS if k != KEY_FOR_TOPIC[t]] for t in Topic}


def _fast_text(value: object, required: bool, limit: int = MAX_ID_LENGTH) -> str | None:
    if type(value) is not str or len(value) > limit or (required and not value.strip()):
        return None
    return value


def _fast_amount(value: object) -> int | None:
    if type(value) is str:
        value = int_text(value)
    if type(value) is not int or not 0 <= value <= MAX_MINOR:
        return None
    return value


def _fast_currency(value: object) -> str | None:
    if type(value) is not str or len(value) != 3 or not value.isascii():
        return None
    return value if value.isalpha() and value.isupper() else None


def _fast_items(raw: object) -> tuple[Item, ...] | None:
    if type(raw) is not list or len(raw) > MAX_ITEMS:
        return None
    items = []
    for it in raw:
        if type(it) is not dict:
            return None
        drink_id = _fast_text(it.get("drinkId"), True, 64)
        name = _fast_text(it.get("drinkName"), False, 200)
        size = _fast_text(it.get("size"), False, 40)
        quantity = it.get("quantity")
        price = _fast_amount(it.get("unitPriceMinor"))
        if drink_id is None or name is None or size is None or price is None:
            return None
        if type(quantity) is not int or not 1 <= quantity <= MAX_QUANTITY:
            return None
        items.append(Item(drink_id, name, size, quantity, price))
    return tuple(items)


def _fast_body(data: dict[str, Any], topic: Topic) -> Body | None:
    key = KEY_FOR_TOPIC[topic]
    b = data.get(key)
    if type(b) is not dict:
        return None
    for other in OTHER_BODY_KEYS[topic]:
        if data.get(other) is not None:
            return None
    if topic is Topic.PLACED or topic is Topic.COMPLETED:
        raw_items = b.get("items")
        items = () if raw_items is None and topic is Topic.COMPLETED else _fast_items(raw_items)
        currency = _fast_currency(b.get("currencyCode"))
        total = _fast_amount(b.get("totalMinor"))
        if items is None or currency is None or total is None:
            return None
        if topic is Topic.COMPLETED:
            return Completed(total, currency, items)
        subtotal = _fast_amount(b.get("subtotalMinor"))
        return Placed(items, currency, subtotal, total) if items and subtotal is not None else None
    if topic is Topic.CANCELLED:
        reason = b.get("reason")
        reason = "" if reason is None else _fast_text(reason, False, 500)
        return None if reason is None else Cancelled(reason)
    payment_id = _fast_text(b.get("paymentId"), True)
    amount = _fast_amount(b.get("amountMinor"))
    currency = _fast_currency(b.get("currencyCode"))
    method = b.get("method")
    if method is None:
        method = "unspecified"
    else:
        method = PAYMENT_METHODS.get(method) if type(method) is str else None
    if payment_id is None or amount is None or currency is None or method is None:
        return None
    return Payment(payment_id, amount, currency, method)


def _fast_time(value: object) -> datetime | None:
    # Whole seconds or microseconds in UTC, as most writers put it, parse as is;
    # any other form takes the general route (nanoseconds, offsets).
    if type(value) is str and value[-1:] == "Z" and (len(value) == 20 or len(value) == 27):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    try:
        return timestamp(value, "occurred_at")
    except InvalidArgument:
        return None


def _canonical(raw: object, topic: Topic) -> OrderEvent | None:
    if type(raw) is not dict:
        return None
    data: dict[str, Any] = raw
    version = data.get("schemaVersion")
    if type(version) is not int or version not in SCHEMA_VERSIONS:
        return None
    if data.get("eventType") != topic.value:
        return None
    event_id = _fast_text(data.get("eventId"), True)
    order_id = _fast_text(data.get("orderId"), True)
    customer = _fast_text(data.get("customerId"), True)
    occurred_at = _fast_time(data.get("occurredAt"))
    if event_id is None or order_id is None or customer is None or occurred_at is None:
        return None
    try:
        # asyncpg's UUID (a uuid.UUID): parsed, hashed and sent to PostgreSQL in C,
        # where uuid.UUID does each in Python, several times per event.
        customer_id: uuid.UUID = PgUUID(customer)
    except ValueError:
        return None
    body = _fast_body(data, topic)
    if body is None:
        return None
    return OrderEvent(event_id, topic, occurred_at, customer_id, order_id, version, body)
