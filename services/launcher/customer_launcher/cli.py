"""`customer-service SUBCOMMAND ...`: thin dispatch to each process's entry point.

Entry points are imported only when chosen, so `customer-service api` never
loads kopf and `customer-service operator` never loads grpc. Errors the service
raises on purpose become one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass

from customer_core.errors import (
    BrokenInstall,
    ConfigError,
    CustomerServiceError,
    SchemaOutOfDate,
    Unavailable,
)


@dataclass(frozen=True)
class Command:
    target: str  # "module:function", the function taking argv and returning an exit code
    help: str


COMMANDS: dict[str, Command] = {
    "api": Command("customer_api.main:main", "serve the gRPC API"),
    "consumer": Command("customer_consumer.main:main", "consume order events from Kafka"),
    "scheduler": Command(
        "customer_scheduler.main:scheduler_main", "send scheduled jobs (one replica)"
    ),
    "worker": Command("customer_scheduler.main:worker_main", "run jobs sent by the scheduler"),
    "operator": Command("customer_operator.main:main", "reconcile RewardCampaign resources (kopf)"),
    "migrate": Command("customer_launcher.migrate:main", "apply database migrations"),
    "dev": Command("customer_launcher.dev:main", "run everything on embedded servers"),
    "import": Command(
        "customer_api.import_cli:main", "stream a CSV or JSON Lines file of customers"
    ),
    "dlq": Command("customer_consumer.dlq_cli:main", "list or replay dead-lettered events"),
    "jobs": Command("customer_scheduler.jobs_cli:main", "list jobs or run one now"),
    "campaigns": Command("customer_operator.campaigns_cli:main", "apply, list or delete campaigns"),
    "audit": Command("customer_api.audit_cli:main", "who did what to one customer"),
}

# One line and an exit code per kind of error, at this edge only.
EXIT_CODES: tuple[tuple[type[CustomerServiceError], int, str], ...] = (
    (ConfigError, 2, "configuration error"),
    (SchemaOutOfDate, 3, "database schema"),
    (Unavailable, 4, "unavailable"),
    (BrokenInstall, 5, "installation"),
    (CustomerServiceError, 1, "error"),
)


def usage() -> str:
    lines = ["usage: customer-service SUBCOMMAND [ARGS...]", "", "subcommands:"]
    lines += [f"  {name:<10} {cmd.help}" for name, cmd in COMMANDS.items()]
    return "\n".join(lines)


def resolve(name: str) -> Callable[[list[str]], int]:
    module_name, _, func = COMMANDS[name].target.partition(":")
    module = importlib.import_module(module_name)
    entry: Callable[[list[str]], int] = getattr(module, func)
    return entry


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"customer-service: unknown subcommand {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    try:
        return resolve(name)(rest)
    except CustomerServiceError as exc:
        for kind, code, label in EXIT_CODES:
            if isinstance(exc, kind):
                print(f"customer-service {name}: {label}: {exc}", file=sys.stderr)
                return code
        raise  # unreachable: CustomerServiceError is the last row
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
