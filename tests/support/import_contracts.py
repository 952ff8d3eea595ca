"""An import-linter contract type that import-linter lacks: an allow-list.

A forbidden contract names what may not be imported, so a module that nobody
thought to list slips through. `allowed` names what may be imported and fails
on everything else: the domain stays on the standard library and the error
hierarchy even when a new package joins the graph. Registered in pyproject.toml
under `contract_types`; `lint-imports` finds it because it puts the working
directory (the repository root) on sys.path.
"""

from __future__ import annotations

import sys

from grimp import ImportGraph
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


class AllowedContract(Contract):
    """Every module in `source_modules` (and below) imports only `allowed_modules`
    (each a package: itself and below), itself, and, when `allow_standard_library`,
    the standard library."""

    source_modules = fields.ListField(subfield=fields.StringField())
    allowed_modules = fields.ListField(subfield=fields.StringField())
    allow_standard_library = fields.BooleanField(required=False, default=True)

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        sources: list[str] = list(self.source_modules)  # type: ignore[call-overload]
        allowed: list[str] = list(self.allowed_modules)  # type: ignore[call-overload]
        stdlib = bool(self.allow_standard_library)
        violations: list[dict[str, object]] = []
        for source in sorted(sources):
            if source not in graph.modules:
                raise ValueError(f"{source} is not in the import graph")
            for importer in sorted({source} | graph.find_descendants(source)):
                for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                    if _within(imported, source) or any(_within(imported, a) for a in allowed):
                        continue
                    if stdlib and imported.split(".")[0] in sys.stdlib_module_names:
                        continue
                    details = graph.get_import_details(importer=importer, imported=imported)
                    violations.append(
                        {
                            "importer": importer,
                            "imported": imported,
                            "line_numbers": tuple(d["line_number"] for d in details),
                        }
                    )
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for v in check.metadata["violations"]:
            lines = ", ".join(str(n) for n in v["line_numbers"]) or "?"
            output.print_error(
                f"{v['importer']} -> {v['imported']} (l. {lines}) is not on the allow-list",
                bold=False,
            )
        output.new_line()
