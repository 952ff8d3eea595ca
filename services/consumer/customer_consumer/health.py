"""Liveness and readiness over HTTP: GET /livez and GET /readyz (200 or 503, JSON body).

Ready means: joined the group, and no work has waited longer than
CONSUMER_STUCK_SECONDS without progress (a batch failing to apply or commit,
or lag that does not move). Live means the poll loop still turns; a stuck
database makes the consumer unready, not dead, so Kubernetes stops counting
on it without restarting a process that will recover by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field

from customer_consumer.metrics import READY


@dataclass
class Health:
    stuck_seconds: float
    started: bool = False
    last_loop: float = field(default_factory=time.monotonic)
    # When work started waiting (a pending batch or lag) without progress; None: idle.
    waiting_since: float | None = None
    problem: str = ""

    def __post_init__(self) -> None:
        # Read at every scrape: set only when /readyz was asked, the gauge stayed 0 where
        # nothing probes (dev, a pod without a readiness probe) and the alert fired.
        READY.set_function(lambda: 1.0 if self.ready() else 0.0)

    def loop_turned(self) -> None:
        self.last_loop = time.monotonic()

    def progressed(self, *, lag: int = 0) -> None:
        """A batch committed (or there was nothing to do)."""
        self.problem = ""
        self.waiting_since = time.monotonic() if lag > 0 else None

    def waiting(self, problem: str) -> None:
        self.problem = problem
        if self.waiting_since is None:
            self.waiting_since = time.monotonic()

    def live(self) -> bool:
        return time.monotonic() - self.last_loop < max(self.stuck_seconds, 30) * 2

    def ready(self) -> bool:
        stuck = (
            self.waiting_since is not None
            and time.monotonic() - self.waiting_since > self.stuck_seconds
        )
        return self.started and not stuck and self.live()

    def report(self) -> dict[str, object]:
        waited = time.monotonic() - self.waiting_since if self.waiting_since else 0.0
        return {
            "started": self.started,
            "ready": self.ready(),
            "live": self.live(),
            "waiting_seconds": round(waited, 1),
            "problem": self.problem,
        }


async def serve(health: Health, port: int) -> asyncio.Server:
    """Start the endpoint on 0.0.0.0:`port` (0 picks one: see server.sockets)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            path = request.decode(errors="replace").split(" ")[1] if request.count(b" ") else ""
            ok = {"/livez": health.live, "/readyz": health.ready}.get(path)
            status = "404 Not Found" if ok is None else "200 OK" if ok() else "503 Unavailable"
            body = json.dumps(health.report()).encode()
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    return await asyncio.start_server(handle, "0.0.0.0", port)  # noqa: S104 - probes come from outside
