"""Pure rules: standard library only (import-linter enforces it)."""
