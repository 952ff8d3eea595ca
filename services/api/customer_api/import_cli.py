"""`customer-service import FILE`: stream a CSV or JSON Lines file of customers to ImportCustomers.

JSON Lines: one ImportRecord per line in protobuf's JSON mapping
(`{"externalId": "p-1", "familyExternalId": "f-1", "username": "ana", ...}`;
enums by name, e.g. `"role": "FAMILY_ROLE_ADULT"`).

CSV: a header row naming any of COLUMNS. Enum columns take the short word
(`oat`, `large`, `adult`) or the full name; `restrictions` and `allergies` are
`;`-separated; `favorites` is a JSON array of ImportFavorite
(`[{"drinkId": "latte", "drinkName": "Latte", "isUsual": true}]`).

Records go in messages of --per-message; a line that cannot be read is
reported here with its line number and not sent. The summary goes to stdout,
the progress bar to stderr. Exit status: 0 when every record was accepted, 1
when some were rejected, 2 for bad usage, 4 when the server is unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
import time
from array import array
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import grpc
from google.protobuf import json_format

from customer_api.stream_settings import grpc_target
from customer_core.errors import CustomerServiceError, InvalidArgument, Unavailable
from customer_core.pb.customer.v1 import customer_pb2 as pb
from customer_core.pb.customer.v1 import customer_pb2_grpc

COLUMNS = (
    "external_id",
    "family_external_id",
    "family_display_name",
    "username",
    "display_name",
    "email",
    "role",
    "milk",
    "size",
    "temperature",
    "sweetness",
    "caffeine",
    "extra_shots",
    "restrictions",
    "allergies",
    "favorites",
    "opening_points",
)
# CSV column -> (proto enum, name prefix) for the enum columns.
ENUMS: dict[str, tuple[Any, str]] = {
    "role": (pb.FamilyRole, "FAMILY_ROLE"),
    "milk": (pb.MilkType, "MILK_TYPE"),
    "size": (pb.DrinkSize, "DRINK_SIZE"),
    "temperature": (pb.Temperature, "TEMPERATURE"),
    "sweetness": (pb.Sweetness, "SWEETNESS"),
    "caffeine": (pb.CaffeineLevel, "CAFFEINE_LEVEL"),
}
PREFERENCES = ("milk", "size", "temperature", "sweetness", "caffeine")


class BadLine(ValueError):
    """A line that cannot become a record; the message says why."""


def enum_value(column: str, word: str) -> int:
    """A short word (`oat`) or a full name (`MILK_TYPE_OAT`) as the enum's number."""
    enum, prefix = ENUMS.get(column, (pb.DietaryRestriction, "DIETARY_RESTRICTION"))
    values = enum.DESCRIPTOR.values_by_name
    name = word.strip().upper().replace("-", "_")
    for candidate in (name, f"{prefix}_{name}"):
        if candidate in values:
            return int(values[candidate].number)
    raise BadLine(f"{column}: unknown value {word.strip()!r}")


def record_from_row(row: dict[str, str]) -> pb.ImportRecord:
    r = pb.ImportRecord()
    for key in (
        "external_id",
        "family_external_id",
        "family_display_name",
        "username",
        "display_name",
        "email",
    ):
        setattr(r, key, (row.get(key) or "").strip())
    if row.get("role"):
        r.role = enum_value("role", row["role"])  # type: ignore[assignment]
    for key in PREFERENCES:
        if row.get(key):
            setattr(r.preferences, key, enum_value(key, row[key]))
    try:
        r.preferences.extra_shots = int(row.get("extra_shots") or 0)
        r.opening_points = int(row.get("opening_points") or 0)
    except ValueError as exc:
        raise BadLine(f"extra_shots / opening_points: not a whole number ({exc})") from None
    for word in filter(None, (w.strip() for w in (row.get("restrictions") or "").split(";"))):
        r.dietary.restrictions.append(enum_value("restrictions", word))  # type: ignore[arg-type]
    r.dietary.allergies.extend(
        a.strip() for a in (row.get("allergies") or "").split(";") if a.strip()
    )
    if (row.get("favorites") or "").strip():
        try:
            for f in json.loads(row["favorites"]):
                r.favorites.append(json_format.ParseDict(f, pb.ImportFavorite()))
        except (ValueError, TypeError, RecursionError, json_format.ParseError) as exc:
            raise BadLine(f"favorites: not a JSON array of favorites ({exc})") from None
    return r


def read_csv(stream: IO[str]) -> Iterator[tuple[int, pb.ImportRecord | BadLine]]:
    reader = csv.DictReader(stream)
    unknown = [c for c in reader.fieldnames or () if c not in COLUMNS]
    if unknown:
        raise InvalidArgument(
            "FILE", f"unknown CSV column(s) {', '.join(unknown)}; known: {', '.join(COLUMNS)}"
        )
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # a field past csv's size limit, a NUL byte
            yield reader.line_num, BadLine(f"not a CSV row ({exc})")
            continue
        try:
            yield reader.line_num, record_from_row(row)
        except BadLine as exc:
            yield reader.line_num, exc


