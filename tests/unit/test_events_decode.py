"""Decoding order events from protobuf JSON: agreement with json_format, and clear errors."""

from __future__ import annotations

import contextlib
import json
import uuid
from datetime import UTC, datetime

import pytest
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_core.domain.order_events import Cancelled, Completed, Payment, Placed, Topic
from customer_core.errors import InvalidArgument
from customer_core.events.decode import decode_event
from customer_core.events.encode import encode_event
from customer_core.pb.customer.v1 import events_pb2

CUSTOMER = "3f2b6c1e-7a55-4c1e-9d7b-2f1f0c7a9e11"
BASE = {
    "eventId": "e-1",
    "eventType": "order.placed",
    "occurredAt": "2025-03-03T08:30:00.123456789Z",
    "customerId": CUSTOMER,
    "orderId": "o-1",
    "schemaVersion": 1,
    "placed": {
        "items": [
            {
                "drinkId": "flat-white",
                "drinkName": "Flat White",
                "size": "medium",
                "quantity": 2,
                "unitPriceMinor": "495",
            }
        ],
        "currencyCode": "USD",
        "subtotalMinor": "990",
        "totalMinor": 990,
    },
}


def decode(data: object, topic: Topic = Topic.PLACED):
    return decode_event(json.dumps(data).encode(), topic)


def test_reads_camel_case_int64_strings_and_nanosecond_timestamps():
    ev = decode(BASE)
    assert ev.customer_id == uuid.UUID(CUSTOMER)
    assert ev.occurred_at == datetime(2025, 3, 3, 8, 30, 0, 123456, tzinfo=UTC)
    assert isinstance(ev.body, Placed)
    assert ev.body.total_minor == 990
    assert ev.body.items[0].unit_price_minor == 495


def test_reads_original_field_names_and_ignores_unknown_fields():
    data = {
        "event_id": "e-2",
        "event_type": "payment.processed",
        "occurred_at": "2025-03-03T09:00:00+02:00",
        "customer_id": CUSTOMER,
        "order_id": "o-1",
        "schema_version": 1,
        "brandNewField": {"x": 1},
        "payment": {"payment_id": "p-1", "amount_minor": 990, "currency_code": "USD", "method": 2},
    }
    ev = decode(data, Topic.PAYMENT)
    assert ev.body == Payment("p-1", 990, "USD", "wallet")
    assert ev.occurred_at == datetime(2025, 3, 3, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"eventType": "order.completed"}, "event_type"),
        ({"schemaVersion": 2}, "schema_version"),
        ({"schemaVersion": None}, "schema_version"),
        ({"customerId": "customers/abc"}, "customer_id"),
        ({"eventId": ""}, "event_id"),
        ({"orderId": None}, "order_id"),
        ({"occurredAt": "yesterday"}, "occurred_at"),
        ({"occurredAt": "2025-03-03T08:30:00"}, "occurred_at"),
        ({"placed": None}, "placed"),
        ({"completed": {"totalMinor": "1"}}, "body"),
        ({"placed": {**BASE["placed"], "totalMinor": "-1"}}, "placed.total_minor"),  # type: ignore[dict-item]
        ({"placed": {**BASE["placed"], "currencyCode": "usd"}}, "placed.currency_code"),  # type: ignore[dict-item]
        ({"placed": {**BASE["placed"], "items": []}}, "placed.items"),  # type: ignore[dict-item]
        (
            {"placed": {**BASE["placed"], "items": [{"drinkId": "x", "quantity": 0}]}},  # type: ignore[dict-item]
            "placed.items[0].quantity",
        ),
        ({"placed": {**BASE["placed"], "subtotalMinor": "12x"}}, "placed.subtotal_minor"),  # type: ignore[dict-item]
    ],
)
def test_bad_events_name_the_field(change: dict[str, object], field: str):
    with pytest.raises(InvalidArgument) as err:
        decode({**BASE, **change})
    assert err.value.field == field


@pytest.mark.parametrize("raw", [b"", b"{not json", b"[1, 2]", b"\xff\xfe", None])
def test_undecodable_values_are_invalid_not_crashes(raw: bytes | None):
    with pytest.raises(InvalidArgument):
        decode_event(raw, Topic.PLACED)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_the_decoder(raw: bytes):
    with contextlib.suppress(InvalidArgument):
        decode_event(raw, Topic.CANCELLED)


# Identifiers are never blank (the decoder refuses whitespace-only ids on purpose).
_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20
).filter(str.strip)
_money = st.integers(0, 10**12)
_items = st.lists(
    st.builds(
        events_pb2.OrderItem,
        drink_id=_text,
        drink_name=_text,
        size=_text,
        quantity=st.integers(1, 50),
        unit_price_minor=_money,
    ),
    min_size=1,
    max_size=4,
)


@st.composite
def pb_events(draw: st.DrawFn) -> tuple[events_pb2.OrderEvent, Topic]:
    topic = draw(st.sampled_from(list(Topic)))
    msg = events_pb2.OrderEvent(
        event_id=draw(_text),
        event_type=topic.value,
        customer_id=str(draw(st.uuids())),
        order_id=draw(_text),
        schema_version=1,
    )
    msg.occurred_at.FromDatetime(draw(st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1))))
    if topic is Topic.PLACED:
        msg.placed.items.extend(draw(_items))
        msg.placed.currency_code = "EUR"
        msg.placed.total_minor = draw(_money)
        msg.placed.subtotal_minor = draw(_money)
    elif topic is Topic.COMPLETED:
        msg.completed.total_minor = draw(_money)
        msg.completed.currency_code = "EUR"
        msg.completed.items.extend(draw(st.lists(_items.map(lambda i: i[0]), max_size=2)))
    elif topic is Topic.CANCELLED:
        msg.cancelled.reason = draw(st.text(max_size=20))
    else:
        msg.payment.payment_id = draw(_text)
        msg.payment.amount_minor = draw(_money)
        msg.payment.currency_code = "EUR"
        msg.payment.method = draw(st.sampled_from([1, 2, 3, 4]))
    return msg, topic


@settings(max_examples=150, deadline=None)
@given(pb_events(), st.booleans())
def test_agrees_with_json_format_on_whatever_it_writes(case, original_names: bool):
    msg, topic = case
    raw = json_format.MessageToJson(msg, preserving_proto_field_name=original_names)
    ev = decode_event(raw.encode(), topic)
    assert ev.event_id == msg.event_id
    assert ev.order_id == msg.order_id
    assert str(ev.customer_id) == msg.customer_id
    assert ev.occurred_at == msg.occurred_at.ToDatetime(tzinfo=UTC)
    body = ev.body
    if isinstance(body, Placed):
        assert body.total_minor == msg.placed.total_minor
        assert [(i.drink_id, i.quantity, i.unit_price_minor) for i in body.items] == [
            (i.drink_id, i.quantity, i.unit_price_minor) for i in msg.placed.items
        ]
    elif isinstance(body, Completed):
        assert body.total_minor == msg.completed.total_minor
        assert len(body.items) == len(msg.completed.items)
    elif isinstance(body, Cancelled):
        assert body.reason == msg.cancelled.reason
    else:
        assert (body.payment_id, body.amount_minor) == (
            msg.payment.payment_id,
            msg.payment.amount_minor,
        )
    # And what we write, json_format reads back as the same message.
    back = json_format.Parse(encode_event(ev), events_pb2.OrderEvent())
    assert back.event_id == msg.event_id
    assert back.WhichOneof("body") == msg.WhichOneof("body")
