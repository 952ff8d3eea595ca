"""Order events encoded as protobuf JSON (the demo producer, the benchmark and tests).

The reading side, which validates, is customer_core.events.
"""

from __future__ import annotations

import json
from datetime import UTC

from customer_core.domain.order_events import (
    BODY_FOR_TOPIC,
    Body,
    Cancelled,
    Completed,
    Item,
    OrderEvent,
    Placed,
)
from customer_core.events.walk import PAYMENT_METHODS

_METHOD_NAMES = {v: k for k, v in PAYMENT_METHODS.items()}


def _item_json(item: Item) -> dict[str, object]:
    return {
        "drinkId": item.drink_id,
        "drinkName": item.drink_name,
        "size": item.size,
        "quantity": item.quantity,
        "unitPriceMinor": str(item.unit_price_minor),
    }


def _body_json(body: Body) -> tuple[str, dict[str, object]]:
    if isinstance(body, Placed):
        return "placed", {
            "items": [_item_json(i) for i in body.items],
            "currencyCode": body.currency_code,
            "subtotalMinor": str(body.subtotal_minor),
            "totalMinor": str(body.total_minor),
        }
    if isinstance(body, Completed):
        return "completed", {
            "totalMinor": str(body.total_minor),
            "currencyCode": body.currency_code,
            "items": [_item_json(i) for i in body.items],
        }
    if isinstance(body, Cancelled):
        return "cancelled", {"reason": body.reason}
    return "payment", {
        "paymentId": body.payment_id,
        "amountMinor": str(body.amount_minor),
        "currencyCode": body.currency_code,
        "method": _METHOD_NAMES.get(body.method, "PAYMENT_METHOD_UNSPECIFIED"),
    }


def event_json(event: OrderEvent) -> dict[str, object]:
    """The event in the canonical protobuf JSON mapping, as a dict."""
    key, body = _body_json(event.body)
    assert BODY_FOR_TOPIC[event.topic] is type(event.body)
    return {
        "eventId": event.event_id,
        "eventType": event.topic.value,
        "occurredAt": event.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "customerId": str(event.customer_id),
        "orderId": event.order_id,
        "schemaVersion": event.schema_version,
        key: body,
    }


def encode_event(event: OrderEvent) -> bytes:
    return json.dumps(event_json(event), separators=(",", ":")).encode()
