"""The schedule: cron expressions from configuration, as a Taskiq schedule source.

Each send carries its tick (the scheduled minute), so a second scheduler or a
redelivery of the same tick finds it already run (job_runs is unique per tick).
"""

from __future__ import annotations

from datetime import UTC, datetime

from taskiq import ScheduledTask, ScheduleSource

from customer_core.domain.jobs import tick_of
from customer_scheduler.settings import JobSettings
from customer_scheduler.tasks import task_name


class ConfigScheduleSource(ScheduleSource):  # type: ignore[misc]
    def __init__(self, settings: JobSettings) -> None:
        self.settings = settings

    async def get_schedules(self) -> list[ScheduledTask]:
        return [
            ScheduledTask(
                task_name=task_name(job),
                labels={},
                args=[],
                kwargs={},
                cron=cron,
                schedule_id=job,
            )
            for job, cron in self.settings.schedules.items()
        ]

    def pre_send(self, task: ScheduledTask) -> None:
        task.kwargs["tick"] = tick_of(datetime.now(UTC))
