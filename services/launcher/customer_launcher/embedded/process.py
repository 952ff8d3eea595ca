"""A server as a child process on a loopback port that dies with its parent.

Children die with their parent (PR_SET_PDEATHSIG), so a killed launcher or
test run leaves no server behind.
"""

from __future__ import annotations

import abc
import pwd
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

_PR_SET_PDEATHSIG = 1


class DevStackError(RuntimeError):
    """An embedded server could not be started; the message says which and why."""


# Below this are the well-known and registered ports people run services on.
_LOWEST_PORT = 10000
_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
_handed_out: set[int] = set()


def _outside_ephemeral() -> range:
    """Ports the kernel never gives an outgoing connection as its source port."""
    try:
        low = int(_EPHEMERAL.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return range(0)
    return range(_LOWEST_PORT, low) if low - _LOWEST_PORT >= 1000 else range(0)


def _bindable(port: int) -> bool:
    # Children bind the wildcard ("[::]:port"), so loopback alone is not enough.
    probes = ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::"))  # noqa: S104 (closed at once)
    for family, host in probes:
        try:
            sock = socket.socket(family)
        except OSError:
            continue  # no IPv6 on this host
        with sock:
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def _kernel_pick() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port(preferred: int = 0) -> int:
    """`preferred` if it is free, else a free port no other caller here was given.

    The port is handed to a child that binds it later. A port from the kernel's
    ephemeral range (what binding port 0 gives) can be taken in the meantime as
    the source port of any outgoing connection, so we pick below that range.
    """
    if preferred and _bindable(preferred):
        _handed_out.add(preferred)
        return preferred
    pool = _outside_ephemeral()
    pick = random.SystemRandom()
    for _ in range(200):
        port = pick.choice(pool) if pool else _kernel_pick()
        if port not in _handed_out and _bindable(port):
            _handed_out.add(port)
            return port
    raise DevStackError("no free TCP port on this host")


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


class Server(abc.ABC):
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
