"""Kafka clients built from settings, and topic creation."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaProducer, codec
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from customer_consumer.records import DeadLetter
from customer_core.config import KafkaSettings
from customer_core.context.kafka import client_options
from customer_core.errors import BrokenInstall

log = logging.getLogger(__name__)


def check_codecs() -> None:
    """Refuse to start a consumer that could not read every batch a producer may send:
    it would stop at the first one compressed with a codec it lacks."""
    found = {"snappy": codec.has_snappy(), "lz4": codec.has_lz4(), "zstd": codec.has_zstd()}
    missing = [name for name, present in found.items() if not present]
    if missing:
        raise BrokenInstall(
            f"cannot read {', '.join(missing)}-compressed batches: aiokafka's codec library"
            " (cramjam) is not installed; install customer-service with its dependencies"
        )


def producer(kafka: KafkaSettings, **overrides: object) -> AIOKafkaProducer:
    """A producer that waits for every in-sync replica; idempotent unless the broker can't."""
    options: dict[str, object] = {
        **client_options(kafka),
        "acks": "all",
        "enable_idempotence": kafka.idempotent_producer,
        "linger_ms": 5,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


async def ensure_topics(kafka: KafkaSettings, names: Iterable[str], partitions: int) -> None:
    """Create the topics that are missing; a broker that refuses is logged, not fatal
    (in production the topics are usually provisioned beforehand)."""
    admin = AIOKafkaAdminClient(**client_options(kafka))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [n for n in dict.fromkeys(names) if n not in existing]
        if missing:
            await admin.create_topics(
                [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in missing]
            )
    except TopicAlreadyExistsError:
        pass
    except KafkaError as exc:
        log.warning("could not create topics", extra={"topics": list(names), "error": str(exc)})
    finally:
        await admin.close()


async def send_dead_letters(
    producer: AIOKafkaProducer, topic: str, dead: Sequence[DeadLetter]
) -> None:
    """Send `dead` to `topic` and wait until the broker acknowledged all of them."""
    if not dead:
        return
    futures = [
        await producer.send(topic, d.value, key=d.source.key, headers=d.headers()) for d in dead
    ]
    await asyncio.gather(*futures)
    for d in dead:
        log.warning(
            "event dead-lettered",
            extra={
                "topic": d.source.topic,
                "partition": d.source.partition,
                "offset": d.source.offset,
                "reason": d.reason,
            },
        )
