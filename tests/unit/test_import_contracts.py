"""The import contracts in pyproject.toml cannot pass by accident.

The domain's allow-list is a contract type of our own (tests/support/import_contracts.py):
these tests prove it breaks on the imports it exists to stop, on the real graph too, and
that the services contract names every core module it does not allow.
"""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import grimp
import pytest

import customer_core
from tests.support.import_contracts import AllowedContract

ROOT = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
# What the services contract lets a service import from core (its name says so too).
SERVICE_FACING = {"usecases", "domain", "context", "errors", "config", "telemetry", "pb"}


def contract_named(prefix: str) -> dict[str, object]:
    (found,) = [c for c in CONFIG["contracts"] if c["name"].startswith(prefix)]
    return found


def domain_contract() -> AllowedContract:
    # As lint-imports hands them over: lists stay lists, scalars become text.
    options = {
        k: v if isinstance(v, list) else str(v)
        for k, v in contract_named("Domain is pure").items()
        if k != "name"
    }
    assert options.pop("type") == "allowed"
    return AllowedContract("domain", session_options={}, contract_options=options)


def synthetic(*imports: tuple[str, str]) -> grimp.ImportGraph:
    graph = grimp.ImportGraph()
    graph.add_module("customer_core.domain")
    for importer, imported in imports:
        graph.add_import(importer=importer, imported=imported, line_number=1, line_contents="")
    return graph


def test_the_allow_list_type_is_the_one_registered() -> None:
    assert CONFIG["contract_types"] == ["allowed: tests.support.import_contracts.AllowedContract"]


def test_the_standard_library_errors_and_the_domain_itself_are_allowed() -> None:
    graph = synthetic(
        ("customer_core.domain.loyalty", "datetime"),
        ("customer_core.domain.loyalty", "__future__"),
        ("customer_core.domain.loyalty", "customer_core.errors"),
        ("customer_core.domain.wallet", "customer_core.domain.loyalty"),
    )
    assert domain_contract().check(graph, verbose=False).kept


@pytest.mark.parametrize(
    "imported", ["customer_core.db", "customer_core.pb.customer.v1", "asyncpg", "customer_core"]
)
def test_anything_else_breaks_it(imported: str) -> None:
    graph = synthetic(
        ("customer_core.domain.loyalty", "datetime"),
        ("customer_core.domain.loyalty", imported),
    )
    check = domain_contract().check(graph, verbose=False)
    assert not check.kept
    assert check.metadata["violations"] == [
        {"importer": "customer_core.domain.loyalty", "imported": imported, "line_numbers": (1,)}
    ]


def test_it_breaks_on_the_real_graph_given_one_bad_import() -> None:
    graph = grimp.build_graph("customer_core", include_external_packages=True)
    domain = graph.find_descendants("customer_core.domain")
    # The contract looks at real imports: the domain does import the standard library.
    assert any(graph.find_modules_directly_imported_by(m) for m in domain)
    assert domain_contract().check(graph, verbose=False).kept
    graph.add_import(
        importer="customer_core.domain.loyalty",
        imported="redis",
        line_number=3,
        line_contents="import redis",
    )
    assert not domain_contract().check(graph, verbose=False).kept


def test_the_services_contract_names_every_other_core_module() -> None:
    contract = contract_named("Services reach core only")
    forbidden = {m.removeprefix("customer_core.") for m in contract["forbidden_modules"]}  # type: ignore[attr-defined]
    core = {m.name for m in pkgutil.iter_modules(customer_core.__path__)}
    assert not forbidden & SERVICE_FACING
    assert core - SERVICE_FACING == forbidden, "a new core module: allow it or forbid it"
