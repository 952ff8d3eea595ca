"""`customer-service dlq list|replay`: dead-lettered order events.

    customer-service dlq list [--limit N] [--json]
    customer-service dlq replay (--all | POSITION ...) [--dry-run]

A POSITION is `partition:offset` in the dead-letter topic, as `list` shows.
Replay sends the original record (key, value, headers) back to its source
topic once its cause is fixed (say, the customer now exists). The consumer's
inbox still applies each event id once, so replaying twice is harmless; an
event that is still bad is dead-lettered again, with a fresh reason.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from customer_consumer import kafka, records, settings
from customer_core.context.kafka import client_options


@dataclass(frozen=True)
class Letter:
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str:
        for key, value in self.headers:
            if key == name:
                return value.decode(errors="replace")
        return ""

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"

    def summary(self) -> dict[str, object]:
        return {
            "position": self.position,
            "source": f"{self.header(records.H_TOPIC)}/{self.header(records.H_PARTITION)}"
            f"@{self.header(records.H_OFFSET)}",
            "event_id": self.header(records.H_EVENT_ID),
            "time": self.header(records.H_TIME),
            "reason": self.header(records.H_REASON),
        }


async def read_all(config: settings.ConsumerSettings) -> list[Letter]:
    """Every record in the dead-letter topic, read without a group (nothing is committed)."""
    topic = config.core.kafka.dlq_topic
    consumer = AIOKafkaConsumer(**client_options(config.core.kafka), enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        # Read until the topic goes quiet rather than up to end_offsets: Tansu
        # reports the end of a multi-record batch as its first offset + 1.
        letters: list[Letter] = []
        quiet = 0
        while quiet < 2:
            fetched = await consumer.getmany(timeout_ms=750)
            quiet = 0 if fetched else quiet + 1
            for batch in fetched.values():
                letters += [
                    Letter(
                        r.partition,
                        r.offset,
                        r.timestamp,
                        r.key,
                        r.value,
                        tuple((k, bytes(v or b"")) for k, v in r.headers or ()),
                    )
                    for r in batch
                ]
        return sorted(letters, key=lambda x: (x.partition, x.offset))
    finally:
        await consumer.stop()


async def replay(config: settings.ConsumerSettings, letters: list[Letter]) -> int:
    producer = kafka.producer(config.core.kafka)
    await producer.start()
    try:
        futures = []
        for letter in letters:
            headers = [(k, v) for k, v in letter.headers if not k.startswith("dlq.")]
            headers.append((records.H_REPLAYED, letter.position.encode()))
            futures.append(
                await producer.send(
                    letter.header(records.H_TOPIC), letter.value, key=letter.key, headers=headers
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(letters)


def _print_table(letters: list[Letter]) -> None:
    if not letters:
        print("no dead letters")
        return
    print(f"{'POSITION':<10} {'SOURCE':<34} {'EVENT ID':<38} REASON")
    for letter in letters:
        s = letter.summary()
        print(
            f"{s['position']!s:<10} {s['source']!s:<34} {s['event_id'] or '-'!s:<38} {s['reason']}"
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="customer-service dlq", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="show dead letters with their reasons")
    listing.add_argument("--limit", type=int, default=0, help="only the last N")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    again = sub.add_parser("replay", help="send dead letters back to their source topic")
    again.add_argument("positions", nargs="*", help="partition:offset as `list` shows")
    again.add_argument("--all", action="store_true", help="every dead letter")
    again.add_argument("--dry-run", action="store_true", help="show what would be sent")
    opts = parser.parse_args(argv)
    config = settings.load()
    letters = asyncio.run(read_all(config))
    if opts.command == "list":
        chosen = letters[-opts.limit :] if opts.limit > 0 else letters
        if opts.json:
            for letter in chosen:
                print(json.dumps(letter.summary()))
        else:
            _print_table(chosen)
        return 0
    if opts.all == bool(opts.positions):
        parser.error("replay: give POSITION ... or --all (not both)")
    by_position = {letter.position: letter for letter in letters}
    unknown = [p for p in opts.positions if p not in by_position]
    if unknown:
        print(f"customer-service dlq: no dead letter at {', '.join(unknown)}", file=sys.stderr)
        return 1
    chosen = letters if opts.all else [by_position[p] for p in opts.positions]
    if opts.dry_run:
        _print_table(chosen)
        return 0
    sent = asyncio.run(replay(config, chosen))
    print(f"replayed {sent} dead letter(s)")
    return 0
