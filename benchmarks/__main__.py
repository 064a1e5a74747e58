"""``python -m benchmarks [NAME ...]`` (``make bench``): run the benchmark scripts.

Every module in this package with a ``main()`` is a benchmark. Each one measures the
platform against a baseline in the same run and writes ``benchmarks/results/NAME.json``
plus a short ``NAME.md`` summary. Pass names to run a subset, e.g. ``make bench
BENCH=upload``.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path

PACKAGE_DIR = Path(__file__).parent


def discover() -> list[str]:
    return sorted(
        m.name
        for m in pkgutil.iter_modules([str(PACKAGE_DIR)])
        if not m.name.startswith("_") and m.name != "common"
    )


def main(argv: list[str]) -> int:
    names = argv or discover()
    unknown = sorted(set(names) - set(discover()))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(discover())}")
        return 2
    failed = []
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        if not hasattr(module, "main"):
            continue
        print(f"=== benchmark {name}", flush=True)
        started = time.monotonic()
        sys.argv = [f"benchmarks.{name}"]  # each main() parses its own (empty) arguments
        try:
            module.main()
        except Exception as exc:  # one failing benchmark must not hide the others
            print(f"benchmark {name} failed: {type(exc).__name__}: {exc}", flush=True)
            failed.append(name)
        print(f"=== {name} took {time.monotonic() - started:.0f}s", flush=True)
    for summary in sorted((PACKAGE_DIR / "results").glob("*.md")):
        print(f"\n--- {summary.name}\n{summary.read_text()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
