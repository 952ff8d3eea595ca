"""The notifier's orjson arguments carry exactly the text the redis-py path writes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from asyncpg.pgproto.pgproto import UUID as PgUUID
from hypothesis import given
from hypothesis import strategies as st

from customer_consumer import notifier
from customer_core import notices
from customer_core.cache import generation_key
from customer_core.notices import Activity, Notice

texts = st.text(max_size=20)
# Ids read from the database are asyncpg's UUID subclass, which orjson does not know.
uuids = st.uuids() | st.uuids().map(lambda u: PgUUID(str(u)))
times = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-3, minutes=-30))]
    ),
)
activities = st.builds(
    Activity,
    kind=texts,
    customer_id=uuids,
    family_id=st.none() | uuids,
    order_id=texts,
    points=st.integers(-(10**12), 10**12),
    reward_id=st.none() | uuids,
    tier=texts,
    campaign=texts,
    occurred_at=times,
)


@given(activities)
def test_entry_values_decode_to_what_to_fields_gives(a: Activity):
    fields = a.to_fields()
    assert tuple(fields) == notices.FIELD_NAMES
    assert orjson.loads(notifier._json(notifier.field_values(a))) == list(fields.values())


@given(activities)
def test_the_scripts_entry_is_byte_for_byte_the_notices_entry_and_reads_back(a: Activity):
    entry = a.to_entry()
    assert notifier.entry_text(a) == entry[notices.ENTRY_FIELD]
    assert Activity.from_fields({k.encode(): v.encode() for k, v in entry.items()}) == a


@given(activities)
def test_entries_in_the_older_nine_field_form_still_read(a: Activity):
    assert Activity.from_fields({k.encode(): v.encode() for k, v in a.to_fields().items()}) == a


@pytest.mark.parametrize("text", ['{"kind": "x"}', "[1, 2]", "not json", '["x"]'])
def test_a_malformed_entry_is_a_value_error(text: str):
    with pytest.raises((ValueError, KeyError)):
        Activity.from_fields({notices.ENTRY_FIELD.encode(): text.encode()})


@given(uuids, st.none() | uuids, st.frozensets(st.sampled_from(["stats", "points", "tier"])))
def test_doorbells_are_byte_for_byte_the_notices_encoding(
    cid: uuid.UUID, fid: uuid.UUID | None, changed: frozenset[str]
):
    n = Notice(cid, fid, changed)
    assert notifier.doorbell(n) == n.encode()


def test_generations_are_bumped_in_the_first_call_and_doorbells_ring_in_the_last():
    cid, other = uuid.uuid4(), uuid.uuid4()
    batch = [Activity("order_placed", cid, order_id=f"o{i}") for i in range(600)]
    calls = list(
        notifier.script_calls(
            [Notice(other, None, frozenset({"stats"}))], batch, [cid, other], chunk=250
        )
    )
    assert len(calls) == 3
    (keys0, args0, _), (keys1, args1, _), (keys2, args2, _) = calls
    streams = int(args0[-1])
    assert keys0[streams:] == [generation_key(cid), generation_key(other)]
    assert [int(args[-1]) for args in (args0, args1, args2)] == [
        len(k) for k in (keys0[:streams], keys1, keys2)
    ]
    assert len(orjson.loads(args0[4])) == 250 and len(orjson.loads(args2[4])) == 100
    assert args0[5] == b"[]" and args1[5] == b"[]"
    rung = {Notice.decode(d).customer_id for d in orjson.loads(args2[5])}
    assert rung == {cid, other}


def test_only_due_streams_are_refreshed_and_the_tracker_stays_bounded():
    now = [0.0]
    ttls = notifier.RecentTtls(every=60, limit=3, clock=lambda: now[0])
    cid, fid = uuid.uuid4(), uuid.uuid4()
    batch = [Activity("order_placed", cid, fid, order_id="o")]
    [(keys, args, refresh)] = notifier.script_calls([], batch, due=ttls.due)
    assert refresh == keys == [notices.customer_stream(cid), notices.family_stream(fid)]
    assert orjson.loads(args[-2]) == [1, 2]  # Lua's indexes of the streams to EXPIRE
    ttls.refreshed(refresh)
    [(_, args, refresh)] = notifier.script_calls([], batch, due=ttls.due)
    assert refresh == [] and orjson.loads(args[-2]) == []
    now[0] = 60.0
    assert ttls.due(keys[0]) and ttls.due(keys[1])
    ttls.refreshed(keys)
    ttls.refreshed(["a", "b"])  # over the limit: forgets, so everything is due again
    assert ttls.due(keys[0]) and not ttls.due("a")
