"""The sample import files in examples/ read cleanly with the import command's readers."""

from __future__ import annotations

from pathlib import Path

from customer_api.import_cli import BadLine, read_csv, read_jsonl
from customer_core.pb.customer.v1 import customer_pb2 as pb

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_csv_sample_reads_every_line() -> None:
    with open(EXAMPLES / "customers.csv", newline="") as f:
        rows = list(read_csv(f))
    records = [r for _, r in rows if not isinstance(r, BadLine)]
    assert len(records) == len(rows) == 5
    ola = records[0]
    assert ola.role == pb.FAMILY_ROLE_OWNER
    assert ola.preferences.milk == pb.MILK_TYPE_OAT
    assert list(ola.dietary.restrictions) == [
        pb.DIETARY_RESTRICTION_VEGAN,
        pb.DIETARY_RESTRICTION_NUT_FREE,
    ]
    assert ola.favorites[0].is_usual
    assert ola.opening_points == 250
    # The last row is read, and left for the server to reject (its username is too short).
    assert records[-1].username == "x"


def test_the_jsonl_sample_reads_every_line() -> None:
    with open(EXAMPLES / "customers.jsonl") as f:
        records = [r for _, r in read_jsonl(f)]
    assert all(isinstance(r, pb.ImportRecord) for r in records)
    assert [r.username for r in records] == ["mia.lopez", "leo.lopez"]  # type: ignore[union-attr]
