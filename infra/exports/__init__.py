"""The formats a contract is exported in (docs/audit.md, Exports)."""
