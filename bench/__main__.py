"""`make bench`: every benchmark, each stating its workload, printing rate and percentiles."""

from __future__ import annotations

import importlib
import sys
from typing import Any

from bench import commands, pipeline
from bench.stats import format_row

MODULES = ("sla", "ledger", "availability")


def main() -> int:
    print(pipeline.__doc__)
    rows: list[dict[str, Any]] = list(pipeline.run())
    for name in MODULES:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError:
            continue
        print(f"\n{name}: {(module.__doc__ or '').strip()}")
        result = module.run()
        rows.extend(result if isinstance(result, list) else [result])
    measured = [r for r in rows if isinstance(r, dict) and r.get("unit") == "commands/s"]
    print("\ncommands over HTTP beside a no-op FastAPI endpoint (bench/commands.py)")
    print(commands.table([r for r in measured if "of_ceiling" in r],
                         [r for r in measured if r["benchmark"].startswith("no-op")]))
    print("\nsummary")
    for row in rows:
        if isinstance(row, dict) and "benchmark" in row:
            print(format_row(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
