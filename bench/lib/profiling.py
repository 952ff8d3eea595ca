"""Where a server's CPU goes under load: py-spy samples of one process, summarised.

py-spy samples from outside (no change to the process, no interpreter hooks),
so the profile is of the api's own code as it runs in the benchmark; the
sampling costs the machine CPU, so a profiled run's req/s are not figures. Only samples
of threads holding the CPU count (py-spy's default skips idle threads), so the
shares are of the process's CPU time, not of wall time.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# A frame in py-spy's raw (collapsed) output: "function (path/to/file.py:line)".
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")
# The first matching part of a frame's file names the area it is billed to.
AREAS = (
    ("grpc", ("grpc/",)),
    ("protobuf", ("google/protobuf",)),
    ("valkey client", ("redis/", "valkey/")),
    ("asyncio", ("asyncio/", "uvloop")),
    ("telemetry", ("opentelemetry", "prometheus_client")),
    ("logging", ("logging/", "pythonjsonlogger")),
    ("customer_api", ("customer_api/",)),
    ("customer_core", ("customer_core/",)),
    ("interpreter", ("python3", "libpython", "libc.so", "libc-")),
)


@dataclass(frozen=True)
class Profile:
    samples: int
    waiting: int
    ours: float  # share of samples with a frame of customer_api or customer_core on the stack
    by_area: tuple[tuple[str, float], ...]
    by_function: tuple[tuple[str, float], ...]


def command(argv: list[str], out: Path, rate: int = 100) -> list[str]:
    """`argv` run under py-spy, which writes collapsed stacks to `out` when it is interrupted.

    py-spy starts the process rather than attaching to it: attaching to a process
    that is not its child fails on this kind of machine ("Failed to find python
    version"), starting one works.
    """
    beside = Path(sys.executable).with_name("py-spy")
    spy = str(beside) if beside.exists() else shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--profile needs py-spy (make bench installs the bench extra)")
    # --native bills time inside grpc's Cython core and the interpreter to those C
    # frames, not to the Python callback that called in; it needs blocking sampling.
    record = ["record", "--rate", str(rate), "--format", "raw", "--native"]
    return [spy, *record, "--output", str(out), "--", *argv]


def profiled_pid(spy_pid: int, within: float = 10) -> int:
    """The pid of the process py-spy started (its only child)."""
    children = Path(f"/proc/{spy_pid}/task/{spy_pid}/children")
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = children.read_text().split()
        if found:
            return int(found[0])
        time.sleep(0.05)
    raise SystemExit("py-spy did not start the api")


def finish(spy: subprocess.Popen[bytes], out: Path, within: float = 30) -> None:
    """Stop sampling: py-spy writes its file on SIGINT, then the profiled process is stopped."""
    spy.send_signal(signal.SIGINT)
    spy.wait(within)
    if not out.exists():
        raise SystemExit(f"py-spy wrote no profile to {out}")


# Leaves that are a thread waiting, not using the CPU: sampling with --native
# cannot tell a blocked thread from a running one, so they are set aside.
WAITS = frozenset(
    {
        "epoll_wait",
        "epoll_pwait",
        "poll",
        "ppoll",
        "select",
        "pselect",
        "pthread_cond_wait",
        "pthread_cond_timedwait",
        "__futex_abstimed_wait_common",
        "futex_wait",
        "sem_timedwait",
        "sem_clockwait",
        "nanosleep",
        "clock_nanosleep",
        "syscall",  # futex through syscall(2): grpc's and the interpreter's locks
    }
)
LOW = ("interpreter", "other")
OURS = ("customer_api", "customer_core")


def _frame(text: str) -> tuple[str, str]:
    match = _FRAME.match(text)
    return (match["func"], match["file"]) if match else (text, text)


def _area(file: str) -> str:
    for name, marks in AREAS:
        if any(mark in file for mark in marks):
            return name
    return "other"


def _billed(frames: list[tuple[str, str]]) -> str:
    """The area of the nearest frame, leaf first, that is not the interpreter or libc:
    a `write` is the grpc core's or the Valkey client's, by who called it."""
    for func, file in reversed(frames):
        if func.startswith("gc_collect"):
            return "garbage collector"
        area = _area(file)
        if area not in LOW:
            return area
    return "interpreter"


def _ours(frames: list[tuple[str, str]]) -> bool:
    """Whether a sample is in our code: a frame of ours above the event loop's dispatch
    (below it, the process's main() is ours and would claim every sample)."""
    loop = max((i for i, (func, _) in enumerate(frames) if func.endswith("_run_once")), default=-1)
    return any(_area(file) in OURS for _, file in frames[loop + 1 :])


def summarise(path: Path, top: int = 12) -> Profile:
    """CPU by area and by leaf function, as shares of the samples that were not waiting
    (start-up imports left out)."""
    areas: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    total = waiting = ours = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_frame(part) for part in stack.split(";")]
        n = int(count)
        if frames[-1][0] in WAITS:
            waiting += n
            continue
        if any(func == "_find_and_load" for func, _ in frames):
            continue
        total += n
        ours += n * _ours(frames)
        areas[_billed(frames)] += n
        func, file = frames[-1]
        functions[f"{func} ({'/'.join(Path(file).parts[-2:])})"] += n
    share = 1 / total if total else 0.0
    return Profile(
        samples=total,
        waiting=waiting,
        ours=ours * share,
        by_area=tuple((k, v * share) for k, v in areas.most_common()),
        by_function=tuple((k, v * share) for k, v in functions.most_common(top)),
    )


def report(what: str, profile: Profile) -> str:
    """`what`: whose profile, e.g. "the api under GetCustomer"."""
    lines = [
        f"profile of {what}: {profile.samples} samples on the CPU "
        f"({profile.waiting} more waiting, left out), billed to the nearest caller's area:"
    ]
    lines += [f"  {share:6.1%}  {area}" for area, share in profile.by_area]
    lines.append(f"  {profile.ours:6.1%}  inclusive: in a callback or task of our own code")
    lines.append("  top leaf functions:")
    lines += [f"  {share:6.1%}  {func}" for func, share in profile.by_function]
    return "\n".join(lines)
