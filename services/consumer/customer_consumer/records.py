"""From Kafka records to decoded events and dead letters (no I/O here).

A record that cannot be decoded or validated becomes a `DeadLetter` carrying
its original key, value and headers, and where it came from; the runner sends
it to the dead-letter topic with headers naming the source and the reason.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from customer_core.domain.order_events import Topic
from customer_core.errors import InvalidArgument
from customer_core.usecases.events import Incoming, Rejected
from customer_core.usecases.wire import decode_event

log = logging.getLogger(__name__)
H_TOPIC = "dlq.source.topic"
H_PARTITION = "dlq.source.partition"
H_OFFSET = "dlq.source.offset"
H_REASON = "dlq.reason"
H_EVENT_ID = "dlq.event.id"
H_TIME = "dlq.time"
H_REPLAYED = "dlq.replayed.from"
H_OMITTED = "dlq.value.omitted"
# The consumer fetches records of up to 4 MiB, but a producer sends at most 1 MiB by
# default (and a broker's default message.max.bytes is about as much): a bigger value
# is left at its source position, so its dead letter can be sent at all.
MAX_DEAD_LETTER_VALUE = 900_000
_INDEX = re.compile(r"\[\d+\]")


@dataclass(frozen=True)
class Source:
    """An original record, kept so a dead letter can carry it unchanged."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True)
class DeadLetter:
    source: Source
    reason: str
    field: str
    event_id: str = ""

    @property
    def value(self) -> bytes | None:
        """The original value, or None when it is too big to send (see `H_OMITTED`)."""
        value = self.source.value
        return None if value is not None and len(value) > MAX_DEAD_LETTER_VALUE else value

    def headers(self) -> list[tuple[str, bytes]]:
        kept = [(k, v) for k, v in self.source.headers if not k.startswith("dlq.")]
        if self.source.value is not None and self.value is None:
            kept.append((H_OMITTED, str(len(self.source.value)).encode()))
        return [
            *kept,
            (H_TOPIC, self.source.topic.encode()),
            (H_PARTITION, str(self.source.partition).encode()),
            (H_OFFSET, str(self.source.offset).encode()),
            (H_REASON, self.reason.encode()[:1000]),
            (H_EVENT_ID, self.event_id.encode()),
            (H_TIME, datetime.now(UTC).isoformat().encode()),
        ]


def source_of(record: Any) -> Source:
    return Source(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        headers=tuple((k, bytes(v or b"")) for k, v in (record.headers or ())),
    )


def field_label(reason_field: str) -> str:
    """A metric label from a field path: indexes dropped so the label set stays small."""
    return _INDEX.sub("", reason_field)[:60]


@dataclass
class Fetched:
    """One fetched batch: its records, decoded events and dead letters."""

    records: list[Any]
    good: list[Incoming]
    bad: list[DeadLetter]
    _at: dict[tuple[str, int, int], Any] | None = None

    def source(self, topic: str, partition: int, offset: int) -> Source:
        """The original record at a position (indexed on demand: rarely needed)."""
        if self._at is None:
            self._at = {(r.topic, r.partition, r.offset): r for r in self.records}
        return source_of(self._at[(topic, partition, offset)])

    def keep(self, partitions: Container[tuple[str, int]]) -> Fetched:
        """Only the records of these (topic, partition)s: the rest were revoked meanwhile."""
        if all((r.topic, r.partition) in partitions for r in self.records):
            return self
        return Fetched(
            [r for r in self.records if (r.topic, r.partition) in partitions],
            [i for i in self.good if (i.topic, i.partition) in partitions],
            [d for d in self.bad if (d.source.topic, d.source.partition) in partitions],
        )


def decode_records(records: Sequence[Any], topics: Mapping[str, Topic]) -> Fetched:
    """Decoded events, and dead letters for what cannot be decoded."""
    good: list[Incoming] = []
    bad: list[DeadLetter] = []
    for record in records:
        try:
            event = decode_event(record.value, topics[record.topic])
        except InvalidArgument as exc:
            bad.append(DeadLetter(source_of(record), str(exc), exc.field))
            continue
        except Exception as exc:
            # A decoder bug must cost one record, not the partition: a process that
            # died here would restart and die on the same record forever.
            log.exception("decoding a record failed unexpectedly; dead-lettering it")
            reason = f"value: could not be decoded ({type(exc).__name__}: {exc})"
            bad.append(DeadLetter(source_of(record), reason, "value"))
            continue
        good.append(Incoming(event, record.topic, record.partition, record.offset))
    return Fetched(list(records), good, bad)


def rejected_letters(rejected: Sequence[Rejected], fetched: Fetched) -> list[DeadLetter]:
    """Dead letters for the events the batch's apply rejected (the reason names the field)."""
    out = []
    for r in rejected:
        i: Incoming = r.incoming
        field = r.reason.split(":", 1)[0]
        source = fetched.source(i.topic, i.partition, i.offset)
        out.append(DeadLetter(source, r.reason, field, i.event.event_id))
    return out


def traceparents(records: Sequence[Any], limit: int = 64) -> list[str]:
    """The W3C traceparent headers of the batch (at most `limit`), for span links."""
    found = []
    for record in records:
        for key, value in record.headers or ():
            if key == "traceparent":
                found.append(bytes(value or b"").decode(errors="replace"))
                break
        if len(found) >= limit:
            break
    return found
