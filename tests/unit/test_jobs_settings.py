"""The jobs' configuration: defaults, `off`, and errors naming the variable."""

from __future__ import annotations

import pytest

from customer_core.config import load_settings
from customer_core.errors import ConfigError
from customer_scheduler.settings import load_job_settings


def test_defaults() -> None:
    jobs = load_job_settings(load_settings({}), {})
    assert jobs.schedules["expiry"] == "30 2 * * *"
    assert jobs.policy.expiry_days == 180 and jobs.policy.batch_size == 10_000
    assert jobs.notifications_topic == "customer.notifications"


def test_a_job_can_be_switched_off() -> None:
    jobs = load_job_settings(load_settings({}), {"JOBS_SCHEDULE_CLEANUP": "OFF"})
    assert "cleanup" not in jobs.schedules


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"JOBS_SCHEDULE_ROLLUPS": "every minute"}, "JOBS_SCHEDULE_ROLLUPS"),
        ({"JOBS_SCHEDULE_HOLDS": "* * * * 9"}, "JOBS_SCHEDULE_HOLDS"),
        ({"JOBS_BATCH_SIZE": "0"}, "JOBS_BATCH_SIZE"),
        ({"JOBS_REDELIVER_SECONDS": "soon"}, "JOBS_REDELIVER_SECONDS"),
        ({"POINTS_EXPIRY_WARNING_DAYS": "180"}, "POINTS_EXPIRY_WARNING_DAYS"),
        ({"JOBS_WORKER_CONCURRENCY": "-1"}, "JOBS_WORKER_CONCURRENCY"),
        ({"JOBS_SHUTDOWN_GRACE_SECONDS": "-5"}, "JOBS_SHUTDOWN_GRACE_SECONDS"),
        ({"JOBS_SHUTDOWN_GRACE_SECONDS": "a while"}, "JOBS_SHUTDOWN_GRACE_SECONDS"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_job_settings(load_settings({}), env)
    assert err.value.variable == variable
