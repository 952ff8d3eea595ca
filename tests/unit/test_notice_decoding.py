"""What arrives from Valkey (doorbells on the notice channel, activity stream entries)
is read or refused with ValueError: a malformed one is skipped, never a crash of the
replica's listener or of a client's stream."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer_core.notices import ENTRY_FIELD, Activity, Notice

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=10,
)
CID = "3f2b6c1e-7a55-4c1e-9d7b-2f1f0c7a9e11"


@pytest.mark.parametrize(
    "raw",
    [
        '{"c": 5}',
        '{"c": ["x"]}',
        f'{{"c": "{CID}", "f": 7}}',
        f'{{"c": "{CID}", "ch": 5}}',
        f'{{"c": "{CID}", "ch": [1, {{}}]}}',
        '"text"',
        "[]",
        "{",
    ],
)
def test_a_malformed_doorbell_is_a_value_error(raw: str):
    with pytest.raises(ValueError):  # noqa: PT011 - json's and uuid's messages differ
        Notice.decode(raw)


@given(st.dictionaries(st.sampled_from(["c", "f", "ch", "x"]), _json, max_size=4) | _json)
def test_any_json_doorbell_is_read_or_a_value_error(data: object):
    with contextlib.suppress(ValueError):
        Notice.decode(json.dumps(data))


@given(st.lists(_json, max_size=10))
def test_any_entry_is_read_or_a_value_error(values: list[object]):
    with contextlib.suppress(ValueError, KeyError):
        Activity.from_fields({ENTRY_FIELD: json.dumps(values)})
