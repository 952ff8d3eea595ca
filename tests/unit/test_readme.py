"""The README's promises that code can check: the two commands, the configuration table,
and that it is assembled from its sources (docs/, the proto, the code's variables)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from build_readme import build  # noqa: E402
from config_table import table  # noqa: E402


def readme() -> str:
    return (ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_commands() -> None:
    head = readme()[:1500]
    assert "make run" in head
    assert "make test" in head


def test_configuration_table_lists_exactly_what_the_code_reads() -> None:
    assert table() in readme()


def test_readme_is_assembled_from_its_sources() -> None:
    """Rebuild with `python scripts/build_readme.py` after changing docs/ or the proto."""
    assert readme() == build()


def test_every_rpc_is_in_the_api_overview() -> None:
    from customer_core.pb.customer.v1 import customer_pb2

    service = customer_pb2.DESCRIPTOR.services_by_name["CustomerService"]
    for method in service.methods:
        assert f"| `{method.name}` |" in readme(), method.name


def test_ci_calls_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
