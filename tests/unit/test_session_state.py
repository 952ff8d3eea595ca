"""No SQL of the package leaves session-level state on a pooled connection
unmarked: the pool resets only connections marked so (customer_core.db.sessions)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "shared" / "customer_core", ROOT / "services"]

# What outlives a transaction in a PostgreSQL session.
SESSION_STATE = [
    (re.compile(r"pg_(try_)?advisory_lock(_shared)?\s*\(", re.I), "a session advisory lock"),
    # Case-sensitive: the package writes SQL keywords in capitals, prose not.
    (re.compile(r"^\s*SET\s+(?!LOCAL\b|TRANSACTION\b|CONSTRAINTS\b)", re.M), "SET"),
    (re.compile(r"set_config\s*\([^)]*,\s*false\s*\)", re.I), "set_config(..., false)"),
    (re.compile(r"^\s*(UN)?LISTEN\b", re.M), "LISTEN"),
    (re.compile(r"\bWITH\s+HOLD\b", re.I), "a cursor WITH HOLD"),
    (re.compile(r"^\s*PREPARE\s+\w+", re.I | re.M), "a prepared statement"),
    (
        re.compile(r"CREATE\s+TEMP(ORARY)?\s+TABLE\b(?![^;]*\bON\s+COMMIT\s+DROP\b)", re.I),
        "a temporary table kept after commit",
    ),
]


def statements(text: str) -> list[str]:
    return [s for s in text.split(";") if s.strip()]


def session_state(sql: str) -> list[str]:
    """What in `sql` would outlive its transaction."""
    return [what for s in statements(sql) for pattern, what in SESSION_STATE if pattern.search(s)]


def texts(path: Path) -> list[str]:
    if path.suffix == ".sql":
        return [path.read_text()]
    tree = ast.parse(path.read_text())
    return [
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


@pytest.mark.parametrize(
    ("sql", "found"),
    [
        ("SELECT pg_advisory_lock(1)", ["a session advisory lock"]),
        ("SELECT pg_try_advisory_lock(hashtext($1))", ["a session advisory lock"]),
        ("SELECT pg_advisory_xact_lock(1)", []),
        ("SET statement_timeout = 0", ["SET"]),
        ("\n  SET search_path TO x", ["SET"]),
        ("SET LOCAL statement_timeout = 0", []),
        ("UPDATE t\n   SET a = 1\n WHERE b", ["SET"]),  # a line of its own reads as one
        ("UPDATE t SET a = 1 WHERE b", []),
        ("SELECT set_config('a', 'b', false)", ["set_config(..., false)"]),
        ("SELECT set_config('a', 'b', true)", []),
        ("LISTEN changes", ["LISTEN"]),
        ("DECLARE c CURSOR WITH HOLD FOR SELECT 1", ["a cursor WITH HOLD"]),
        ("CREATE TEMP TABLE k AS SELECT 1", ["a temporary table kept after commit"]),
        ("CREATE TEMP TABLE k ON COMMIT DROP AS SELECT 1", []),
    ],
)
def test_the_scan_finds_session_state(sql: str, found: list[str]) -> None:
    assert session_state(sql) == found


def test_only_marked_modules_take_session_state() -> None:
    unmarked = []
    for base in SOURCES:
        for path in sorted([*base.rglob("*.py"), *base.rglob("*.sql")]):
            if "/pb/" in str(path):
                continue
            source = path.read_text()
            for text in texts(path):
                for what in session_state(text):
                    # An UPDATE's SET on a line of its own is no session state.
                    if what == "SET" and re.search(r"\bUPDATE\b|\bDO\s+UPDATE\b", text, re.I):
                        continue
                    if "mark_session_state(" not in source:
                        unmarked.append(f"{path.relative_to(ROOT)}: {what}: {text.strip()[:60]}")
    assert unmarked == []
