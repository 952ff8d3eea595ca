"""A worker's job loop: run jobs until told to stop, then let the running ones finish.

taskiq's `run_receiver_task` can only be cancelled, and cancelling it abandons
the job in hand: it is recorded as failed and waits JOBS_REDELIVER_SECONDS for
another worker. Here a taskiq Receiver listens with a finish event of our own.
On SIGTERM the worker takes no new job and gives the running ones
JOBS_SHUTDOWN_GRACE_SECONDS to finish and be acknowledged; a job still running
after that is cancelled: its transaction rolls back, and its message is left
unacknowledged (JobBroker.leave_unacknowledged), so another worker takes it
over as after a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from taskiq import AcknowledgeType
from taskiq.receiver import Receiver

from customer_scheduler.broker import JobBroker

log = logging.getLogger("customer_scheduler")
RELISTEN_SECONDS = 1.0


async def receive(
    broker: JobBroker, finish: asyncio.Event, *, concurrency: int, grace: float
) -> None:
    """Run jobs from `broker` until `finish` is set (listening again after a broker error)."""
    while not finish.is_set():
        receiver = Receiver(
            broker,
            max_async_tasks=concurrency,
            run_startup=False,
            ack_type=AcknowledgeType.WHEN_EXECUTED,
            wait_tasks_timeout=grace,
        )
        try:
            await receiver.listen(finish)
        except Exception as exc:
            # Valkey gone or restarting: jobs in hand go on; listen again shortly.
            log.warning("job stream lost; listening again", extra={"error": str(exc)})
        if not finish.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finish.wait(), RELISTEN_SECONDS)


async def drain(
    broker: JobBroker,
    receiving: asyncio.Task[None],
    running: set[asyncio.Task[object]],
    finish: asyncio.Event,
    grace: float,
) -> None:
    """Stop taking jobs, wait up to `grace` seconds for the running ones, cancel the rest."""
    finish.set()
    if running:
        log.info(
            "worker stopping: waiting for running jobs",
            extra={"jobs": len(running), "grace_seconds": grace},
        )
    else:
        log.info("worker stopping: no job running")
    _, pending = await asyncio.wait({receiving, *running}, timeout=grace)
    late = [t for t in pending if t is not receiving]
    if late:
        log.warning(
            "jobs still running after the grace period are cancelled; another "
            "worker takes them over",
            extra={"jobs": len(late)},
        )
        broker.leave_unacknowledged()
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
