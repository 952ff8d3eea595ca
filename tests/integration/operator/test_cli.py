"""`customer-service campaigns` and `operator` as a user runs them: real processes, real DB."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from customer_core.context import Context
from customer_core.db import campaigns as db
from customer_core.usecases import campaigns as usecases

from .conftest import EXAMPLES


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "customer_launcher", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_apply_list_delete_the_examples(
    ctx: Context, env: dict[str, str], tmp_path: Path
) -> None:
    files = [arg for path in sorted(EXAMPLES.glob("*.yaml")) for arg in ("-f", str(path))]
    applied = run(env, "campaigns", "apply", *files)
    assert applied.returncode == 0, applied.stderr
    lines = applied.stdout.splitlines()
    assert len(lines) == len(files) // 2
    assert all(" created (" in line for line in lines)
    assert any("night-owl-cold created (Paused)" in line for line in lines)

    again = run(env, "campaigns", "apply", *files)
    assert again.returncode == 0 and all(" unchanged (" in x for x in again.stdout.splitlines())

    # A change in a file is a new generation of the same campaign.
    edited = tmp_path / "edited.yaml"
    text = (
        (EXAMPLES / "big-order-bonus.yaml")
        .read_text()
        .replace("bonusPoints: 30", "bonusPoints: 40")
    )
    edited.write_text(text)
    changed = run(env, "campaigns", "apply", "-f", str(edited))
    assert "big-order-bonus configured" in changed.stdout
    async with ctx.pool.acquire() as conn:
        row = await db.fetch_live(conn, "default", "big-order-bonus")
        assert row is not None and row.generation == 2 and row.spec["effect"]["bonusPoints"] == 40

    listed = run(env, "campaigns", "list")
    assert listed.returncode == 0
    assert "weekday-mornings" in listed.stdout and "PHASE" in listed.stdout.splitlines()[0]

    deleted = run(env, "campaigns", "delete", "big-order-bonus")
    assert deleted.returncode == 0 and "deleted" in deleted.stdout
    missing = run(env, "campaigns", "delete", "big-order-bonus")
    assert missing.returncode == 1 and "not found" in missing.stderr
    rows = await usecases.list_campaigns(ctx, "default", include_ended=True, now=datetime.now(UTC))
    assert {r.key for r in rows if r.ended_at is not None} == {"default/big-order-bonus"}


async def test_a_bad_file_names_the_resource_and_field_and_applies_the_rest(
    ctx: Context, env: dict[str, str], tmp_path: Path
) -> None:
    good = (EXAMPLES / "weekday-mornings.yaml").read_text()
    bad = good.replace("weekday-mornings", "broken").replace("multiplier: 2", "multiplier: 0.5")
    path = tmp_path / "two.yaml"
    path.write_text(f"{good}\n---\n{bad}")
    result = run(env, "campaigns", "apply", "-f", str(path))
    assert result.returncode == 1
    assert "broken: spec.effect.multiplier: must be between 1 and 10" in result.stderr
    assert "weekday-mornings created" in result.stdout
    async with ctx.pool.acquire() as conn:
        assert await db.fetch_live(conn, "default", "broken") is None


def test_operator_refuses_to_start_on_a_database_without_our_schema(env: dict[str, str]) -> None:
    result = run({**env, "DB_NAME": "postgres", "OPERATOR_NAMESPACES": "coffee"}, "operator")
    assert result.returncode == 3, result.stderr
    assert "database schema" in result.stderr


async def test_dev_loads_every_example_once(ctx: Context) -> None:
    from customer_operator.campaigns_cli import apply_examples

    count = len(list(EXAMPLES.glob("*.yaml")))
    assert await apply_examples(ctx) == f"{count} example campaigns applied"
    assert await apply_examples(ctx) == f"{count} example campaigns applied"
    rows = await usecases.list_campaigns(ctx, include_ended=True)
    assert len(rows) == count and all(r.generation == 1 for r in rows)
