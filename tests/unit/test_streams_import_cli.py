"""Reading import files: CSV rows and JSON lines into ImportRecord messages."""

from __future__ import annotations

import io

import pytest

from customer_api.import_cli import BadLine, enum_value, read_csv, read_jsonl
from customer_core.errors import InvalidArgument
from customer_core.pb.customer.v1 import customer_pb2 as pb


def test_enum_columns_take_short_words_or_full_names() -> None:
    assert enum_value("milk", "oat") == pb.MILK_TYPE_OAT
    assert enum_value("milk", "MILK_TYPE_OAT") == pb.MILK_TYPE_OAT
    assert enum_value("size", "extra-large") == pb.DRINK_SIZE_EXTRA_LARGE
    assert enum_value("restrictions", "gluten_free") == pb.DIETARY_RESTRICTION_GLUTEN_FREE
    with pytest.raises(BadLine, match="milk: unknown value 'goat'"):
        enum_value("milk", "goat")


def test_csv_rows_become_records_and_bad_rows_say_why() -> None:
    text = (
        "external_id,username,role,restrictions,allergies,opening_points,favorites\n"
        'a,ana,owner,vegan;halal,Nuts; Soy ,10,"[{""drinkId"": ""x"", ""drinkName"": ""X""}]"\n'
        "b,bo,boss,,,0,\n"
        "c,cy,,,,ten,\n"
    )
    rows = list(read_csv(io.StringIO(text)))
    line, first = rows[0]
    assert line == 2 and isinstance(first, pb.ImportRecord)
    assert (first.role, list(first.dietary.allergies), first.opening_points) == (
        pb.FAMILY_ROLE_OWNER,
        ["Nuts", "Soy"],
        10,
    )
    assert list(first.dietary.restrictions) == [
        pb.DIETARY_RESTRICTION_VEGAN,
        pb.DIETARY_RESTRICTION_HALAL,
    ]
    assert first.favorites[0].drink_id == "x"
    assert [(n, str(e)) for n, e in rows[1:]] == [
        (3, "role: unknown value 'boss'"),
        (
            4,
            "extra_shots / opening_points: not a whole number (invalid literal for int() with "
            "base 10: 'ten')",
        ),
    ]


def test_a_row_no_parser_reads_is_a_bad_line_and_the_next_rows_still_read() -> None:
    text = (
        "external_id,username,favorites\n"
        f'a,ana,"{"[" * 50_000}"\n'  # deeper than json's recursion limit
        f'b,bo,"{"x" * 200_000}"\n'  # past csv's field size limit
        "c,cy,\n"
    )
    rows = list(read_csv(io.StringIO(text)))
    assert [type(r).__name__ for _, r in rows] == ["BadLine", "BadLine", "ImportRecord"]
    assert str(rows[0][1]).startswith("favorites: not a JSON array")
    assert str(rows[1][1]).startswith("not a CSV row")
    assert rows[2][1].external_id == "c"  # type: ignore[union-attr]


def test_an_unknown_csv_column_is_refused_up_front() -> None:
    with pytest.raises(InvalidArgument, match="unknown CSV column"):
        list(read_csv(io.StringIO("external_id,shoe_size\n1,44\n")))


def test_json_lines_use_the_protobuf_json_mapping() -> None:
    text = '{"externalId": "a", "role": "FAMILY_ROLE_CHILD"}\n\n{"nope": 1}\n'
    rows = list(read_jsonl(io.StringIO(text)))
    assert rows[0][1] == pb.ImportRecord(external_id="a", role=pb.FAMILY_ROLE_CHILD)
    assert rows[1][0] == 3 and isinstance(rows[1][1], BadLine)