def read_jsonl(stream: IO[str]) -> Iterator[tuple[int, pb.ImportRecord | BadLine]]:
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            yield number, json_format.Parse(line, pb.ImportRecord())
        except json_format.ParseError as exc:
            yield number, BadLine(str(exc))


@dataclass
class Progress:
    """A one-line progress bar on stderr, redrawn at most five times a second."""

    total: int
    out: IO[str] = field(default_factory=lambda: sys.stderr)
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    _drawn: float = 0.0

    def advance(self, n: int, *, force: bool = False) -> None:
        self.done += n
        now = time.monotonic()
        if not force and now - self._drawn < 0.2:
            return
        self._drawn = now
        rate = self.done / max(now - self.started, 1e-9)
        share = self.done / self.total if self.total else 1.0
        bar = "#" * int(share * 30)
        self.out.write(
            f"\r[{bar:<30}] {share:4.0%} {self.done:,}/{self.total:,} records {rate:,.0f}/s"
        )
        self.out.flush()

    def close(self) -> None:
        self.advance(0, force=True)
        self.out.write("\n")


@dataclass
class Reading:
    """What was read from the file: the line of each record sent, and lines not sent."""

    lines: array[int] = field(default_factory=lambda: array("q"))
    bad: list[tuple[int, str]] = field(default_factory=list)


async def requests(
    rows: Iterator[tuple[int, pb.ImportRecord | BadLine]],
    per_message: int,
    reading: Reading,
    progress: Progress,
) -> AsyncIterator[pb.ImportCustomersRequest]:
    chunk: list[pb.ImportRecord] = []
    for line, item in rows:
        if isinstance(item, BadLine):
            reading.bad.append((line, str(item)))
            progress.advance(1)
            continue
        reading.lines.append(line)
        chunk.append(item)
        if len(chunk) >= per_message:
            yield pb.ImportCustomersRequest(records=chunk)
            progress.advance(len(chunk))
            chunk = []
    if chunk:
        yield pb.ImportCustomersRequest(records=chunk)
        progress.advance(len(chunk))


def count_records(path: Path, kind: str) -> int:
    with path.open("rb") as f:
        lines = sum(1 for line in f if line.strip())
    return max(lines - 1, 0) if kind == "csv" else lines


def report(reply: pb.ImportCustomersResponse, reading: Reading, out: IO[str]) -> None:
    out.write(
        f"received {reply.received:,}: created {reply.created:,}, updated {reply.updated:,}, "
        f"unchanged {reply.unchanged:,}, rejected {reply.rejected + len(reading.bad):,}\n"
    )
    for line, reason in reading.bad:
        out.write(f"line {line}: not sent: {reason}\n")
    for r in reply.rejections:
        line = reading.lines[r.position] if r.position < len(reading.lines) else -1
        out.write(f"line {line} ({r.external_id or 'no external_id'}): {r.field}: {r.reason}\n")
    if reply.rejected > len(reply.rejections):
        out.write(f"... and {reply.rejected - len(reply.rejections):,} more rejections\n")


async def run(opts: argparse.Namespace) -> int:
    path: Path = opts.file
    kind = (
        opts.format
        if opts.format != "auto"
        else ("csv" if path.suffix.lower() == ".csv" else "jsonl")
    )
    progress = Progress(count_records(path, kind))
    reading = Reading()
    metadata = (("authorization", f"Bearer {opts.token}"),) if opts.token else None
    with path.open(newline="" if kind == "csv" else None, encoding="utf-8") as stream:
        rows = read_csv(stream) if kind == "csv" else read_jsonl(stream)
        async with grpc.aio.insecure_channel(opts.target) as channel:
            stub = customer_pb2_grpc.CustomerServiceStub(channel)
            try:
                reply = await stub.ImportCustomers(
                    requests(rows, opts.per_message, reading, progress), metadata=metadata
                )
            except grpc.aio.AioRpcError as exc:
                progress.close()
                if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise Unavailable(f"{opts.target}: {exc.details()}") from None
                raise CustomerServiceError(f"{exc.code().name}: {exc.details()}") from None
    progress.close()
    report(reply, reading, sys.stdout)
    return 0 if reply.rejected == 0 and not reading.bad else 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="customer-service import", description="Stream customers to ImportCustomers."
    )
    parser.add_argument("file", type=Path, help="a .csv or .jsonl file")
    parser.add_argument("--target", default=grpc_target(), help="host:port (env GRPC_TARGET)")
    parser.add_argument("--format", choices=("auto", "csv", "jsonl"), default="auto")
    parser.add_argument("--per-message", type=int, default=500, help="records per gRPC message")
    parser.add_argument("--token", default="", help="bearer token, when the server wants one")
    opts = parser.parse_args(argv)
    if not opts.file.is_file():
        parser.error(f"{opts.file}: no such file")
    if not 1 <= opts.per_message <= 5000:
        parser.error("--per-message must be 1..5000")
    return asyncio.run(run(opts))
