"""Activity entries and doorbells are written once, fast, as the plain forms would write them;
the batch script's arguments are built from them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from asyncpg.pgproto.pgproto import UUID as PgUUID
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_core import batch_notices as notifier
from customer_core import notices
from customer_core.cache_keys import generation_key
from customer_core.notices import Activity, Notice

texts = st.text(max_size=20)
# Ids read from the database are asyncpg's UUID subclass, which orjson does not know.
uuids = st.uuids() | st.uuids().map(lambda u: PgUUID(str(u)))
times = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
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
def test_an_entry_is_byte_for_byte_the_json_of_to_fields_values_and_reads_back(a: Activity):
    fields = a.to_fields()
    assert tuple(fields) == notices.FIELD_NAMES
    entry = a.to_entry()
    assert entry == {notices.ENTRY_FIELD: a.entry_text()}
    # The plain writer `entry_text` stands for: isoformat() and str() of every value.
    assert a.entry_text() == json.dumps(
        list(fields.values()), ensure_ascii=False, separators=(",", ":")
    )
    assert Activity.from_fields({k.encode(): v.encode() for k, v in entry.items()}) == a


@given(activities)
def test_entries_in_the_older_nine_field_form_still_read(a: Activity):
    assert Activity.from_fields({k.encode(): v.encode() for k, v in a.to_fields().items()}) == a


@pytest.mark.parametrize("text", ['{"kind": "x"}', "[1, 2]", "not json", '["x"]'])
def test_a_malformed_entry_is_a_value_error(text: str):
    with pytest.raises((ValueError, KeyError)):
        Activity.from_fields({notices.ENTRY_FIELD.encode(): text.encode()})


changes = st.frozensets(st.sampled_from(["stats", "points", "tier", "activity", "é"]))


@given(uuids, st.none() | uuids, changes)
def test_a_doorbell_is_what_the_plain_json_writer_writes_and_reads_back(
    cid: uuid.UUID, fid: uuid.UUID | None, changed: frozenset[str]
):
    n = Notice(cid, fid, changed)
    plain = {"c": str(cid), "f": str(fid) if fid else None, "ch": sorted(changed)}
    assert n.encode() == json.dumps(plain, ensure_ascii=False, separators=(",", ":"))
    assert Notice.decode(n.encode()) == Notice(uuid.UUID(str(cid)), fid, changed)


few = st.sampled_from([uuid.UUID(int=i) for i in range(1, 4)])
ringers = st.builds(
    Activity, kind=st.just("order_placed"), customer_id=few, family_id=st.none() | few
)


@settings(max_examples=300)
@given(st.lists(ringers, max_size=12), st.lists(st.builds(Notice, few, st.none() | few, changes)))
def test_doorbells_are_the_merge_of_one_activity_notice_per_entry_then_the_notices(
    batch: list[Activity], extra: list[Notice]
):
    one_each = [Notice(a.customer_id, a.family_id, frozenset({notices.ACTIVITY})) for a in batch]
    assert notices.doorbells(extra, batch) == notices.merge([*one_each, *extra])


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
