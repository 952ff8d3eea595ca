"""No record can stop the consumer: whatever a record holds, `decode_records` either
decodes it or makes it a dead letter with a reason; it never raises."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customer_consumer.records import decode_records
from customer_core.domain.order_events import Topic
from customer_core.errors import InvalidArgument
from customer_core.events.decode import decode_event
from tests.unit.test_events_decode import BASE

TOPIC = "t.order.placed"
TOPICS = {TOPIC: Topic.PLACED}


@dataclass(frozen=True)
class Record:
    value: bytes | None
    topic: str = TOPIC
    partition: int = 0
    offset: int = 7
    key: bytes | None = b"k"
    headers: tuple[tuple[str, bytes], ...] = ()


def with_time(text: object) -> bytes:
    return json.dumps({**BASE, "occurredAt": text}).encode()


def one(value: bytes | None):
    fetched = decode_records([Record(value)], TOPICS)
    assert len(fetched.good) + len(fetched.bad) == 1
    return fetched


@pytest.mark.parametrize(
    "when",
    [
        "0001-01-01T00:30:00+01:00",  # the review's record: before year 1 in UTC
        "9999-12-31T23:30:00-01:00",  # after year 9999 in UTC
        "0001-01-01T00:00:00.5+00:01",
    ],
)
def test_a_time_outside_what_python_holds_in_utc_is_a_dead_letter_naming_the_field(when: str):
    fetched = one(with_time(when))
    [dead] = fetched.bad
    assert dead.field == "occurred_at"
    assert dead.reason.startswith("occurred_at: ")
    assert dead.source.offset == 7 and dead.source.value == with_time(when)
    with pytest.raises(InvalidArgument) as err:
        decode_event(with_time(when), Topic.PLACED)
    assert err.value.field == "occurred_at"


@pytest.mark.parametrize("digits", ["١٢٣", "１２３", "1_000", " 12", "+12"])
def test_int64_strings_are_ascii_decimal_as_protobuf_writes_them(digits: str):
    data = {**BASE, "placed": {**BASE["placed"], "totalMinor": digits}}
    [dead] = one(json.dumps(data).encode()).bad
    assert dead.field == "placed.total_minor"


def test_an_unexpected_error_in_a_decoder_is_a_dead_letter_not_a_crash(monkeypatch):
    # Whatever a future decoder bug raises, the record is set aside and the rest go on.
    import customer_consumer.records as records

    def broken(raw: object, topic: object) -> object:
        raise OverflowError("date value out of range")

    monkeypatch.setattr(records, "decode_event", broken)
    fetched = decode_records([Record(b"{}"), Record(b"{}", offset=8)], TOPICS)
    assert [d.source.offset for d in fetched.bad] == [7, 8]
    assert (
        fetched.bad[0].reason
        == "value: could not be decoded (OverflowError: date value out of range)"
    )
    assert fetched.bad[0].field == "value"


@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"a":' * 3000 + b"1" + b"}" * 3000])
def test_json_nested_past_any_parser_is_not_json_naming_the_value(raw: bytes):
    [dead] = one(raw).bad
    assert dead.field == "value"
    assert dead.reason.startswith("value: not JSON")


def _json_values() -> st.SearchStrategy[object]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
        ),
        max_leaves=12,
    )


# Fields of the event, so arbitrary values land where the decoder looks.
_FIELDS = [
    "eventId",
    "eventType",
    "occurredAt",
    "customerId",
    "orderId",
    "schemaVersion",
    "event_id",
    "occurred_at",
    "schema_version",
    "placed",
    "completed",
    "payment",
]


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300)
@given(
    st.dictionaries(st.sampled_from(_FIELDS), _json_values(), max_size=6),
    st.sampled_from(list(Topic)),
)
def test_arbitrary_json_in_any_field_is_decoded_or_dead_lettered(changes, topic: Topic):
    raw = json.dumps({**BASE, "eventType": topic.value, **changes}).encode()
    fetched = decode_records([Record(raw)], {TOPIC: topic})
    assert len(fetched.good) + len(fetched.bad) == 1
    for dead in fetched.bad:
        assert dead.reason and dead.field


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_decoded_or_dead_lettered(raw: bytes):
    one(raw)


def _offsets() -> st.SearchStrategy[str]:
    sign = st.sampled_from("+-")
    hours = st.integers(0, 23).map(lambda h: f"{h:02d}")
    minutes = st.integers(0, 59).map(lambda m: f"{m:02d}")
    numeric = st.builds(lambda s, h, m: f"{s}{h}:{m}", sign, hours, minutes)
    return st.sampled_from(["Z", "z"]) | numeric


@settings(max_examples=500)
@given(
    # The ends of the range, where an offset carries the time out of it, and anything.
    st.sampled_from([datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59)])
    | st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    st.integers(0, 9),
    _offsets(),
    st.sampled_from("Tt "),
)
def test_any_rfc3339_time_of_any_year_and_offset_is_decoded_or_dead_lettered(
    at: datetime, fraction_digits: int, offset: str, separator: str
):
    fraction = f".{at.microsecond:06d}{'123'}"[: fraction_digits + 1] if fraction_digits else ""
    text = f"{at:%Y-%m-%d}{separator}{at:%H:%M:%S}{fraction}{offset}"
    fetched = one(with_time(text))
    for ev in fetched.good:
        assert ev.event.occurred_at.tzinfo is UTC
    for dead in fetched.bad:
        assert dead.field == "occurred_at"
