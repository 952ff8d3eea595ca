"""The fast reader of the canonical form agrees with the general walk on everything."""

from __future__ import annotations

import copy
import json
import re
import uuid

from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_core.domain.order_events import Topic
from customer_core.errors import InvalidArgument
from customer_core.events.decode import _canonical, decode_event
from customer_core.events.encode import encode_event
from customer_core.events.walk import walk
from tests.unit.test_events_decode import BASE, pb_events

ODD_VALUES = [
    None,
    0,
    1,
    -1,
    2,
    1.0,
    1.5,
    True,
    False,
    "",
    " ",
    "x",
    "0",
    "12",
    "-5",
    " 7",
    "1_0",
    "10000000000001",
    10**13,
    10**13 + 1,
    2**63,
    [],
    {},
    [{}],
    "USD",
    "usd",
    "EURO",
    "U$D",
    "order.placed",
    "PAYMENT_METHOD_CASH",
    "PAYMENT_METHOD_NOPE",
    "x" * 201,
    "2025-03-03T08:30:00Z",
    "2025-03-03T08:30:00.123456Z",
    "2025-03-03T08:30:00.123456789Z",
    "2025-03-03T08:30:00+02:00",
    "2025-03-03T08:30:00",
    "2025-03-03 08:30:00Z",
    "20250303T083000.000Z",
    "2025-13-03T08:30:00Z",
    "3f2b6c1e-7a55-4c1e-9d7b-2f1f0c7a9e11",
    "{3f2b6c1e-7a55-4c1e-9d7b-2f1f0c7a9e11}",
]


def _paths(value: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m[1].lower(), name)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[object, Topic]:
    msg, topic = draw(pb_events())
    data: object = json.loads(json_format.MessageToJson(msg))
    for _ in range(draw(st.integers(0, 3))):
        paths = _paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        *parents, last = path
        holder = data
        for p in parents:
            holder = holder[p]  # type: ignore[index]
        how = draw(st.sampled_from(["set", "delete", "snake"]))
        if how == "set":
            # A copy: the lists among ODD_VALUES must never end up inside themselves.
            holder[last] = copy.deepcopy(draw(st.sampled_from(ODD_VALUES)))  # type: ignore[index]
        elif isinstance(holder, dict):
            value = holder.pop(last)
            if how == "snake" and isinstance(last, str):
                holder[_snake(last)] = value
    if draw(st.booleans()):
        data = {**data, "payment": {"paymentId": "p"}} if isinstance(data, dict) else data
    return data, draw(st.sampled_from([topic, topic, topic, *Topic]))


def _outcome(read, data: object, topic: Topic) -> object:
    try:
        return read(copy.deepcopy(data), topic)
    except InvalidArgument as exc:
        return ("error", exc.field, str(exc))


@settings(max_examples=600, deadline=None)
@given(mutated())
def test_the_fast_reader_accepts_only_what_the_walk_reads_the_same(case):
    data, topic = case
    fast = _canonical(copy.deepcopy(data), topic)
    slow = _outcome(walk, data, topic)
    if fast is not None:
        assert fast == slow
    raw = json.dumps(data).encode()
    assert _outcome(decode_event, raw, topic) == slow


@settings(max_examples=100, deadline=None)
@given(pb_events())
def test_what_we_encode_takes_the_fast_path(case):
    msg, topic = case
    event = walk(json.loads(json_format.MessageToJson(msg)), topic)
    assert _canonical(json.loads(encode_event(event)), topic) == event


UUID_CHARS = "0123456789abcdefABCDEF-{}_ :urn\u0663\uff11"


@settings(max_examples=400, deadline=None)
@given(
    st.uuids().map(str)
    | st.text(alphabet=UUID_CHARS, min_size=30, max_size=40)
    | st.uuids().map(lambda u: u.hex.upper())
    | st.tuples(st.uuids(), st.integers(0, 31)).map(
        lambda t: t[0].hex[: t[1]] + "-" + t[0].hex[t[1] :]
    )
)
def test_the_fast_readers_customer_ids_are_those_the_walk_reads(text: str):
    # The fast path parses with asyncpg's UUID; whatever it accepts, the walk
    # (uuid.UUID) must read as the same id, or the readers would disagree.
    data = {**json.loads(json.dumps(BASE)), "customerId": text}
    fast = _canonical(copy.deepcopy(data), Topic.PLACED)
    if fast is not None:
        assert fast == walk(data, Topic.PLACED)
        assert fast.customer_id == uuid.UUID(text)
