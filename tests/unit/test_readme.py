"""The README's promises that code can check: the two commands and the configuration table."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from config_table import table  # noqa: E402


def readme() -> str:
    return (ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_commands() -> None:
    head = readme()[:1500]
    assert "make run" in head
    assert "make test" in head


def test_configuration_table_lists_exactly_what_the_code_reads() -> None:
    """Regenerate with `python scripts/config_table.py` when a variable changes."""
    assert table() in readme()


def test_ci_calls_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
