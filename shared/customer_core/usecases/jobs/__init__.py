"""Background jobs as use cases: each set-based, batched, idempotent.

`runner.run_locked` wraps any of them with the per-job advisory lock and the
job_runs record; the scheduler service only translates tasks into calls.
"""
