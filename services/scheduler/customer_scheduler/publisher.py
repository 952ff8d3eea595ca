"""Publishing notifications to Kafka as protobuf JSON CustomerNotification records."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from customer_core.config import Settings
from customer_core.context.kafka import client_options
from customer_core.domain.notifications import Notification
from customer_core.errors import Unavailable
from customer_core.pb.customer.v1 import events_pb2

KINDS = {
    "reward_available": events_pb2.NOTIFICATION_KIND_REWARD_AVAILABLE,
    "tier_reached": events_pb2.NOTIFICATION_KIND_TIER_REACHED,
    "points_expiring": events_pb2.NOTIFICATION_KIND_POINTS_EXPIRING,
}


def encode(n: Notification) -> bytes:
    message = events_pb2.CustomerNotification(
        notification_id=str(n.id),
        kind=KINDS[n.reason],
        customer_id=str(n.customer_id),
        subject=n.subject,
        points=n.points,
    )
    created = Timestamp()
    created.FromDatetime(n.create_time)
    message.create_time.CopyFrom(created)
    if n.expire_time is not None:
        expires = Timestamp()
        expires.FromDatetime(n.expire_time)
        message.expire_time.CopyFrom(expires)
    return json_format.MessageToJson(message, indent=None).encode()


class NotificationPublisher:
    """One producer per process, started lazily on the first batch."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self._settings = settings
        self._topic = topic
        self._producer: AIOKafkaProducer | None = None
        # Built now, so that an unusable KAFKA_SSL_* file stops the process at
        # start-up (a ConfigError naming it), not its first notification job.
        self._options = client_options(settings.kafka) if settings.kafka.brokers else None

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is None:
            kafka = self._settings.kafka
            if self._options is None:
                raise Unavailable("KAFKA_BROKERS is not set: cannot publish notifications")
            producer = AIOKafkaProducer(
                **self._options,
                enable_idempotence=kafka.idempotent_producer,
                acks="all",
            )
            try:
                await producer.start()
            except KafkaError as exc:
                await producer.stop()
                raise Unavailable(f"cannot reach Kafka at {kafka.bootstrap}: {exc}") from exc
            self._producer = producer
        return self._producer

    async def publish(self, batch: Sequence[Notification]) -> None:
        """Send every notification and wait for the broker's acknowledgements."""
        producer = await self._started()
        try:
            futures = [
                await producer.send(self._topic, encode(n), key=str(n.customer_id).encode())
                for n in batch
            ]
            for future in futures:
                await future
        except KafkaError as exc:
            raise Unavailable(f"publishing notifications failed: {exc}") from exc

    async def aclose(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
