"""The README's promises that code can check: the two commands, the configuration table,
every RPC and every topic, a page per doc, its length; and that docs/ keeps user docs
free of measurement history (that lives in docs/design/ and docs/performance.md)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT / "scripts"))

from build_readme import PAGES, build  # noqa: E402
from config_table import load_all, table  # noqa: E402

# Past "a newcomer reads it in five minutes"; area detail belongs in docs/.
README_MAX_LINES = 300


def readme() -> str:
    return (ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_commands() -> None:
    head = readme()[:1500]
    assert "make run" in head
    assert "make test" in head


def test_configuration_table_lists_exactly_what_the_code_reads() -> None:
    assert table() in readme()


def test_readme_is_assembled_from_its_sources() -> None:
    """Rebuild with `python scripts/build_readme.py` after changing docs/_readme.md or the proto."""
    assert readme() == build()


def test_readme_is_short() -> None:
    assert len(readme().splitlines()) < README_MAX_LINES


def test_every_rpc_is_in_the_api_overview() -> None:
    from customer_core.pb.customer.v1 import customer_pb2

    service = customer_pb2.DESCRIPTOR.services_by_name["CustomerService"]
    for method in service.methods:
        assert f"| `{method.name}` |" in readme(), method.name


def test_the_event_contract_names_every_topic() -> None:
    from customer_core.domain.order_events import Topic

    defaults = {v.name: v.default for v in load_all()}
    topics = [t.value for t in Topic] + [
        defaults["KAFKA_DLQ_TOPIC"],
        defaults["NOTIFICATIONS_TOPIC"],
    ]
    contract = readme().split("## The event contract", 1)[1]
    for topic in topics:
        assert f"`{topic}`" in contract, topic


def _user_pages() -> set[str]:
    return {p.name for p in DOCS.glob("*.md") if not p.name.startswith("_")}


def test_the_readme_links_every_page_of_docs() -> None:
    assert {name for name, _ in PAGES} == _user_pages()
    for name in _user_pages():
        assert f"](docs/{name})" in readme(), name


def test_the_site_nav_has_every_page() -> None:
    """mkdocs.yml's nav: every page of docs/ and docs/design/, and the README as home."""

    def pages(nav: list[object]) -> set[str]:
        found: set[str] = set()
        for item in nav:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            found |= pages(value) if isinstance(value, list) else {str(value)}
        return found

    config = (ROOT / "mkdocs.yml").read_text()
    nav = pages(yaml.load(config, Loader=yaml.BaseLoader)["nav"])
    design = {f"design/{p.name}" for p in (DOCS / "design").glob("*.md")}
    assert nav == _user_pages() | design | {"index.md"}


# Words of a changelog, not of a user doc: a commit hash, a load average, a "round".
HISTORY = re.compile(
    r"(?<![\w-])(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{7,12}(?![\w-])"
    r"|load average|this round|tried and dropped|used to",
    re.IGNORECASE,
)


def test_user_docs_carry_no_measurement_history() -> None:
    """History goes to docs/design/ (dated), current figures only to docs/performance.md."""
    found = []
    for name in sorted(_user_pages() - {"performance.md"}):
        fence = False
        for n, line in enumerate((DOCS / name).read_text().splitlines(), 1):
            fence ^= line.startswith("```")
            if not fence and (m := HISTORY.search(line)):
                found.append(f"docs/{name}:{n}: {m[0]}")
    assert not found, found


def test_ci_calls_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
