"""Page tokens: signed, typed, and whatever a client sends, INVALID_ARGUMENT or a key."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer_core.domain.paging import Part, decode_token, encode_token
from customer_core.errors import InvalidArgument

KEY = b"k" * 32
SHAPE = (Part.TIME, Part.UUID)


def test_an_issued_token_round_trips_typed():
    at, rid = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), uuid.uuid4()
    token = encode_token(KEY, "q", [at.isoformat(), str(rid)])
    assert decode_token(KEY, "q", token, SHAPE) == (at, rid)
    assert decode_token(KEY, "q", "", SHAPE) is None


@pytest.mark.parametrize(
    ("secret", "query", "problem"),
    [
        (b"another key of the right length", "q", "is not a token this service issued"),
        (KEY, "another list", "belongs to a different list or filter"),
    ],
)
def test_a_token_of_another_key_or_list_is_refused(secret: bytes, query: str, problem: str):
    token = encode_token(KEY, "q", [1])
    with pytest.raises(InvalidArgument) as err:
        decode_token(secret, query, token, (Part.INT64,))
    assert err.value.field == "page_token" and problem in str(err.value)


@pytest.mark.parametrize(
    "key",
    [[2**63], [-(2**63) - 1], [True], [1.0], ["1"], [1, 2], [], [None]],
)
def test_a_signed_key_of_another_shape_is_refused(key: list[object]):
    # Signed by us (an older version, say) but not what this list reads.
    with pytest.raises(InvalidArgument) as err:
        decode_token(KEY, "q", encode_token(KEY, "q", key), (Part.INT64,))
    assert err.value.field == "page_token"


def test_int64_bounds_are_kept():
    for n in (2**63 - 1, -(2**63)):
        assert decode_token(KEY, "q", encode_token(KEY, "q", [n]), (Part.INT64,)) == (n,)


@given(st.text(max_size=600))
def test_any_text_is_a_key_or_invalid_argument_naming_page_token(token: str):
    try:
        decode_token(KEY, "q", token, SHAPE)
    except InvalidArgument as err:
        assert err.field == "page_token"


@given(st.integers(0, 200), st.sampled_from("AB_-x"))
def test_changing_any_character_of_an_issued_token_is_refused(i: int, char: str):
    token = encode_token(
        KEY, "q", [datetime(2025, 1, 1, tzinfo=UTC).isoformat(), str(uuid.UUID(int=7))]
    )
    i %= len(token)
    if token[i] == char:
        return
    with pytest.raises(InvalidArgument):
        decode_token(KEY, "q", token[:i] + char + token[i + 1 :], SHAPE)
