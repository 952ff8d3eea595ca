"""Print the configuration table (every variable the code reads) as Markdown.

The README's table is this output; tests/unit/test_readme.py fails when they differ.
"""

from __future__ import annotations

import importlib

from customer_core.config import Variable, all_variables

# Each service declares its own variables in a settings module; importing it registers them.
SERVICE_SETTINGS = (
    "customer_api.security.settings",
    "customer_api.stream_settings",
    "customer_consumer.settings",
    "customer_scheduler.settings",
    "customer_operator.settings",
)


def load_all() -> tuple[Variable, ...]:
    for module in SERVICE_SETTINGS:
        importlib.import_module(module)
    return all_variables()


def table() -> str:
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for v in load_all():
        default = "(unset)" if v.default is None else f"`{v.default}`" if v.default else "(empty)"
        rows.append(f"| `{v.name}` | {default} | {v.meaning} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
