"""What orjson reads differently from `json` still decodes (or fails) as `json` made it."""

from __future__ import annotations

import json

import pytest

from customer_core.domain.order_events import Placed, Topic
from customer_core.errors import InvalidArgument
from customer_core.events.decode import decode_event
from tests.unit.test_events_decode import BASE


def raw_with_total(total: str) -> bytes:
    text = json.dumps({**BASE, "placed": {**BASE["placed"], "totalMinor": 990}})
    return text.replace('"totalMinor": 990', f'"totalMinor": {total}').encode()


@pytest.mark.parametrize(
    ("total", "problem"),
    [
        # orjson reads integers beyond 64 bits as floats; `json` keeps them exact.
        ("123456789012345678901234567890", "out of the 64-bit range"),
        ("NaN", "placed.total_minor"),  # `json` reads NaN, orjson refuses it
        ("1e400", "placed.total_minor"),
    ],
)
def test_numbers_orjson_refuses_are_named_by_field(total: str, problem: str):
    with pytest.raises(InvalidArgument) as err:
        decode_event(raw_with_total(total), Topic.PLACED)
    assert err.value.field == "placed.total_minor"
    assert problem in str(err.value)


def test_an_unpaired_surrogate_is_refused_as_the_value_before_the_database():
    # It would pass validation and then fail to encode for PostgreSQL, costing the
    # whole batch a retry one event at a time before it was dead-lettered.
    raw = json.dumps({**BASE, "orderId": "o-\ud800"}).encode()
    with pytest.raises(InvalidArgument) as err:
        decode_event(raw, Topic.PLACED)
    assert err.value.field == "value"
    assert "surrogate" in str(err.value)


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"{", b"", b"[1,]", b'{"a": 1} x'])
def test_what_is_not_json_is_refused_as_the_value(raw: bytes):
    with pytest.raises(InvalidArgument) as err:
        decode_event(raw, Topic.PLACED)
    assert err.value.field == "value"
    assert "not JSON" in str(err.value)


def test_a_paired_surrogate_escape_and_duplicate_keys_read_as_json_reads_them():
    data = {**BASE, "orderId": "o-\U0001f600"}
    text = json.dumps(data).replace('"eventId": "e-1"', '"eventId": "e-0", "eventId": "e-1"')
    ev = decode_event(text.encode(), Topic.PLACED)
    assert ev.order_id == "o-\U0001f600" and ev.event_id == "e-1"
    assert isinstance(ev.body, Placed)
