"""The `customer-service` command: one subcommand per process, and the dev launcher."""
