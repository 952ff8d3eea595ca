"""Kafka clients built from settings, and topic creation."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from customer_core.config import KafkaSettings
from customer_core.context.kafka import client_options

log = logging.getLogger(__name__)


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
