"""CPU time of a process a benchmark started, from Linux /proc (no psutil needed)."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process; 0 once it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_by_process(name_of_me: str = "consumer") -> Counter[str]:
    """CPU seconds so far of this process (named `name_of_me`) and of each process it started,
    with its children, by name (`postgres`, `valkey`, `tansu`, `customer`)."""
    me, hz = os.getpid(), os.sysconf("SC_CLK_TCK")
    procs: dict[int, tuple[int, str, float]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
        except OSError:
            continue
        name, rest = raw[raw.index("(") + 1 : raw.rindex(")")], raw.rsplit(")", 1)[1].split()
        procs[int(stat.parent.name)] = (int(rest[1]), name, (int(rest[11]) + int(rest[12])) / hz)
    out: Counter[str] = Counter({name_of_me: time.process_time()})
    for parent, name, cpu in procs.values():
        for _ in range(20):  # walk up to us: a server, or one of its children
            if parent == me:
                out[name.split("-")[0]] += cpu
                break
            parent = procs.get(parent, (0, "", 0.0))[0]
    return out
