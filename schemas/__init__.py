"""The Avro schemas of the topics, shipped as package data: one named type per `*.avsc` file.

This package holds no code. It exists so that the schemas install with the backend and are
found with `importlib.resources` (see `infra/kafka/avro.py`) wherever it is installed;
`schemas/published/` (the schemas as last published, for the compatibility tests) stays in
the repository only. The wire format is described in `docs/wire-format.md`.
"""
